//! The request a [`Handler`](super::Handler) receives: method, decoded path, parameters (URL
//! query merged with an urlencoded POST body, as Prometheus reads them), header fields and the
//! complete, de-chunked body.
//!
//! Building a `Request` from a parsed head and body is pure. This module never reads a socket,
//! never routes, and never interprets parameters beyond decoding them.

use std::fmt;
use std::ops::Range;

use thiserror::Error;

use super::chunked::{ChunkedDecoder, ChunkedError};
use super::form::{decode_component, Params};
use super::head::{parse_head, Framing, Head, HeadError, Headers};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    /// Any other token; methods are case-sensitive, so `get` lands here.
    Other(Box<str>),
}

impl Method {
    pub fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            other => Method::Other(other.into()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// A request target this server cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TargetError {
    #[error("invalid request target")]
    Invalid,
    #[error("invalid URL escape in path")]
    InvalidEscape,
}

#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    version: Version,
    headers: Headers,
    target: Range<usize>,
    /// The query string (without `?`) as a range of the head's bytes; empty when absent.
    query: Range<usize>,
    path: String,
    params: Params,
    body: Vec<u8>,
}

impl Request {
    /// Builds the request from its head and complete body. Fails only on a target that is
    /// neither origin-form (`/path?query`), absolute-form (`http://host/path`) nor `*`, or on a
    /// bad escape in the path, which Go's server also answers with 400.
    pub fn new(head: Head, body: Vec<u8>) -> Result<Request, TargetError> {
        let Head {
            method,
            version,
            target,
            headers,
            ..
        } = head;
        let (path_range, query) = split_target(headers.raw(target.clone()), &method)?;
        let shift = |r: Range<usize>| target.start + r.start..target.start + r.end;
        let (path_range, query) = (shift(path_range), shift(query));
        let path = decode_component(headers.raw(path_range), false)
            .map_err(|_| TargetError::InvalidEscape)?;
        let mut params = Params::default();
        if matches!(method, Method::Post | Method::Put | Method::Patch) && is_form(&headers) {
            params.extend_from_urlencoded(&body);
        }
        params.extend_from_urlencoded(headers.raw(query.clone()));
        Ok(Request {
            method,
            version,
            headers,
            target,
            query,
            path,
            params,
            body,
        })
    }

    /// Parses one complete request (head and body) from bytes: for handler tests and tools
    /// that have a whole request in hand. Trailing bytes are ignored.
    pub fn from_bytes(input: &[u8]) -> Result<Request, ParseRequestError> {
        // A limit past the input's end: a head cut short is "incomplete", not "too large".
        let (head, len) =
            parse_head(input, input.len() + 1)?.ok_or(ParseRequestError::Incomplete)?;
        let rest = &input[len..];
        let body = match head.framing {
            Framing::Empty => Vec::new(),
            Framing::Length(n) => rest
                .get(..usize::try_from(n).unwrap_or(usize::MAX))
                .ok_or(ParseRequestError::Incomplete)?
                .to_vec(),
            Framing::Chunked => {
                let mut body = Vec::new();
                let mut decoder = ChunkedDecoder::new(usize::MAX);
                if !decoder.decode(rest, &mut body)?.done {
                    return Err(ParseRequestError::Incomplete);
                }
                body
            }
        };
        Ok(Request::new(head, body)?)
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The percent-decoded path, as Go's `URL.Path`: `/api/v1/label/job/values`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The request target exactly as sent.
    pub fn raw_target(&self) -> &[u8] {
        self.headers.raw(self.target.clone())
    }

    /// The raw query string without `?`; empty when there is none.
    pub fn raw_query(&self) -> &[u8] {
        self.headers.raw(self.query.clone())
    }

    /// URL query and urlencoded form body, merged the way Prometheus reads them.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The first value of a parameter; the form body's wins over the URL's.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name)
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

/// Why [`Request::from_bytes`] failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseRequestError {
    #[error("incomplete request")]
    Incomplete,
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error(transparent)]
    Chunked(#[from] ChunkedError),
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// Splits a target into path and query ranges (relative to the target).
fn split_target(
    target: &[u8],
    method: &Method,
) -> Result<(Range<usize>, Range<usize>), TargetError> {
    let path_start = match target.first() {
        Some(b'/') => 0,
        Some(b'*') if target.len() == 1 && *method == Method::Options => {
            return Ok((0..1, 1..1));
        }
        _ => absolute_form_path(target).ok_or(TargetError::Invalid)?,
    };
    // A fragment is never sent by a conforming client; if one is, it is not part of the query.
    let end = target
        .iter()
        .position(|&b| b == b'#')
        .unwrap_or(target.len());
    Ok(
        match target[path_start..end].iter().position(|&b| b == b'?') {
            Some(q) => (path_start..path_start + q, path_start + q + 1..end),
            None => (path_start..end, end..end),
        },
    )
}

/// In `http://host:port/path?q` (absolute-form, sent to proxies and accepted by servers),
/// where the path starts; a bare authority means the path `/`, which we cannot point into,
/// so it is refused like other odd targets.
fn absolute_form_path(target: &[u8]) -> Option<usize> {
    let scheme_end = target.windows(3).position(|w| w == b"://")?;
    let scheme = &target[..scheme_end];
    if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
        return None;
    }
    let authority = scheme_end + 3;
    target[authority..]
        .iter()
        .position(|&b| b == b'/')
        .map(|p| authority + p)
}

fn is_form(headers: &Headers) -> bool {
    headers.get("content-type").is_some_and(|ct| {
        let media = ct.split(|&b| b == b';').next().unwrap_or(ct);
        super::head::trim(media).eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Request {
        Request::from_bytes(s.as_bytes()).unwrap()
    }

    #[test]
    fn get_with_query() {
        let r = req("GET /api/v1/series?match%5B%5D=up&match[]=%7Bjob%3D%22a%22%7D&start=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.method(), &Method::Get);
        assert_eq!(r.path(), "/api/v1/series");
        assert_eq!(
            r.params().get_all("match[]").collect::<Vec<_>>(),
            vec!["up", "{job=\"a\"}"]
        );
        assert_eq!(r.param("start"), Some("1"));
        assert_eq!(
            r.raw_query(),
            b"match%5B%5D=up&match[]=%7Bjob%3D%22a%22%7D&start=1"
        );
        assert_eq!(r.body(), b"");
    }

    #[test]
    fn post_form_is_merged_and_wins() {
        let body = "query=sum(rate(x%5B5m%5D))&match[]=body";
        let r = req(&format!(
            "POST /api/v1/query?query=url&match[]=url&time=5 HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/x-www-form-urlencoded; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        assert_eq!(r.param("query"), Some("sum(rate(x[5m]))"));
        assert_eq!(r.param("time"), Some("5"));
        assert_eq!(
            r.params().get_all("match[]").collect::<Vec<_>>(),
            vec!["body", "url"]
        );
        assert_eq!(r.body(), body.as_bytes());
    }

    #[test]
    fn other_bodies_are_not_forms() {
        let r = req("POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 3\r\n\r\na=b");
        assert!(r.params().is_empty());
        let r = req("GET /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b");
        assert!(
            r.params().is_empty(),
            "Go parses form bodies only for POST, PUT and PATCH"
        );
    }

    #[test]
    fn chunked_form_body() {
        let r = req("POST /q HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nquer\r\n4\r\ny=up\r\n0\r\n\r\n");
        assert_eq!(r.param("query"), Some("up"));
    }

    #[test]
    fn targets() {
        let r = req("GET http://example.com:9090/api/v1/label/a%2Bb/values?x=1#frag HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.path(), "/api/v1/label/a+b/values");
        assert_eq!(r.param("x"), Some("1"));
        let r = req("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.path(), "*");
        let bad = |s: &str| Request::from_bytes(s.as_bytes()).unwrap_err();
        assert_eq!(
            bad("GET * HTTP/1.1\r\nHost: x\r\n\r\n"),
            ParseRequestError::Target(TargetError::Invalid)
        );
        assert_eq!(
            bad("GET foo HTTP/1.1\r\nHost: x\r\n\r\n"),
            ParseRequestError::Target(TargetError::Invalid)
        );
        assert_eq!(
            bad("GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n"),
            ParseRequestError::Target(TargetError::InvalidEscape)
        );
        assert_eq!(
            bad("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab"),
            ParseRequestError::Incomplete
        );
        assert_eq!(
            bad("GET / HTTP/1.1\r\nHost: x\r\n"),
            ParseRequestError::Incomplete
        );
    }

    #[test]
    fn methods_round_trip() {
        for m in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND",
        ] {
            assert_eq!(Method::from_token(m).as_str(), m);
        }
        assert_eq!(Method::from_token("get"), Method::Other("get".into()));
    }
}
