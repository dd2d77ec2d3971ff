//! Chunk encodings: the byte that names how a chunk is encoded, the XOR (Gorilla) float
//! chunk that every Prometheus reader understands, and Prometheus 3.x's XOR2 float chunk that
//! also carries start timestamps.
//!
//! This module owns the in-memory and on-disk representation of one chunk's samples and
//! nothing around it: it never does I/O, never decides when a chunk is cut (the head does)
//! and never knows which series a chunk belongs to. Chunk bytes are byte-identical to
//! Prometheus's `tsdb/chunkenc` so they can be copied verbatim into blocks and head-chunk
//! files. Bytes handed to a decoder may come from a torn or corrupt file: decoding reports a
//! typed [`ChunkError`], it never panics.

mod bstream;
mod chunk_buf;
pub mod chunk_heap;
mod float;
mod xor;
mod xor2;

pub use bstream::{BitReader, BitWriter, ByteSink};
pub use float::{FloatChunk, FloatIterator};
pub use xor::{XorChunk, XorIterator};
pub use xor2::{Xor2Chunk, Xor2Iterator};

use thiserror::Error;

/// The chunk-encoding byte stored next to every chunk (spec 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Encoding {
    /// Never a valid chunk; Prometheus reserves 0 to catch uninitialised metadata.
    None = 0,
    Xor = 1,
    Histogram = 2,
    FloatHistogram = 3,
    /// Prometheus 3.x, with optional start timestamps; not readable by 2.x, so promcore
    /// writes it only while start-timestamp storage is on.
    Xor2 = 4,
    HistogramSt = 5,
    FloatHistogramSt = 6,
}

/// Bit 7 of the encoding byte marks an out-of-order chunk in head-chunk files (never in
/// blocks).
pub const OOO_FLAG: u8 = 0x80;

impl Encoding {
    /// The encoding named by a byte that has already had [`OOO_FLAG`] removed.
    pub fn from_u8(b: u8) -> Result<Self, ChunkError> {
        Ok(match b {
            0 => Encoding::None,
            1 => Encoding::Xor,
            2 => Encoding::Histogram,
            3 => Encoding::FloatHistogram,
            4 => Encoding::Xor2,
            5 => Encoding::HistogramSt,
            6 => Encoding::FloatHistogramSt,
            other => return Err(ChunkError::UnknownEncoding(other)),
        })
    }

    #[inline]
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Splits a head-chunk-file encoding byte into the encoding and its out-of-order flag.
    pub fn from_head_byte(b: u8) -> Result<(Self, bool), ChunkError> {
        Ok((Self::from_u8(b & !OOO_FLAG)?, b & OOO_FLAG != 0))
    }

    /// The byte a head-chunk file stores for this encoding.
    #[inline]
    pub fn head_byte(self, out_of_order: bool) -> u8 {
        if out_of_order {
            self.as_u8() | OOO_FLAG
        } else {
            self.as_u8()
        }
    }
}

/// Why chunk bytes could not be decoded. Every variant except `UnknownEncoding` means the
/// bytes are corrupt or torn.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChunkError {
    #[error("corrupt chunk: {len} bytes is shorter than its 2-byte sample count")]
    TooShort { len: usize },
    #[error("corrupt chunk: bit stream ends inside sample {sample} of {count}")]
    Truncated { sample: u16, count: u16 },
    #[error("corrupt chunk: sample {sample}: {reason}")]
    Corrupt { sample: u16, reason: &'static str },
    #[error("corrupt chunk: {extra} unused bytes after the last of {count} samples")]
    TrailingBytes { count: u16, extra: usize },
    #[error("chunk of {len} bytes is larger than an open chunk can hold (u32::MAX)")]
    TooLong { len: usize },
    #[error("unknown chunk encoding {0}")]
    UnknownEncoding(u8),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_ids_round_trip() {
        for b in 0..=6u8 {
            assert_eq!(Encoding::from_u8(b).unwrap().as_u8(), b);
        }
        assert_eq!(Encoding::from_u8(7), Err(ChunkError::UnknownEncoding(7)));
        assert_eq!(
            Encoding::from_head_byte(0x81).unwrap(),
            (Encoding::Xor, true)
        );
        assert_eq!(
            Encoding::from_head_byte(0x01).unwrap(),
            (Encoding::Xor, false)
        );
        assert_eq!(Encoding::Xor.head_byte(true), 0x81);
        assert_eq!(Encoding::Histogram.head_byte(false), 0x02);
    }
}
