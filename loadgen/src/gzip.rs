//! gzip bodies with one reused compressor per executor.
//!
//! flate2's `GzEncoder` builds a new deflate state (hundreds of KiB) per stream; a scrape
//! must not allocate that. So this module keeps one raw-deflate `Compress`, resets it per
//! body, and writes the gzip header and trailer (RFC 1952) itself. It never allocates once
//! the output buffer has grown to a body's compressed size.

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Fixed header: magic, deflate, no flags, no mtime, no extra flags, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

pub struct Gzip {
    deflate: Compress,
    crc: Crc,
}

impl Gzip {
    /// Level 1 by default: the body is compressed on every scrape, and a benchmark cares
    /// about the generator's CPU more than the loopback cares about bytes. Level 0 writes
    /// stored blocks: still gzip for the scraper, at the cost of a CRC only.
    pub fn new(level: u32) -> Gzip {
        Gzip {
            deflate: Compress::new(Compression::new(level.min(9)), false),
            crc: Crc::new(),
        }
    }

    /// Appends the gzip encoding of `input` to `out`.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.deflate.reset();
        self.crc.reset();
        self.crc.update(input);
        out.extend_from_slice(&HEADER);
        // Deflate never expands by more than a few bytes per 16 KiB block.
        out.reserve(input.len() / 2 + 64);
        let start_in = self.deflate.total_in();
        loop {
            let consumed = (self.deflate.total_in() - start_in) as usize;
            if out.capacity() == out.len() {
                out.reserve(out.len() / 2 + 64);
            }
            // compress_vec only fails on a corrupt stream state, impossible after reset;
            // a failure would still end the stream rather than loop.
            match self
                .deflate
                .compress_vec(&input[consumed..], out, FlushCompress::Finish)
            {
                Ok(Status::StreamEnd) | Err(_) => break,
                Ok(Status::Ok | Status::BufError) => {}
            }
        }
        out.extend_from_slice(&self.crc.sum().to_le_bytes());
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
    }
}

impl Default for Gzip {
    fn default() -> Self {
        Gzip::new(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use proptest::prelude::*;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_reused_compressor_round_trips_every_body() {
        let mut gz = Gzip::default();
        let mut out = Vec::new();
        let big: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for input in [&b""[..], b"hello", &big, b"metric 1\n"] {
            out.clear();
            gz.compress(input, &mut out);
            assert_eq!(gunzip(&out), input);
        }
    }

    proptest! {
        #[test]
        fn round_trip(
            input in proptest::collection::vec(any::<u8>(), 0..5000),
            level in 0u32..10,
        ) {
            let mut gz = Gzip::new(level);
            let mut out = b"prefix".to_vec();
            gz.compress(&input, &mut out);
            prop_assert_eq!(&out[..6], b"prefix");
            prop_assert_eq!(gunzip(&out[6..]), input);
        }
    }
}
