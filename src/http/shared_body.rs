//! A response body given to many clients (an answer the router keeps), with its gzip encoding
//! made once, by the first response that needs it, and reused by the next: Grafana asks for
//! gzip on every request, and deflating a kept answer of several MB again per request cost
//! far more than giving it.
//!
//! It is `Sync` (the encoding is made once under a `OnceLock`): a response the router gives
//! to a request forwarded by another core's listener (`http::forward`) crosses threads.
//!
//! It owns the bytes and their kept encoding; it never decides whether a response is
//! compressed (the response encoder does) and never compresses itself (the caller's
//! compressor does, so its level and reused state apply).

use std::sync::OnceLock;

#[derive(Debug, Default)]
pub struct SharedBody {
    bytes: Vec<u8>,
    /// The gzip stream of `bytes`, or `None` when compressing them failed or gained nothing.
    gzip: OnceLock<Option<Vec<u8>>>,
}

impl SharedBody {
    pub fn new(bytes: Vec<u8>) -> SharedBody {
        SharedBody {
            bytes,
            gzip: OnceLock::new(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Heap bytes held for the body itself (its capacity); the gzip encoding, smaller and
    /// made only when asked for, comes on top.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// The gzip encoding of the body, made by `compress` the first time (which returns `None`
    /// when it fails or gains nothing: that answer is kept too).
    pub fn gzip(&self, compress: impl FnOnce(&[u8]) -> Option<Vec<u8>>) -> Option<&[u8]> {
        self.gzip.get_or_init(|| compress(&self.bytes)).as_deref()
    }

    /// Whether the gzip encoding was made already.
    pub fn has_gzip(&self) -> bool {
        self.gzip.get().is_some()
    }
}
