//! Gunzip for scrape bodies: fed the compressed bytes as the socket delivers them, it
//! inflates into the caller's body buffer, checks each member's CRC-32 and length, and fails
//! once the decompressed size reaches the body size limit.
//!
//! A body of up to `MAX_WHOLE` compressed bytes (nearly every exporter's) is collected and
//! inflated at once by libdeflate (`whole_gunzip`) when it ends, if it is exactly one valid
//! member under the limit. Anything else — a larger body, several members, corrupt data —
//! goes through the streaming decoder (flate2), which alone decides errors, with Go's
//! messages; a larger body streams as it arrives, so the limit still caps its memory.
//!
//! The inflate states (and the window) live as long as the client, so a scrape allocates
//! nothing here once the buffers have grown to the target's size. Pure byte
//! transformation: it never reads a socket and knows nothing of HTTP.

use flate2::{Crc, Decompress, FlushDecompress, Status};
use thiserror::Error;

use super::whole_gunzip::WholeGunzip;

/// Compressed bodies up to this size are collected and inflated at once; the scrape
/// client's larger ones stream.
const MAX_WHOLE: usize = 1 << 20;

/// Go's gzip reader messages, which Prometheus shows as the scrape error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GunzipError {
    #[error("gzip: invalid header")]
    InvalidHeader,
    #[error("gzip: invalid checksum")]
    InvalidChecksum,
    #[error("flate: corrupt input")]
    Corrupt,
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// An empty body: Go's `gzip.NewReader` answers `io.EOF`.
    #[error("EOF")]
    Empty,
    #[error("body size limit exceeded")]
    SizeLimit,
}

const FTEXT_FLAGS_RESERVED: u8 = 0xe0;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

/// Output grows by at least this much when inflate fills the buffer.
const MIN_GROWTH: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    /// The 10 fixed bytes; `flags` is known once byte 3 has been read.
    Fixed {
        read: u8,
        flags: u8,
    },
    ExtraLength {
        flags: u8,
        low: Option<u8>,
    },
    Extra {
        flags: u8,
        remaining: u16,
    },
    Name {
        flags: u8,
    },
    Comment {
        flags: u8,
    },
    Crc16 {
        read: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header(Header),
    Inflate,
    Trailer {
        bytes: [u8; 8],
        read: u8,
    },
    /// A member ended; more input starts another member, as Go's multistream reader allows.
    MemberEnd,
}

const FRESH_HEADER: State = State::Header(Header::Fixed { read: 0, flags: 0 });

/// A gunzip stream decoder, reused from body to body.
pub struct Gunzip {
    /// Raw deflate state, created on the first gzip body and reset per member afterwards.
    inflate: Option<Decompress>,
    state: State,
    crc: Crc,
    /// Bytes inflated in the current member (gzip's ISIZE is this modulo 2^32).
    member_len: u64,
    /// The body's compressed bytes so far, while it may still be inflated at once.
    pending: Vec<u8>,
    /// The body goes through the streaming decoder (`pending` was handed to it).
    streaming: bool,
    /// Allocated on the first body that ends whole.
    whole: Option<WholeGunzip>,
}

impl Default for Gunzip {
    fn default() -> Self {
        Self::new()
    }
}

impl Gunzip {
    pub fn new() -> Self {
        Gunzip {
            inflate: None,
            state: FRESH_HEADER,
            crc: Crc::new(),
            member_len: 0,
            pending: Vec::new(),
            streaming: false,
            whole: None,
        }
    }

    /// Prepares for a new body.
    pub fn start(&mut self) {
        self.state = FRESH_HEADER;
        self.pending.clear();
        self.streaming = false;
    }

    /// Takes `input`, the next bytes of the compressed body; the decompressed bytes are
    /// appended to `out` now or by [`Gunzip::finish`]. With a non-zero `limit`, fails with
    /// [`GunzipError::SizeLimit`] once `out` holds `limit` bytes (Prometheus fails a body
    /// that *reaches* the limit); `out` never grows past `limit` or its existing capacity,
    /// whichever is larger.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), GunzipError> {
        if !self.streaming {
            if self.pending.len() + input.len() <= MAX_WHOLE {
                self.pending.extend_from_slice(input);
                return Ok(());
            }
            self.stream_pending(out, limit)?;
        }
        self.stream(input, out, limit)
    }

    /// Hands what was collected to the streaming decoder, from now on the body's only one.
    fn stream_pending(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), GunzipError> {
        self.streaming = true;
        let pending = std::mem::take(&mut self.pending);
        let result = self.stream(&pending, out, limit);
        // The collection buffer keeps its capacity for the next body.
        self.pending = pending;
        self.pending.clear();
        result
    }

    fn stream(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), GunzipError> {
        let limit = if limit == 0 { usize::MAX } else { limit };
        while !input.is_empty() {
            match self.state {
                State::Header(_) | State::MemberEnd => {
                    if self.state == State::MemberEnd {
                        self.state = FRESH_HEADER;
                    }
                    let used = self.header(input)?;
                    input = &input[used..];
                }
                State::Inflate => {
                    let used = self.inflate(input, out, limit)?;
                    input = &input[used..];
                }
                State::Trailer {
                    mut bytes,
                    mut read,
                } => {
                    let take = (8 - read as usize).min(input.len());
                    bytes[read as usize..read as usize + take].copy_from_slice(&input[..take]);
                    read += take as u8;
                    input = &input[take..];
                    self.state = State::Trailer { bytes, read };
                    if read == 8 {
                        self.check_trailer(bytes)?;
                        self.state = State::MemberEnd;
                    }
                }
            }
        }
        Ok(())
    }

    /// Called at the end of the body: inflates what was collected, and succeeds if the body
    /// ended right after a complete member. `out` and `limit` as for [`Gunzip::feed`].
    pub fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), GunzipError> {
        if !self.streaming && !self.pending.is_empty() {
            let whole = match &mut self.whole {
                Some(w) => Some(w),
                None => {
                    self.whole = WholeGunzip::new();
                    self.whole.as_mut()
                }
            };
            let limit_or_none = if limit == 0 { usize::MAX } else { limit };
            if whole.is_some_and(|w| w.inflate(&self.pending, out, limit_or_none)) {
                self.streaming = true;
                self.pending.clear();
                self.state = State::MemberEnd;
                return Ok(());
            }
            self.stream_pending(out, limit)?;
        }
        match self.state {
            State::MemberEnd => Ok(()),
            s if s == FRESH_HEADER => Err(GunzipError::Empty),
            _ => Err(GunzipError::UnexpectedEof),
        }
    }

    /// Consumes header bytes; returns how many.
    fn header(&mut self, input: &[u8]) -> Result<usize, GunzipError> {
        for (i, &b) in input.iter().enumerate() {
            let State::Header(h) = self.state else {
                return Ok(i);
            };
            let next = match h {
                Header::Fixed { read, flags } => {
                    let flags = match read {
                        0 if b != 0x1f => return Err(GunzipError::InvalidHeader),
                        1 if b != 0x8b => return Err(GunzipError::InvalidHeader),
                        // Compression method 8 (deflate) is the only one defined.
                        2 if b != 8 => return Err(GunzipError::InvalidHeader),
                        3 if b & FTEXT_FLAGS_RESERVED != 0 => {
                            return Err(GunzipError::InvalidHeader)
                        }
                        3 => b,
                        _ => flags,
                    };
                    // Bytes 4..10 (mtime, extra flags, OS) carry nothing we use.
                    if read < 9 {
                        Some(Header::Fixed {
                            read: read + 1,
                            flags,
                        })
                    } else {
                        after_extra(flags)
                    }
                }
                Header::ExtraLength { flags, low: None } => Some(Header::ExtraLength {
                    flags,
                    low: Some(b),
                }),
                Header::ExtraLength {
                    flags,
                    low: Some(low),
                } => match u16::from_le_bytes([low, b]) {
                    0 => after_extra(flags & !FEXTRA),
                    remaining => Some(Header::Extra { flags, remaining }),
                },
                Header::Extra { flags, remaining } => match remaining - 1 {
                    0 => after_extra(flags & !FEXTRA),
                    remaining => Some(Header::Extra { flags, remaining }),
                },
                Header::Name { flags } if b == 0 => after_extra(flags & !(FEXTRA | FNAME)),
                Header::Comment { flags } if b == 0 => {
                    after_extra(flags & !(FEXTRA | FNAME | FCOMMENT))
                }
                Header::Name { .. } | Header::Comment { .. } => Some(h),
                // The header CRC-16 is skipped, not checked: it guards ten bytes we ignore.
                Header::Crc16 { read: 0 } => Some(Header::Crc16 { read: 1 }),
                Header::Crc16 { .. } => None,
            };
            match next {
                Some(h) => self.state = State::Header(h),
                None => {
                    self.begin_member();
                    return Ok(i + 1);
                }
            }
        }
        Ok(input.len())
    }

    fn begin_member(&mut self) {
        match &mut self.inflate {
            Some(d) => d.reset(false),
            None => self.inflate = Some(Decompress::new(false)),
        }
        self.crc.reset();
        self.member_len = 0;
        self.state = State::Inflate;
    }

    /// Inflates from `input` until it is used up or the member's deflate stream ends;
    /// returns the bytes used.
    fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<usize, GunzipError> {
        let Some(d) = self.inflate.as_mut() else {
            return Err(GunzipError::Corrupt);
        };
        let mut used = 0;
        loop {
            if out.len() >= limit {
                return Err(GunzipError::SizeLimit);
            }
            if out.len() == out.capacity() {
                // Doubling keeps a first large body to a few reallocations; the limit caps
                // the allocation so a compression bomb costs at most `limit` bytes.
                let grow = out.len().max(MIN_GROWTH).min(limit - out.len());
                out.reserve_exact(grow);
            }
            let (in_before, out_before) = (d.total_in(), out.len());
            let status = d
                .decompress_vec(&input[used..], out, FlushDecompress::None)
                .map_err(|_| GunzipError::Corrupt)?;
            let consumed = (d.total_in() - in_before) as usize;
            used += consumed;
            self.crc.update(&out[out_before..]);
            self.member_len += (out.len() - out_before) as u64;
            if status == Status::StreamEnd {
                if out.len() >= limit {
                    return Err(GunzipError::SizeLimit);
                }
                self.state = State::Trailer {
                    bytes: [0; 8],
                    read: 0,
                };
                return Ok(used);
            }
            let room = out.len() < out.capacity();
            if room && used == input.len() {
                return Ok(used);
            }
            // With input and room both available inflate always progresses; if it did not,
            // looping again would spin. (A full buffer loops to grow and drain what inflate
            // still holds, even with no input left.)
            if room && consumed == 0 && out.len() == out_before {
                return Err(GunzipError::Corrupt);
            }
        }
    }

    fn check_trailer(&self, bytes: [u8; 8]) -> Result<(), GunzipError> {
        let crc = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let size = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        // ISIZE is the length modulo 2^32 by definition.
        if crc != self.crc.sum() || size != self.member_len as u32 {
            return Err(GunzipError::InvalidChecksum);
        }
        Ok(())
    }
}

/// The header state after the fixed part or an optional field: the next optional field
/// still flagged, or `None` when the header is complete.
fn after_extra(flags: u8) -> Option<Header> {
    if flags & FEXTRA != 0 {
        Some(Header::ExtraLength { flags, low: None })
    } else if flags & FNAME != 0 {
        Some(Header::Name { flags })
    } else if flags & FCOMMENT != 0 {
        Some(Header::Comment { flags })
    } else if flags & FHCRC != 0 {
        Some(Header::Crc16 { read: 0 })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::{Compression, GzBuilder};
    use proptest::prelude::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn gunzip_in_pieces(wire: &[u8], piece: usize, limit: usize) -> Result<Vec<u8>, GunzipError> {
        let mut g = Gunzip::new();
        g.start();
        let mut out = Vec::new();
        for p in wire.chunks(piece.max(1)) {
            g.feed(p, &mut out, limit)?;
        }
        g.finish(&mut out, limit)?;
        Ok(out)
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| {
                format!(
                    "node_cpu_seconds_total{{cpu=\"{}\",mode=\"idle\"}} {}\n",
                    i % 8,
                    i
                )
            })
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn reused_decoder_decodes_successive_bodies() {
        let mut g = Gunzip::new();
        let mut out = Vec::new();
        for n in [5000, 10, 0, 20000] {
            let body = text(n);
            g.start();
            out.clear();
            g.feed(&gzip(&body), &mut out, 0).unwrap();
            g.finish(&mut out, 0).unwrap();
            assert_eq!(out, body);
        }
    }

    #[test]
    fn optional_header_fields_and_multiple_members() {
        let mut e = GzBuilder::new()
            .extra(b"xx".to_vec())
            .filename("metrics.txt")
            .comment("from a test")
            .write(Vec::new(), Compression::fast());
        e.write_all(b"first\n").unwrap();
        let mut wire = e.finish().unwrap();
        // FHCRC: GzBuilder cannot set it, so patch a header that has it.
        let mut with_crc = gzip(b"second\n");
        with_crc[3] |= FHCRC;
        with_crc.splice(10..10, [0xaa, 0xbb]);
        wire.extend_from_slice(&with_crc);
        for piece in [1, 3, 7, 1000] {
            assert_eq!(
                gunzip_in_pieces(&wire, piece, 0).unwrap(),
                b"first\nsecond\n"
            );
        }
    }

    #[test]
    fn errors_read_like_go() {
        let good = gzip(&text(100));
        assert_eq!(
            gunzip_in_pieces(b"plain text", 100, 0),
            Err(GunzipError::InvalidHeader)
        );
        assert_eq!(gunzip_in_pieces(b"", 100, 0), Err(GunzipError::Empty));
        assert_eq!(
            gunzip_in_pieces(&good[..good.len() - 3], 100, 0),
            Err(GunzipError::UnexpectedEof)
        );
        assert_eq!(
            gunzip_in_pieces(&good[..5], 100, 0),
            Err(GunzipError::UnexpectedEof)
        );
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert_eq!(
            gunzip_in_pieces(&bad_crc, 100, 0),
            Err(GunzipError::InvalidChecksum)
        );
        let mut corrupt = good.clone();
        corrupt[10] = 0xff; // BTYPE 3 is reserved
        assert_eq!(
            gunzip_in_pieces(&corrupt, 100, 0),
            Err(GunzipError::Corrupt)
        );
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"junk");
        assert_eq!(
            gunzip_in_pieces(&trailing, 100, 0),
            Err(GunzipError::InvalidHeader)
        );
    }

    #[test]
    fn limit_is_reached_at_the_limit_and_caps_memory() {
        let body = text(2000);
        let wire = gzip(&body);
        assert_eq!(gunzip_in_pieces(&wire, 512, body.len() + 1).unwrap(), body);
        assert_eq!(
            gunzip_in_pieces(&wire, 512, body.len()),
            Err(GunzipError::SizeLimit)
        );
        // A bomb: 64 MiB of zeros compresses to ~64 KiB; a 1 MiB limit stops it at 1 MiB.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        let mut g = Gunzip::new();
        g.start();
        let mut out = Vec::new();
        assert_eq!(
            g.feed(&bomb, &mut out, 1 << 20)
                .and_then(|()| g.finish(&mut out, 1 << 20)),
            Err(GunzipError::SizeLimit)
        );
        assert!(out.capacity() <= 1 << 20, "{}", out.capacity());
        // Past the collected size a body streams: the limit then stops it while it arrives.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..3 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let wire = gzip(&noise);
        assert!(wire.len() > MAX_WHOLE);
        g.start();
        out.clear();
        assert_eq!(
            wire.chunks(16 << 10)
                .try_for_each(|p| g.feed(p, &mut out, 2 << 20)),
            Err(GunzipError::SizeLimit)
        );
    }

    proptest! {
        #[test]
        fn any_split_round_trips(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            piece in 1usize..300,
        ) {
            prop_assert_eq!(gunzip_in_pieces(&gzip(&data), piece, 0).unwrap(), data);
        }

        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut wire = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
            wire.extend_from_slice(&input);
            let _ = gunzip_in_pieces(&wire, 7, 10_000);
            let _ = gunzip_in_pieces(&input, 7, 10_000);
        }
    }
}
