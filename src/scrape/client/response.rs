//! Parsing a response head with `httparse` and deciding what follows from it: how the body is
//! framed, whether it is gzipped, whether the connection can carry the next scrape.
//!
//! Pure: bytes in, a [`ResponseHead`] (or "need more bytes", or an error) out. It never reads
//! a socket and never looks at the body.

use super::error::RequestError;

/// Header fields parsed per response; exporters send a handful.
const MAX_HEADERS: usize = 64;
/// Longest status line quoted in an error.
const QUOTE_MAX: usize = 100;

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: 204, 304, 101.
    Empty,
    Length(u64),
    Chunked,
    /// Neither length nor chunked: the body ends when the server closes.
    UntilClose,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// `404 Not Found` as the server wrote it; filled only for statuses other than 200, the
    /// only ones whose text is shown.
    pub status_text: String,
    /// Bytes of the head; the body starts there.
    pub len: usize,
    pub framing: Framing,
    /// `Content-Encoding: gzip`.
    pub gzip: bool,
    /// Empty when absent.
    pub content_type: String,
    /// The server allows another request on this connection.
    pub keep_alive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The head is incomplete.
    Partial,
    /// A 1xx interim response of this many bytes, to skip.
    Interim(usize),
    Complete(ResponseHead),
}

pub fn parse(buf: &[u8]) -> Result<Parsed, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Ok(httparse::Status::Complete(len)) => len,
        Err(_) => return Err(malformed(buf)),
    };
    let (Some(status), Some(version)) = (res.code, res.version) else {
        return Err(malformed(buf));
    };
    if (100..200).contains(&status) && status != 101 {
        return Ok(Parsed::Interim(len));
    }
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut gzip = false;
    let mut content_type = String::new();
    let mut close = version == 0;
    for h in res.headers.iter() {
        let value = trim(h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(value).ok_or_else(|| malformed(buf))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(malformed(buf));
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only `chunked` is meaningful on a response we read; `identity` is a no-op.
            for coding in value.split(|&b| b == b',').map(trim) {
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked = true;
                } else if !coding.eq_ignore_ascii_case(b"identity") && !coding.is_empty() {
                    return Err(RequestError::Malformed(format!(
                        "unsupported transfer encoding {:?}",
                        String::from_utf8_lossy(coding)
                    )));
                }
            }
        } else if h.name.eq_ignore_ascii_case("content-encoding") {
            gzip = value.eq_ignore_ascii_case(b"gzip") || value.eq_ignore_ascii_case(b"x-gzip");
        } else if h.name.eq_ignore_ascii_case("content-type") {
            content_type = String::from_utf8_lossy(value).into_owned();
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    close = false;
                }
            }
        }
    }
    let framing = if matches!(status, 101 | 204 | 304) {
        Framing::Empty
    } else if chunked {
        // A length next to chunked is ignored (RFC 9112 6.3), as Go does.
        Framing::Chunked
    } else {
        match content_length {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    let status_text = if status == 200 {
        String::new()
    } else {
        match res.reason.unwrap_or("") {
            "" => status.to_string(),
            reason => format!("{status} {reason}"),
        }
    };
    Ok(Parsed::Complete(ResponseHead {
        status,
        status_text,
        len,
        framing,
        gzip,
        content_type,
        keep_alive: !close && framing != Framing::UntilClose && status != 101,
    }))
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// Go quotes the offending status line; so do we, shortened.
fn malformed(buf: &[u8]) -> RequestError {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(buf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = &line[..line.len().min(QUOTE_MAX)];
    RequestError::Malformed(String::from_utf8_lossy(line).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(s: &str) -> ResponseHead {
        match parse(s.as_bytes()).unwrap() {
            Parsed::Complete(h) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn node_exporter_head() {
        let text = "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nDate: Mon, 23 Nov 2026 14:00:34 GMT\r\nTransfer-Encoding: chunked\r\n\r\n1f";
        let h = complete(text);
        assert_eq!(h.len, text.len() - 2);
        assert_eq!(
            h,
            ResponseHead {
                status: 200,
                status_text: String::new(),
                len: h.len,
                framing: Framing::Chunked,
                gzip: true,
                content_type: "text/plain; version=0.0.4; charset=utf-8".into(),
                keep_alive: true,
            }
        );
    }

    #[test]
    fn framing_and_keep_alive() {
        let h = complete("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
        assert_eq!(
            (h.framing, h.keep_alive, h.gzip),
            (Framing::Length(12), true, false)
        );
        assert_eq!(h.content_type, "");
        let h = complete("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n");
        assert!(!h.keep_alive);
        let h = complete("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = complete("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n");
        assert!(!h.keep_alive);
        let h = complete("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n");
        assert!(h.keep_alive);
        let h = complete("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Empty, true));
        let h =
            complete("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
    }

    #[test]
    fn status_text_as_sent() {
        assert_eq!(
            complete("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").status_text,
            "404 Not Found"
        );
        assert_eq!(
            complete("HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n").status_text,
            "503"
        );
    }

    #[test]
    fn partial_interim_and_malformed() {
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(),
            Parsed::Partial
        );
        assert_eq!(
            parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK").unwrap(),
            Parsed::Interim(25)
        );
        let err = parse(b"garbage here\r\n\r\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "net/http: HTTP/1.x transport connection broken: malformed HTTP response \"garbage here\""
        );
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
