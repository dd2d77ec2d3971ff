//! The HTTP/1.1 a scraper needs and nothing more: parsing a request head in place,
//! negotiating the exposition format from `Accept` and gzip from `Accept-Encoding`, and
//! writing a response head.
//!
//! Requests come from outside the process, so nothing here may panic on them; a request
//! that cannot be served becomes a typed error the connection answers and closes on. Nothing
//! here allocates: headers are parsed into a stack array and response heads are appended to
//! the connection's reused buffer.

use std::io::Write as _;

use thiserror::Error;

use crate::body::Format;

/// Headers beyond this many are refused; scrapers send about five.
const MAX_HEADERS: usize = 32;
/// A request head larger than this is refused rather than buffered without end.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HttpError {
    #[error("malformed request: {0}")]
    Malformed(httparse::Error),
    #[error("request head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("request bodies are not accepted (Content-Length {0})")]
    BodyNotAccepted(u64),
}

impl HttpError {
    pub fn status(&self) -> Status {
        match self {
            HttpError::Malformed(_) => Status::BadRequest,
            HttpError::HeadTooLarge => Status::HeaderFieldsTooLarge,
            HttpError::BodyNotAccepted(_) => Status::PayloadTooLarge,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    HeaderFieldsTooLarge,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::PayloadTooLarge => "413 Payload Too Large",
            Status::HeaderFieldsTooLarge => "431 Request Header Fields Too Large",
        }
    }
}

/// What a parsed request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Bytes of the buffer this request used.
    pub len: usize,
    pub route: Route,
    /// HEAD: the same response head, no body.
    pub head_only: bool,
    pub keep_alive: bool,
    pub gzip: bool,
    /// The client prefers OpenMetrics to the 0.0.4 text format.
    pub wants_openmetrics: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Metrics,
    NotFound,
    MethodNotAllowed,
}

/// Parses one request from the start of `buf`. `Ok(None)`: the head is not complete yet.
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
            return Err(HttpError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(e) => return Err(HttpError::Malformed(e)),
    };
    let http10 = req.version == Some(0);
    let mut keep_alive = !http10;
    let mut gzip = false;
    let mut wants_openmetrics = false;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("accept-encoding") {
            gzip = accepts_gzip(h.value);
        } else if name.eq_ignore_ascii_case("accept") {
            wants_openmetrics = prefers_openmetrics(h.value);
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or(HttpError::Malformed(httparse::Error::HeaderValue))?;
            if n > 0 {
                return Err(HttpError::BodyNotAccepted(n));
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::BodyNotAccepted(u64::MAX));
        }
    }
    let (route, head_only) = match (req.method, req.path) {
        (Some("GET"), Some(p)) if is_metrics_path(p) => (Route::Metrics, false),
        (Some("HEAD"), Some(p)) if is_metrics_path(p) => (Route::Metrics, true),
        (Some("GET"), _) => (Route::NotFound, false),
        (Some("HEAD"), _) => (Route::NotFound, true),
        _ => (Route::MethodNotAllowed, false),
    };
    Ok(Some(Request {
        len,
        route,
        head_only,
        keep_alive,
        gzip,
        wants_openmetrics,
    }))
}

/// `/metrics`, with or without a query string (scrape configs may add `params`).
fn is_metrics_path(p: &str) -> bool {
    p.split_once('?').map_or(p, |(path, _)| path) == "/metrics"
}

/// Splits `type/subtype;param=v;q=0.5` into the media type and its weight.
fn media_range(item: &[u8]) -> (&[u8], f32) {
    let mut parts = item.split(|&b| b == b';');
    let media = parts.next().unwrap_or_default().trim_ascii();
    let mut q = 1.0;
    for p in parts {
        let p = p.trim_ascii();
        if let Some(v) = p.strip_prefix(b"q=").or_else(|| p.strip_prefix(b"Q=")) {
            q = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<f32>().ok())
                .unwrap_or(0.0);
        }
    }
    (media, q)
}

/// True when `application/openmetrics-text` carries a higher weight than every media range
/// that would give the text format; ties go to the one listed first, as in client_golang.
fn prefers_openmetrics(accept: &[u8]) -> bool {
    let mut best_om = 0.0f32;
    let mut best_text = 0.0f32;
    let mut om_first = false;
    for item in accept.split(|&b| b == b',') {
        let (media, q) = media_range(item);
        if q <= 0.0 {
            continue;
        }
        if media.eq_ignore_ascii_case(b"application/openmetrics-text") {
            if q > best_om {
                om_first |= best_text == 0.0 || q > best_text;
                best_om = q;
            }
        } else if media.eq_ignore_ascii_case(b"text/plain")
            || media == b"*/*"
            || media.eq_ignore_ascii_case(b"text/*")
        {
            best_text = best_text.max(q);
        }
    }
    best_om > 0.0 && (best_om > best_text || (best_om == best_text && om_first))
}

/// True when the client takes `gzip` (a zero weight refuses it).
fn accepts_gzip(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|item| {
        let (coding, q) = media_range(item);
        (coding.eq_ignore_ascii_case(b"gzip") || coding == b"*") && q > 0.0
    })
}

/// Appends a response head. `content_type` is `None` for the plain-text error bodies.
pub fn write_head(
    out: &mut Vec<u8>,
    status: Status,
    format: Option<Format>,
    content_length: usize,
    gzip: bool,
    keep_alive: bool,
) {
    let content_type = format.map_or("text/plain; charset=utf-8", Format::content_type);
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {}\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\n",
        status.line()
    );
    if gzip {
        out.extend_from_slice(b"Content-Encoding: gzip\r\n");
    }
    out.extend_from_slice(if keep_alive {
        b"Connection: keep-alive\r\n\r\n"
    } else {
        b"Connection: close\r\n\r\n"
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROM_242_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    const PROM_3_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    const VM_ACCEPT: &str = "text/plain";

    fn get(headers: &str) -> Request {
        let raw = format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        parse_request(raw.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn scrapers_accept_headers() {
        assert!(get(&format!("Accept: {PROM_242_ACCEPT}\r\n")).wants_openmetrics);
        assert!(get(&format!("Accept: {PROM_3_ACCEPT}\r\n")).wants_openmetrics);
        assert!(!get(&format!("Accept: {VM_ACCEPT}\r\n")).wants_openmetrics);
        assert!(!get("").wants_openmetrics);
        assert!(
            !get("Accept: text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5\r\n")
                .wants_openmetrics
        );
        assert!(!get("Accept: application/openmetrics-text;q=0\r\n").wants_openmetrics);
    }

    #[test]
    fn gzip_and_keep_alive() {
        let r = get("Accept-Encoding: gzip\r\n");
        assert!(r.gzip && r.keep_alive);
        assert!(get("Accept-Encoding: deflate, gzip;q=0.5\r\n").gzip);
        assert!(!get("Accept-Encoding: gzip;q=0\r\n").gzip);
        assert!(!get("Accept-Encoding: identity\r\n").gzip);
        assert!(!get("Connection: close\r\n").keep_alive);
        let old = parse_request(b"GET /metrics HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!old.keep_alive);
        let old = parse_request(b"GET /metrics HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(old.unwrap().unwrap().keep_alive);
    }

    #[test]
    fn routes_and_lengths() {
        let two = b"GET /metrics?x=1 HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        let first = parse_request(two).unwrap().unwrap();
        assert_eq!(first.route, Route::Metrics);
        let second = parse_request(&two[first.len..]).unwrap().unwrap();
        assert_eq!(second.route, Route::NotFound);
        let post = parse_request(b"POST /metrics HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(post.route, Route::MethodNotAllowed);
        let head = parse_request(b"HEAD /metrics HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.head_only);
        assert_eq!(parse_request(b"GET /metr").unwrap(), None);
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        assert!(matches!(
            parse_request(b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
            Err(HttpError::BodyNotAccepted(5))
        ));
        assert!(matches!(
            parse_request(b"\x01\x02 garbage\r\n\r\n"),
            Err(HttpError::Malformed(_))
        ));
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse_request(huge.as_bytes()), Err(HttpError::HeadTooLarge));
        let many: String = (0..40).map(|i| format!("X{i}: y\r\n")).collect();
        let raw = format!("GET /metrics HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse_request(raw.as_bytes()), Err(HttpError::HeadTooLarge));
    }

    #[test]
    fn response_head() {
        let mut out = Vec::new();
        write_head(
            &mut out,
            Status::Ok,
            Some(Format::OpenMetrics),
            42,
            true,
            true,
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n\
             Content-Length: 42\r\nContent-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n"
        );
    }
}
