//! A response body from wire bytes to the scraped text: removes the framing (length, chunked,
//! read-to-close), gunzips when the server said `Content-Encoding: gzip`, and enforces the
//! body size limit on the decompressed bytes, as Prometheus does.
//!
//! Pure: it is fed whatever the socket produced and never reads one itself. The gunzip state
//! and the chunk scratch buffer live in [`BodyBuffers`], owned by the client across scrapes.

use crate::http::chunked::ChunkedDecoder;

use super::error::{BodyError, ScrapeError};
use super::gunzip::Gunzip;
use super::response::Framing;

/// State that outlives one body.
#[derive(Default)]
pub struct BodyBuffers {
    pub gunzip: Gunzip,
    /// Compressed chunk data of one read, on its way to gunzip.
    chunk: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Remaining {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// What one [`BodyDecoder::feed`] did with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Input bytes that belonged to the body.
    pub consumed: usize,
    /// The body is complete (and, if gzipped, its last member checked).
    pub done: bool,
}

pub struct BodyDecoder {
    remaining: Remaining,
    gzip: bool,
    /// Fails once the body holds this many bytes; `usize::MAX` when unlimited.
    limit: usize,
}

impl BodyDecoder {
    /// `limit` 0 means none. A plain body announcing `limit` bytes or more fails here,
    /// before it is read.
    pub fn new(
        framing: Framing,
        gzip: bool,
        limit: u64,
        bufs: &mut BodyBuffers,
    ) -> Result<Self, ScrapeError> {
        let limit = match usize::try_from(limit) {
            Ok(0) | Err(_) => usize::MAX,
            Ok(l) => l,
        };
        let remaining = match framing {
            Framing::Empty | Framing::Length(0) => Remaining::Done,
            Framing::Length(n) if !gzip && n >= limit as u64 => {
                return Err(ScrapeError::BodySizeLimit)
            }
            Framing::Length(n) => Remaining::Length(n),
            // The limit is ours to check, on decoded (and decompressed) bytes.
            Framing::Chunked => Remaining::Chunked(ChunkedDecoder::new(usize::MAX)),
            Framing::UntilClose => Remaining::UntilClose,
        };
        if gzip {
            bufs.gunzip.start();
        }
        // The buffers are lent from scrape to scrape, also across targets: whatever a body
        // that failed half-way left behind must not reach this one.
        bufs.chunk.clear();
        let decoder = BodyDecoder {
            remaining,
            gzip,
            limit,
        };
        if matches!(decoder.remaining, Remaining::Done) {
            // Nothing to inflate: a gzipped empty body fails here (Go's "EOF").
            decoder.finish(bufs, &mut Vec::new())?;
        }
        Ok(decoder)
    }

    pub fn is_done(&self) -> bool {
        matches!(self.remaining, Remaining::Done)
    }

    /// Consumes the body's part of `input`, appending the decoded bytes to `body`.
    pub fn feed(
        &mut self,
        input: &[u8],
        bufs: &mut BodyBuffers,
        body: &mut Vec<u8>,
    ) -> Result<Fed, ScrapeError> {
        let consumed = match &mut self.remaining {
            Remaining::Done => 0,
            Remaining::Length(n) => {
                let take = usize::try_from(*n).map_or(input.len(), |n| n.min(input.len()));
                *n -= take as u64;
                if *n == 0 {
                    self.remaining = Remaining::Done;
                }
                self.payload(&input[..take], &mut bufs.gunzip, body)?;
                take
            }
            Remaining::UntilClose => {
                self.payload(input, &mut bufs.gunzip, body)?;
                input.len()
            }
            Remaining::Chunked(decoder) => {
                let out = if self.gzip {
                    &mut bufs.chunk
                } else {
                    &mut *body
                };
                let d = decoder
                    .decode(input, out)
                    .map_err(|e| ScrapeError::Body(BodyError::Chunked(e.to_string())))?;
                if d.done {
                    self.remaining = Remaining::Done;
                }
                if self.gzip {
                    let result = bufs.gunzip.feed(&bufs.chunk, body, self.limit);
                    bufs.chunk.clear();
                    result?;
                } else if body.len() >= self.limit {
                    return Err(ScrapeError::BodySizeLimit);
                }
                d.consumed
            }
        };
        let done = self.is_done();
        if done {
            self.finish(bufs, body)?;
        }
        Ok(Fed { consumed, done })
    }

    /// The server closed the connection: the end of a read-to-close body, an error otherwise.
    pub fn end_of_stream(
        &mut self,
        bufs: &mut BodyBuffers,
        body: &mut Vec<u8>,
    ) -> Result<(), ScrapeError> {
        match self.remaining {
            Remaining::UntilClose => {
                self.remaining = Remaining::Done;
                self.finish(bufs, body)
            }
            Remaining::Done => Ok(()),
            _ => Err(ScrapeError::Body(BodyError::UnexpectedEof)),
        }
    }

    fn payload(
        &self,
        data: &[u8],
        gunzip: &mut Gunzip,
        body: &mut Vec<u8>,
    ) -> Result<(), ScrapeError> {
        if self.gzip {
            return Ok(gunzip.feed(data, body, self.limit)?);
        }
        if body.len() + data.len() >= self.limit {
            return Err(ScrapeError::BodySizeLimit);
        }
        body.extend_from_slice(data);
        Ok(())
    }

    fn finish(&self, bufs: &mut BodyBuffers, body: &mut Vec<u8>) -> Result<(), ScrapeError> {
        if self.gzip {
            bufs.gunzip.finish(body, self.limit)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::chunked::encode_chunked;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Feeds `wire` in pieces of `piece` bytes; returns the body and the bytes left over.
    fn decode(
        framing: Framing,
        gzip: bool,
        limit: u64,
        wire: &[u8],
        piece: usize,
        close: bool,
    ) -> Result<(Vec<u8>, usize), ScrapeError> {
        let mut bufs = BodyBuffers::default();
        let mut body = Vec::new();
        let mut d = BodyDecoder::new(framing, gzip, limit, &mut bufs)?;
        let mut pos = 0;
        for p in wire.chunks(piece) {
            if d.is_done() {
                break;
            }
            pos += d.feed(p, &mut bufs, &mut body)?.consumed;
        }
        if close {
            d.end_of_stream(&mut bufs, &mut body)?;
        }
        assert!(d.is_done());
        Ok((body, wire.len() - pos))
    }

    fn text() -> Vec<u8> {
        b"# TYPE up gauge\nup{job=\"node\"} 1\n".repeat(300)
    }

    #[test]
    fn a_body_that_failed_half_way_leaves_nothing_for_the_next() {
        let plain = text();
        let zipped = gzip(&plain);
        let mut bufs = BodyBuffers::default();
        // A first chunk of gzip data, then a chunk size that is not hex.
        let mut broken = format!("{:x}\r\n", 40).into_bytes();
        broken.extend_from_slice(&zipped[..40]);
        broken.extend_from_slice(b"\r\nzz\r\n");
        let mut body = Vec::new();
        let mut d = BodyDecoder::new(Framing::Chunked, true, 0, &mut bufs).unwrap();
        assert!(d.feed(&broken, &mut bufs, &mut body).is_err());
        // The same buffers, lent to the next scrape.
        let wire = encode_chunked(&zipped, &[1000, 7]);
        let mut body = Vec::new();
        let mut d = BodyDecoder::new(Framing::Chunked, true, 0, &mut bufs).unwrap();
        d.feed(&wire, &mut bufs, &mut body).unwrap();
        assert!(d.is_done());
        assert_eq!(body, plain);
    }

    #[test]
    fn every_framing_plain_and_gzipped() {
        let plain = text();
        let zipped = gzip(&plain);
        for (gz, payload) in [(false, &plain), (true, &zipped)] {
            for piece in [1, 100, 1 << 20] {
                let len = payload.len() as u64;
                let mut wire = payload.clone();
                wire.extend_from_slice(b"extra");
                let (body, left) =
                    decode(Framing::Length(len), gz, 0, &wire, piece, false).unwrap();
                assert_eq!(body, plain);
                assert_eq!(left, 5);
                let mut wire = encode_chunked(payload, &[1000, 7]);
                wire.extend_from_slice(b"extra");
                let (body, left) = decode(Framing::Chunked, gz, 0, &wire, piece, false).unwrap();
                assert_eq!((body, left), (plain.clone(), 5));
                let (body, _) = decode(Framing::UntilClose, gz, 0, payload, piece, true).unwrap();
                assert_eq!(body, plain);
            }
        }
    }

    #[test]
    fn limit_applies_to_decoded_bytes_and_is_reached_at_the_limit() {
        let plain = text();
        let n = plain.len() as u64;
        let zipped = gzip(&plain);
        let chunked = encode_chunked(&plain, &[512]);
        let zipped_chunked = encode_chunked(&zipped, &[512]);
        let cases: [(Framing, bool, &[u8]); 6] = [
            (Framing::Length(n), false, &plain),
            (Framing::Chunked, false, &chunked),
            (Framing::UntilClose, false, &plain),
            (Framing::Length(zipped.len() as u64), true, &zipped),
            (Framing::Chunked, true, &zipped_chunked),
            (Framing::UntilClose, true, &zipped),
        ];
        for (framing, gz, wire) in cases {
            let close = framing == Framing::UntilClose;
            assert_eq!(
                decode(framing, gz, n + 1, wire, 300, close).unwrap().0,
                plain,
                "{framing:?} {gz}"
            );
            assert!(
                matches!(
                    decode(framing, gz, n, wire, 300, close),
                    Err(ScrapeError::BodySizeLimit)
                ),
                "{framing:?} {gz}"
            );
        }
    }

    #[test]
    fn truncated_and_broken_bodies() {
        let plain = text();
        let err = |framing, gz, wire: &[u8]| {
            decode(framing, gz, 0, wire, 64, true)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err(Framing::Length(10), false, b"short"), "unexpected EOF");
        assert_eq!(
            err(
                Framing::Chunked,
                false,
                &encode_chunked(&plain, &[99])[..50]
            ),
            "unexpected EOF"
        );
        assert_eq!(
            err(Framing::Chunked, false, b"zz\r\n"),
            "malformed chunked encoding: invalid chunk size"
        );
        let zipped = gzip(&plain);
        assert_eq!(
            err(Framing::UntilClose, true, &zipped[..zipped.len() - 1]),
            "unexpected EOF"
        );
        assert_eq!(
            err(Framing::UntilClose, true, &plain),
            "gzip: invalid header"
        );
        assert_eq!(err(Framing::Length(0), true, b""), "EOF");
    }
}
