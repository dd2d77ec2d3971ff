//! Parsing of an HTTP/1.x request head (request line and header fields) with `httparse`, and the
//! decisions that follow from it alone: how the body is framed, whether the connection may be
//! kept alive, whether the client waits for `100 Continue`, and which malformed heads get
//! which error status.
//!
//! Pure: bytes in, a [`Head`] (or "need more bytes", or a [`HeadError`]) out. It never reads a
//! socket and never looks at the body. The head's bytes are copied once into the [`Headers`]
//! it returns, so the connection buffer can be reused for the next pipelined request.

use std::ops::Range;

use thiserror::Error;

use super::request::{Method, Version};

/// Header fields parsed per request; more gets a 431, as does a head longer than the limit.
const MAX_HEADERS: usize = 128;

/// Why a head was refused. Each maps to the status the client is answered with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeadError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request line longer than {0} bytes")]
    UriTooLong(usize),
    #[error("request header fields larger than {0} bytes or too many")]
    HeadersTooLarge(usize),
    #[error("HTTP version not supported")]
    VersionNotSupported,
    #[error("unsupported transfer coding")]
    UnsupportedTransferCoding,
    #[error("unsupported expectation")]
    ExpectationFailed,
}

impl HeadError {
    pub fn status(&self) -> u16 {
        match self {
            HeadError::Malformed(_) => 400,
            HeadError::UriTooLong(_) => 414,
            HeadError::HeadersTooLarge(_) => 431,
            HeadError::VersionNotSupported => 505,
            HeadError::UnsupportedTransferCoding => 501,
            HeadError::ExpectationFailed => 417,
        }
    }
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (no `Content-Length`, no `Transfer-Encoding`), or `Content-Length: 0`.
    Empty,
    Length(u64),
    Chunked,
}

/// The header fields of one request, over one owned copy of the head's bytes.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    raw: Vec<u8>,
    fields: Vec<(Range<usize>, Range<usize>)>,
}

impl Headers {
    /// The first value of `name` (ASCII case-insensitive), surrounding whitespace trimmed.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| self.raw[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| &self.raw[v.clone()])
    }

    /// The first value of `name` if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `name`, in order of appearance.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every field as (name, value), in order of appearance.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|(n, v)| {
            // httparse admits only token bytes in names, which are ASCII.
            let name = std::str::from_utf8(&self.raw[n.clone()]).unwrap_or("");
            (name, &self.raw[v.clone()])
        })
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub(super) fn raw(&self, range: Range<usize>) -> &[u8] {
        &self.raw[range]
    }
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: Method,
    pub version: Version,
    /// The request target, as a range of `headers`' raw bytes.
    pub target: Range<usize>,
    pub headers: Headers,
    pub framing: Framing,
    /// The client allows the connection to stay open after this exchange.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` and may wait for an interim answer.
    pub expect_continue: bool,
}

/// Parses the head at the start of `buf`. `Ok(None)` means "incomplete, read more"; on success
/// also returns the head's length in bytes (where the body or the next request starts).
pub fn parse_head(buf: &[u8], max_head_bytes: usize) -> Result<Option<(Head, usize)>, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= max_head_bytes {
                return Err(too_large(buf, max_head_bytes));
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::HeadersTooLarge(max_head_bytes))
        }
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(e) => return Err(HeadError::Malformed(malformed_reason(e))),
    };
    if len > max_head_bytes {
        return Err(too_large(buf, max_head_bytes));
    }
    // `Complete` guarantees method, path and version are present.
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    let base = buf.as_ptr() as usize;
    let offset = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let target = offset(path.as_bytes());
    let mut fields = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        fields.push((offset(h.name.as_bytes()), offset(trim(h.value))));
    }
    let headers = Headers {
        raw: buf[..len].to_vec(),
        fields,
    };
    let method = Method::from_token(method);
    let framing = framing(&headers, version)?;
    let keep_alive = keep_alive(&headers, version);
    let expect_continue = expectation(&headers, version)?;
    if version == Version::Http11 {
        match headers.get_all("host").count() {
            1 => {}
            0 => return Err(HeadError::Malformed("missing required Host header")),
            _ => return Err(HeadError::Malformed("too many Host headers")),
        }
    }
    Ok(Some((
        Head {
            method,
            version,
            target,
            headers,
            framing,
            keep_alive,
            expect_continue,
        },
        len,
    )))
}

/// A head over the limit gets 414 when even its request line does not fit, 431 otherwise.
fn too_large(buf: &[u8], max: usize) -> HeadError {
    let window = &buf[..buf.len().min(max)];
    if window.contains(&b'\n') {
        HeadError::HeadersTooLarge(max)
    } else {
        HeadError::UriTooLong(max)
    }
}

/// `httparse` refuses any version but 1.0 and 1.1 with the same error as garbage; a well-formed
/// `HTTP/x.y` with another number deserves 505, anything else 400.
fn version_error(buf: &[u8]) -> HeadError {
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = trim(&buf[..line_end]);
    if line.split(|&b| b == b' ').count() != 3 {
        return HeadError::Malformed("invalid request line");
    }
    match line.rsplit(|&b| b == b' ').next() {
        Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            HeadError::VersionNotSupported
        }
        _ => HeadError::Malformed("invalid HTTP version"),
    }
}

fn malformed_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid method or request target",
        _ => "invalid request line",
    }
}

fn framing(headers: &Headers, version: Version) -> Result<Framing, HeadError> {
    let mut length: Option<u64> = None;
    for value in headers.get_all("content-length") {
        // A list of identical values (`Content-Length: 5, 5`) is allowed; anything else that
        // disagrees is how request smuggling starts.
        for item in value.split(|&b| b == b',') {
            let n =
                parse_decimal(trim(item)).ok_or(HeadError::Malformed("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::Malformed("conflicting Content-Length values"));
            }
            length = Some(n);
        }
    }
    let mut codings = headers.get_all("transfer-encoding").peekable();
    if codings.peek().is_none() {
        return Ok(match length {
            None | Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
        });
    }
    if version == Version::Http10 {
        return Err(HeadError::Malformed(
            "Transfer-Encoding in an HTTP/1.0 request",
        ));
    }
    if length.is_some() {
        return Err(HeadError::Malformed(
            "both Transfer-Encoding and Content-Length",
        ));
    }
    let mut last_is_chunked = false;
    let mut others = false;
    for item in codings.flat_map(|v| v.split(|&b| b == b',')) {
        let item = trim(item);
        if item.is_empty() {
            continue;
        }
        if last_is_chunked {
            // `chunked` must be the final coding, applied once.
            return Err(HeadError::Malformed(
                "chunked is not the final transfer coding",
            ));
        }
        if item.eq_ignore_ascii_case(b"chunked") {
            last_is_chunked = true;
        } else {
            others = true;
        }
    }
    match (last_is_chunked, others) {
        (true, false) => Ok(Framing::Chunked),
        (true, true) => Err(HeadError::UnsupportedTransferCoding),
        (false, _) => Err(HeadError::Malformed(
            "chunked is not the final transfer coding",
        )),
    }
}

fn keep_alive(headers: &Headers, version: Version) -> bool {
    let mut close = false;
    let mut keep = false;
    for item in headers
        .get_all("connection")
        .flat_map(|v| v.split(|&b| b == b','))
    {
        let item = trim(item);
        close |= item.eq_ignore_ascii_case(b"close");
        keep |= item.eq_ignore_ascii_case(b"keep-alive");
    }
    match version {
        Version::Http11 => !close,
        Version::Http10 => keep && !close,
    }
}

fn expectation(headers: &Headers, version: Version) -> Result<bool, HeadError> {
    match headers.get("expect") {
        None => Ok(false),
        // An HTTP/1.0 client cannot understand a 1xx answer (RFC 9110 §10.1.1): ignore it.
        Some(v) if v.eq_ignore_ascii_case(b"100-continue") => Ok(version == Version::Http11),
        Some(_) => Err(HeadError::ExpectationFailed),
    }
}

fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

pub(super) fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    fn head(s: &str) -> (Head, usize) {
        parse_head(s.as_bytes(), MAX).unwrap().unwrap()
    }

    fn error(s: &str) -> HeadError {
        parse_head(s.as_bytes(), MAX).unwrap_err()
    }

    #[test]
    fn parses_a_simple_get() {
        let input =
            "GET /api/v1/query?query=up HTTP/1.1\r\nHost: x\r\nAccept-Encoding:  gzip \r\n\r\nNEXT";
        let (h, len) = head(input);
        assert_eq!(&input[len..], "NEXT");
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.headers.raw(h.target.clone()), b"/api/v1/query?query=up");
        assert_eq!(h.headers.get("accept-encoding"), Some(&b"gzip"[..]));
        assert_eq!(h.headers.get_str("HOST"), Some("x"));
        assert_eq!(h.headers.len(), 2);
        assert_eq!(h.framing, Framing::Empty);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n", MAX)
            .unwrap()
            .is_none());
        assert!(parse_head(b"", MAX).unwrap().is_none());
        assert!(parse_head(b"\r\nGET /", MAX).unwrap().is_none());
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        assert!(head("GET / HTTP/1.1\r\nHost: x\r\n\r\n").0.keep_alive);
        assert!(
            !head("GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(!head("GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(
            head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(
            !head("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")
                .0
                .keep_alive
        );
    }

    #[test]
    fn body_framing() {
        let f = |s: &str| head(s).0.framing;
        assert_eq!(
            f("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n"),
            Framing::Length(12)
        );
        assert_eq!(
            f("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
            Framing::Empty
        );
        assert_eq!(
            f("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n"),
            Framing::Length(5)
        );
        assert_eq!(
            f("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"),
            Framing::Chunked
        );
        assert_eq!(
            error("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            HeadError::Malformed("conflicting Content-Length values")
        );
        assert_eq!(
            error("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n").status(),
            400
        );
        assert_eq!(
            error("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n")
                .status(),
            400
        );
        assert_eq!(
            error("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n").status(),
            400
        );
        assert_eq!(
            error("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
                .status(),
            501
        );
        assert_eq!(
            error("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")
                .status(),
            400
        );
        assert_eq!(
            error("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n")
                .status(),
            400
        );
    }

    #[test]
    fn expectations() {
        assert!(
            head("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
                .0
                .expect_continue
        );
        assert!(
            !head("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
                .0
                .expect_continue
        );
        assert_eq!(
            error("POST / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n").status(),
            417
        );
    }

    #[test]
    fn malformed_heads_get_400_and_other_versions_505() {
        assert_eq!(
            error("GET / HTTP/1.1\r\n\r\n"),
            HeadError::Malformed("missing required Host header")
        );
        assert_eq!(
            error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status(),
            400
        );
        assert_eq!(
            error("GET / HTTP/2.0\r\n\r\n"),
            HeadError::VersionNotSupported
        );
        assert_eq!(error("GET / FTP/1.1\r\n\r\n").status(), 400);
        assert_eq!(error("GET /a b HTTP/1.1\r\n\r\n").status(), 400);
        assert_eq!(error("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n").status(), 400);
        assert_eq!(error("G(T / HTTP/1.1\r\n\r\n").status(), 400);
        let tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
        assert_eq!(parse_head(tls_hello, MAX).unwrap_err().status(), 400);
    }

    #[test]
    fn oversized_heads_get_414_or_431() {
        let long_uri = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX));
        assert_eq!(error(&long_uri), HeadError::UriTooLong(MAX));
        let long_headers = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n", "a".repeat(MAX));
        assert_eq!(error(&long_headers), HeadError::HeadersTooLarge(MAX));
        let complete_but_long = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(MAX)
        );
        assert_eq!(error(&complete_but_long), HeadError::HeadersTooLarge(MAX));
        let many: String = (0..200).map(|i| format!("X-{i}: 1\r\n")).collect();
        let r = parse_head(
            format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes(),
            1 << 20,
        );
        assert_eq!(r.unwrap_err().status(), 431);
    }

    #[test]
    fn decimal_parsing() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(
            parse_decimal(b"1234567890123456789"),
            Some(1234567890123456789)
        );
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"+1"), None);
        assert_eq!(parse_decimal(b"1 2"), None);
    }
}
