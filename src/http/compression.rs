//! Response compression: choosing a content coding from `Accept-Encoding` the way Prometheus's
//! compression handler does (first of `gzip` or `deflate` in the client's order), and producing
//! gzip or zlib streams with one reusable deflate state per connection.
//!
//! Pure byte transformation; it never decides *whether* a response is worth compressing (that
//! is the response encoder's call) and never allocates per call beyond growing `out`.

use flate2::{Compress, CompressError, Compression, Crc, FlushCompress, Status};

/// Level 1: API answers and `/federate` are large, repetitive JSON/text where fast deflate
/// already gets most of the gain, and this server shares its cores with ingestion.
const LEVEL: u32 = 1;

const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCoding {
    Gzip,
    /// HTTP's `deflate` is the zlib format (RFC 1950), not raw deflate.
    Deflate,
}

impl ContentCoding {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentCoding::Gzip => "gzip",
            ContentCoding::Deflate => "deflate",
        }
    }
}

/// The first of `gzip`/`deflate` listed in `Accept-Encoding`. Unlike Prometheus we honour an
/// explicit refusal (`gzip;q=0`), which costs nothing and is what RFC 9110 asks.
pub fn negotiate(accept_encoding: &[u8]) -> Option<ContentCoding> {
    accept_encoding.split(|&b| b == b',').find_map(|item| {
        let mut parts = item.split(|&b| b == b';');
        let name = super::head::trim(parts.next().unwrap_or(item));
        let coding = if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip") {
            ContentCoding::Gzip
        } else if name.eq_ignore_ascii_case(b"deflate") {
            ContentCoding::Deflate
        } else {
            return None;
        };
        let refused = parts.any(|p| {
            let p = super::head::trim(p);
            p.len() >= 2
                && p[..2].eq_ignore_ascii_case(b"q=")
                && p[2..].iter().all(|&b| b == b'0' || b == b'.')
        });
        (!refused).then_some(coding)
    })
}

/// Deflate state kept across the responses of one connection; created on first use.
#[derive(Default)]
pub struct Compressor {
    raw: Option<Compress>,
    zlib: Option<Compress>,
}

impl Compressor {
    /// Appends `input` encoded with `coding` to `out`. On error `out` holds a partial stream
    /// that the caller must discard.
    pub fn compress(
        &mut self,
        coding: ContentCoding,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CompressError> {
        match coding {
            ContentCoding::Gzip => {
                let state = self
                    .raw
                    .get_or_insert_with(|| Compress::new(Compression::new(LEVEL), false));
                out.extend_from_slice(&GZIP_HEADER);
                deflate(state, input, out)?;
                let mut crc = Crc::new();
                crc.update(input);
                out.extend_from_slice(&crc.sum().to_le_bytes());
                // ISIZE is the input length modulo 2^32 by definition.
                out.extend_from_slice(&(input.len() as u32).to_le_bytes());
                Ok(())
            }
            ContentCoding::Deflate => {
                let state = self
                    .zlib
                    .get_or_insert_with(|| Compress::new(Compression::new(LEVEL), true));
                deflate(state, input, out)
            }
        }
    }
}

fn deflate(state: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressError> {
    state.reset();
    out.reserve(input.len() / 4 + 64);
    let mut consumed = 0;
    loop {
        let before_in = state.total_in();
        // compress_vec only writes into spare capacity: anything but the end means "grow".
        let status = state.compress_vec(&input[consumed..], out, FlushCompress::Finish)?;
        consumed += (state.total_in() - before_in) as usize;
        if status == Status::StreamEnd {
            return Ok(());
        }
        out.reserve(out.capacity().max(1024));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;

    #[test]
    fn negotiation_follows_client_order() {
        assert_eq!(negotiate(b"gzip"), Some(ContentCoding::Gzip));
        assert_eq!(
            negotiate(b"br, deflate, gzip"),
            Some(ContentCoding::Deflate)
        );
        assert_eq!(
            negotiate(b"identity, GZIP;q=0.5"),
            Some(ContentCoding::Gzip)
        );
        assert_eq!(
            negotiate(b"gzip;q=0, deflate"),
            Some(ContentCoding::Deflate)
        );
        assert_eq!(negotiate(b"gzip; q=0.0"), None);
        assert_eq!(negotiate(b"br, zstd, *"), None);
        assert_eq!(negotiate(b""), None);
    }

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn unzlib(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn reused_state_produces_independent_streams() {
        let mut c = Compressor::default();
        let a = b"{\"status\":\"success\"}".repeat(100);
        let b = vec![0u8; 300_000];
        for input in [&a[..], &b[..], &a[..], b""] {
            let mut out = b"prefix".to_vec();
            c.compress(ContentCoding::Gzip, input, &mut out).unwrap();
            assert_eq!(&out[..6], b"prefix");
            assert_eq!(gunzip(&out[6..]), input);
            let mut out = Vec::new();
            c.compress(ContentCoding::Deflate, input, &mut out).unwrap();
            assert_eq!(unzlib(&out), input);
        }
    }

    proptest! {
        #[test]
        fn round_trips(input in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let mut c = Compressor::default();
            let mut out = Vec::new();
            c.compress(ContentCoding::Gzip, &input, &mut out).unwrap();
            prop_assert_eq!(gunzip(&out), input.clone());
            let mut out = Vec::new();
            c.compress(ContentCoding::Deflate, &input, &mut out).unwrap();
            prop_assert_eq!(unzlib(&out), input);
        }
    }
}
