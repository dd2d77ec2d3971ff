//! The `Transfer-Encoding: chunked` request-body decoder: an incremental state machine fed
//! whatever bytes the socket produced, appending chunk data to the body in bulk copies.
//!
//! It owns the body size limit for chunked bodies (the decoded size is only known as it
//! arrives) and bounds every line it must buffer (size lines, extensions, trailers), so a
//! client cannot make it hold more than the configured body. It never touches a socket and
//! never interprets extensions or trailers: both are read and dropped, as Go's server does.

use thiserror::Error;

/// Longest chunk-size line we accept, extensions included. Go allows 4 KiB.
const MAX_LINE: usize = 4096;
/// Total bytes of trailer fields we read past and drop.
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChunkedError {
    #[error("malformed chunked encoding: invalid chunk size")]
    InvalidSize,
    #[error("malformed chunked encoding: chunk data not followed by CRLF")]
    MissingCrlf,
    #[error("malformed chunked encoding: chunk-size line or trailer too long")]
    LineTooLong,
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits; `digits` counts them, `size` accumulates.
    Size {
        size: u64,
        digits: u8,
    },
    /// After the digits: optional whitespace and `;extensions` up to the LF.
    SizeRest {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    /// After the data, expecting CR (optional) then LF.
    DataEnd {
        seen_cr: bool,
    },
    /// At the start of a trailer line; an empty line ends the body.
    TrailerStart,
    TrailerLine,
    /// Saw CR at a trailer line start; an LF ends the body.
    TrailerEndLf,
    Done,
}

/// What one [`ChunkedDecoder::decode`] call did with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes used; the rest belong to the next pipelined request.
    pub consumed: usize,
    /// The terminating zero-size chunk and its trailers were read.
    pub done: bool,
}

#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    limit: usize,
    decoded: usize,
    /// Bytes of the current size line or of all trailers, to bound them.
    line_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder that refuses bodies that decode to more than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        ChunkedDecoder {
            state: State::Size { size: 0, digits: 0 },
            limit,
            decoded: 0,
            line_bytes: 0,
        }
    }

    #[cfg(test)]
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes as much of `input` as belongs to this body, appending chunk data to `body`.
    pub fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<Decoded, ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::Data { remaining } => {
                    let take =
                        (input.len() - i).min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    body.extend_from_slice(&input[i..i + take]);
                    i += take;
                    let remaining = remaining - take as u64;
                    self.state = if remaining == 0 {
                        State::DataEnd { seen_cr: false }
                    } else {
                        State::Data { remaining }
                    };
                    continue;
                }
                _ => {}
            }
            let b = input[i];
            i += 1;
            self.state = self.step(b)?;
        }
        Ok(Decoded {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    fn step(&mut self, b: u8) -> Result<State, ChunkedError> {
        Ok(match self.state {
            State::Size { size, digits } => {
                self.bump_line(MAX_LINE)?;
                match hex_digit(b) {
                    Some(d) => {
                        // 16 hex digits fill a u64; more can only be an attack or an error.
                        if digits >= 16 {
                            return Err(ChunkedError::InvalidSize);
                        }
                        State::Size {
                            size: size << 4 | u64::from(d),
                            digits: digits + 1,
                        }
                    }
                    None if digits == 0 => return Err(ChunkedError::InvalidSize),
                    None => self.size_rest(size, b)?,
                }
            }
            State::SizeRest { size } => {
                self.bump_line(MAX_LINE)?;
                self.size_rest(size, b)?
            }
            State::DataEnd { seen_cr } => match b {
                b'\r' if !seen_cr => State::DataEnd { seen_cr: true },
                b'\n' => {
                    self.line_bytes = 0;
                    State::Size { size: 0, digits: 0 }
                }
                _ => return Err(ChunkedError::MissingCrlf),
            },
            State::TrailerStart => match b {
                b'\r' => State::TrailerEndLf,
                b'\n' => State::Done,
                _ => {
                    self.bump_line(MAX_TRAILERS)?;
                    State::TrailerLine
                }
            },
            State::TrailerLine => {
                self.bump_line(MAX_TRAILERS)?;
                if b == b'\n' {
                    State::TrailerStart
                } else {
                    State::TrailerLine
                }
            }
            State::TrailerEndLf => match b {
                b'\n' => State::Done,
                _ => return Err(ChunkedError::MissingCrlf),
            },
            State::Data { .. } | State::Done => self.state,
        })
    }

    /// Handles a byte after the size digits: whitespace, extensions, or the end of the line.
    fn size_rest(&mut self, size: u64, b: u8) -> Result<State, ChunkedError> {
        if b != b'\n' {
            return Ok(State::SizeRest { size });
        }
        self.line_bytes = 0;
        if size == 0 {
            return Ok(State::TrailerStart);
        }
        let total = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(self.decoded))
            .filter(|&t| t <= self.limit)
            .ok_or(ChunkedError::TooLarge { limit: self.limit })?;
        self.decoded = total;
        Ok(State::Data { remaining: size })
    }

    fn bump_line(&mut self, max: usize) -> Result<(), ChunkedError> {
        self.line_bytes += 1;
        if self.line_bytes > max {
            return Err(ChunkedError::LineTooLong);
        }
        Ok(())
    }
}

/// The value of one hexadecimal digit (chunk sizes, percent-escapes).
pub(super) fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) fn encode_chunked(body: &[u8], chunk_sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut sizes = chunk_sizes.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(input: &[u8], limit: usize) -> Result<(Vec<u8>, usize), ChunkedError> {
        let mut d = ChunkedDecoder::new(limit);
        let mut body = Vec::new();
        let r = d.decode(input, &mut body)?;
        assert!(r.done, "incomplete");
        Ok((body, r.consumed))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers_and_stops_at_the_end() {
        let input = b"4;name=value\r\nWiki\r\n5 \r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nGET / HTTP/1.1";
        let (body, consumed) = decode_all(input, 1 << 20).unwrap();
        assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(&input[consumed..], b"GET / HTTP/1.1");
    }

    #[test]
    fn bare_lf_line_ends_are_tolerated() {
        let (body, _) = decode_all(b"3\nabc\n0\n\n", 100).unwrap();
        assert_eq!(body, b"abc");
    }

    #[test]
    fn rejects_malformed_input() {
        let err = |input: &[u8]| {
            let mut d = ChunkedDecoder::new(100);
            d.decode(input, &mut Vec::new()).unwrap_err()
        };
        assert_eq!(err(b"x\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b"\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b"11111111111111111\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b"3\r\nabcX"), ChunkedError::MissingCrlf);
        assert_eq!(err(b"65\r\n"), ChunkedError::TooLarge { limit: 100 });
        assert_eq!(
            err(b"ffffffffffffffff\r\n"),
            ChunkedError::TooLarge { limit: 100 }
        );
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_LINE));
        assert_eq!(err(&long), ChunkedError::LineTooLong);
    }

    #[test]
    fn limit_counts_the_whole_body() {
        let input = encode_chunked(&[7u8; 60], &[30]);
        assert_eq!(
            decode_all(&input, 59).unwrap_err(),
            ChunkedError::TooLarge { limit: 59 }
        );
        assert_eq!(decode_all(&input, 60).unwrap().0, vec![7u8; 60]);
    }

    proptest! {
        #[test]
        fn any_split_of_any_chunking_round_trips(
            body in proptest::collection::vec(any::<u8>(), 0..600),
            sizes in proptest::collection::vec(1usize..200, 1..5),
            splits in proptest::collection::vec(1usize..50, 1..20),
        ) {
            let mut wire = encode_chunked(&body, &sizes);
            let tail = b"NEXT".to_vec();
            wire.extend_from_slice(&tail);
            let mut d = ChunkedDecoder::new(body.len());
            let mut out = Vec::new();
            let mut pos = 0;
            let mut split = splits.iter().cycle();
            while !d.is_done() {
                let end = (pos + split.next().unwrap()).min(wire.len());
                let r = d.decode(&wire[pos..end], &mut out).unwrap();
                pos += r.consumed;
                prop_assert!(pos < wire.len() || d.is_done());
            }
            prop_assert_eq!(out, body);
            prop_assert_eq!(&wire[pos..], &tail[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ChunkedDecoder::new(64).decode(&input, &mut Vec::new());
        }
    }
}
