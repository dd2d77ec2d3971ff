//! The response a [`Handler`](super::Handler) returns (status, header fields, complete body) and
//! its encoding onto the wire: status line, `Date`, the handler's fields, `Content-Length`
//! always (no chunked responses: bodies are built whole), `Connection` as the exchange
//! requires, and gzip/deflate when the client accepts it and the body is worth it, with
//! `Vary: Accept-Encoding` on every negotiable response.
//!
//! Encoding is pure. The connection owns the framing fields (`Content-Length`,
//! `Transfer-Encoding`, `Connection`, `Date`): a handler setting them is ignored, and a header
//! that could split the response (CR, LF or NUL in a value, a non-token name) is dropped.

use std::borrow::Cow;
use std::io::Write as _;
use std::sync::Arc;

use super::compression::{Compressor, ContentCoding};
use super::date;
use super::request::Version;
use super::shared_body::SharedBody;

/// Bodies up to this size are sent as they are: compressing them saves less than it costs.
pub const MIN_COMPRESS_LEN: usize = 1024;

/// An HTTP status code (100..=999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

impl StatusCode {
    pub const CONTINUE: StatusCode = StatusCode(100);
    pub const OK: StatusCode = StatusCode(200);
    pub const NO_CONTENT: StatusCode = StatusCode(204);
    pub const NOT_MODIFIED: StatusCode = StatusCode(304);
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    pub const NOT_ACCEPTABLE: StatusCode = StatusCode(406);
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    pub const PAYLOAD_TOO_LARGE: StatusCode = StatusCode(413);
    pub const URI_TOO_LONG: StatusCode = StatusCode(414);
    pub const EXPECTATION_FAILED: StatusCode = StatusCode(417);
    pub const UNPROCESSABLE_ENTITY: StatusCode = StatusCode(422);
    pub const REQUEST_HEADER_FIELDS_TOO_LARGE: StatusCode = StatusCode(431);
    /// nginx's "client closed request", which Prometheus uses for canceled queries.
    pub const CLIENT_CLOSED_REQUEST: StatusCode = StatusCode(499);
    pub const INTERNAL_SERVER_ERROR: StatusCode = StatusCode(500);
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    pub const HTTP_VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);

    /// `None` outside 100..=999, which cannot be written as a three-digit status.
    pub fn new(code: u16) -> Option<StatusCode> {
        (100..=999).contains(&code).then_some(StatusCode(code))
    }

    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether a response with this status may carry a body (RFC 9110 §6.4.1).
    pub fn allows_body(self) -> bool {
        !(self.0 < 200 || self.0 == 204 || self.0 == 304)
    }

    pub fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            204 => "No Content",
            301 => "Moved Permanently",
            302 => "Found",
            304 => "Not Modified",
            307 => "Temporary Redirect",
            308 => "Permanent Redirect",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            408 => "Request Timeout",
            409 => "Conflict",
            411 => "Length Required",
            413 => "Payload Too Large",
            414 => "URI Too Long",
            415 => "Unsupported Media Type",
            417 => "Expectation Failed",
            422 => "Unprocessable Entity",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            499 => "Client Closed Request",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            505 => "HTTP Version Not Supported",
            _ => "",
        }
    }
}

type Field = (Cow<'static, str>, Cow<'static, str>);

#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    headers: Vec<Field>,
    body: Body,
    compressible: bool,
}

/// A body of its own, or one shared with others (an answer the router keeps and gives to
/// every client asking the same): sent as it is, never copied.
#[derive(Debug, Clone)]
enum Body {
    Owned(Vec<u8>),
    Shared(Arc<SharedBody>),
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Body::Owned(b) => b,
            Body::Shared(b) => b.bytes(),
        }
    }
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Owned(Vec::new()),
            compressible: true,
        }
    }

    /// A `text/plain` response, the shape of Go's `http.Error`.
    pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
        Response::new(status).with_body("text/plain; charset=utf-8", body.into().into_bytes())
    }

    pub fn json(status: StatusCode, body: Vec<u8>) -> Response {
        Response::new(status).with_body("application/json", body)
    }

    /// A JSON response whose body is shared with others (see `Body`).
    pub fn json_shared(status: StatusCode, body: Arc<SharedBody>) -> Response {
        let mut r = Response::new(status);
        r.set_header("Content-Type", "application/json");
        r.body = Body::Shared(body);
        r
    }

    /// Sets the body and its `Content-Type`.
    pub fn with_body(mut self, content_type: impl Into<Cow<'static, str>>, body: Vec<u8>) -> Self {
        self.set_header("Content-Type", content_type);
        self.body = Body::Owned(body);
        self
    }

    /// Adds a header field (repeated names are kept, like `Header.Add`).
    pub fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces every field named `name` (case-insensitive) with one, like `Header.Set`.
    pub fn set_header(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) {
        let name = name.into();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
    }

    /// Never compress this body (already compressed data, or streams a client reads raw).
    pub fn without_compression(mut self) -> Self {
        self.compressible = false;
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// What the exchange needs from the encoder beyond the response itself.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    pub version: Version,
    /// Answering HEAD: every field as for GET, no body bytes.
    pub head_request: bool,
    pub keep_alive: bool,
    /// Negotiated from the request's `Accept-Encoding`.
    pub coding: Option<ContentCoding>,
}

/// Which bytes follow the head written by [`encode_head`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySource {
    None,
    /// `response.body()`.
    Identity,
    /// The `scratch` buffer passed to [`encode_head`].
    Compressed,
}

/// Appends the status line and header fields to `out`, compressing the body into `scratch`
/// (cleared first) when that is worthwhile, and says which bytes the body is.
pub fn encode_head(
    resp: &Response,
    ex: &Exchange,
    compressor: &mut Compressor,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> BodySource {
    let body_allowed = resp.status.allows_body();
    let pre_encoded = resp.header("content-encoding").is_some();
    let negotiable = body_allowed && resp.compressible && !pre_encoded;
    let mut body = if body_allowed {
        BodySource::Identity
    } else {
        BodySource::None
    };
    let mut coding = None;
    if let (true, Some(c)) = (negotiable && resp.body.len() > MIN_COMPRESS_LEN, ex.coding) {
        scratch.clear();
        // Incompressible bodies (a failure, or no gain) go out as they are.
        let compressed = match (&resp.body, c) {
            // A shared body's gzip is made once and copied from then on.
            (Body::Shared(shared), ContentCoding::Gzip) => {
                let gzip = shared.gzip(|bytes| {
                    let mut out = Vec::new();
                    let ok = compressor.compress(c, bytes, &mut out).is_ok();
                    (ok && out.len() < bytes.len()).then_some(out)
                });
                gzip.inspect(|g| scratch.extend_from_slice(g)).is_some()
            }
            _ => {
                compressor.compress(c, &resp.body, scratch).is_ok()
                    && scratch.len() < resp.body.len()
            }
        };
        if compressed {
            body = BodySource::Compressed;
            coding = Some(c);
        }
    }

    let version = match ex.version {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
    };
    let _ = write!(
        out,
        "{version} {} {}\r\nDate: ",
        resp.status.0,
        resp.status.reason()
    );
    out.extend_from_slice(&date::now());
    out.extend_from_slice(b"\r\n");

    let mut vary_written = false;
    for (name, value) in &resp.headers {
        if is_connection_owned(name) || !is_token(name) || !is_field_value(value) {
            continue;
        }
        let _ = write!(out, "{name}: {value}");
        if negotiable && name.eq_ignore_ascii_case("vary") && !vary_written {
            vary_written = true;
            if !contains_ignore_case(value, "accept-encoding") {
                out.extend_from_slice(b", Accept-Encoding");
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    if negotiable && !vary_written {
        out.extend_from_slice(b"Vary: Accept-Encoding\r\n");
    }
    if let Some(c) = coding {
        let _ = write!(out, "Content-Encoding: {}\r\n", c.as_str());
    }
    let len = match body {
        BodySource::None => None,
        BodySource::Identity => Some(resp.body.len()),
        BodySource::Compressed => Some(scratch.len()),
    };
    if let Some(len) = len {
        let _ = write!(out, "Content-Length: {len}\r\n");
    }
    match (ex.version, ex.keep_alive) {
        (Version::Http11, false) => out.extend_from_slice(b"Connection: close\r\n"),
        (Version::Http10, true) => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        _ => {}
    }
    out.extend_from_slice(b"\r\n");
    if ex.head_request {
        BodySource::None
    } else {
        body
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn is_connection_owned(name: &str) -> bool {
    [
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "date",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_field_value(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn exchange(coding: Option<ContentCoding>) -> Exchange {
        Exchange {
            version: Version::Http11,
            head_request: false,
            keep_alive: true,
            coding,
        }
    }

    /// Encodes and returns (head text without the Date line, body bytes sent).
    fn encode(resp: &Response, ex: Exchange) -> (String, Vec<u8>) {
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        let src = encode_head(
            resp,
            &ex,
            &mut Compressor::default(),
            &mut scratch,
            &mut out,
        );
        let head = String::from_utf8(out).unwrap();
        let head: String = head
            .split_inclusive("\r\n")
            .filter(|l| !l.starts_with("Date: "))
            .collect();
        let body = match src {
            BodySource::None => Vec::new(),
            BodySource::Identity => resp.body().to_vec(),
            BodySource::Compressed => scratch,
        };
        (head, body)
    }

    #[test]
    fn a_shared_body_is_gzipped_once_and_given_again() {
        let payload = b"{\"status\":\"success\"}".repeat(200);
        let shared = Arc::new(SharedBody::new(payload.clone()));
        let r = Response::json_shared(StatusCode::OK, shared.clone());
        let (head, plain) = encode(&r, exchange(None));
        assert!(!head.contains("Content-Encoding"));
        assert_eq!(plain, payload);
        assert!(!shared.has_gzip(), "made only when a client asks for it");
        let (head, first) = encode(&r, exchange(Some(ContentCoding::Gzip)));
        assert!(head.contains("Content-Encoding: gzip\r\n"), "{head}");
        assert!(head.contains(&format!("Content-Length: {}\r\n", first.len())));
        assert!(shared.has_gzip());
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&first[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, payload);
        // Another response sharing the body gives the kept stream.
        let again = Response::json_shared(StatusCode::OK, shared.clone());
        assert_eq!(encode(&again, exchange(Some(ContentCoding::Gzip))).1, first);
        // Deflate is not kept: made per response, as for any body.
        let (head, _) = encode(&again, exchange(Some(ContentCoding::Deflate)));
        assert!(head.contains("Content-Encoding: deflate\r\n"));
    }

    #[test]
    fn small_body_identity_with_length_and_vary() {
        let r = Response::json(StatusCode::OK, b"{}".to_vec());
        let (head, body) = encode(&r, exchange(Some(ContentCoding::Gzip)));
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nVary: Accept-Encoding\r\nContent-Length: 2\r\n\r\n"
        );
        assert_eq!(body, b"{}");
    }

    #[test]
    fn large_body_is_gzipped_and_existing_vary_extended() {
        let payload = b"{\"metric\":{\"job\":\"node\"},\"value\":[1,\"1\"]},".repeat(100);
        let r = Response::json(StatusCode::OK, payload.clone()).with_header("Vary", "Origin");
        let (head, body) = encode(&r, exchange(Some(ContentCoding::Gzip)));
        assert!(head.contains("Vary: Origin, Accept-Encoding\r\n"), "{head}");
        assert!(head.contains("Content-Encoding: gzip\r\n"));
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(body.len() < payload.len() / 5);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, payload);
        let (head, body) = encode(&r, exchange(None));
        assert!(!head.contains("Content-Encoding"));
        assert!(head.contains("Vary: Origin, Accept-Encoding\r\n"));
        assert_eq!(body, payload);
    }

    #[test]
    fn pre_encoded_or_opted_out_bodies_are_left_alone() {
        let payload = vec![b'a'; 5000];
        let r = Response::new(StatusCode::OK)
            .with_body("application/x-protobuf", payload.clone())
            .with_header("Content-Encoding", "snappy");
        let (head, body) = encode(&r, exchange(Some(ContentCoding::Gzip)));
        assert!(head.contains("Content-Encoding: snappy\r\n") && !head.contains("Vary"));
        assert_eq!(body, payload);
        let r = Response::new(StatusCode::OK)
            .with_body("text/plain", payload.clone())
            .without_compression();
        assert_eq!(encode(&r, exchange(Some(ContentCoding::Gzip))).1, payload);
    }

    #[test]
    fn head_requests_get_lengths_but_no_body() {
        let r = Response::text(StatusCode::OK, "x".repeat(3000));
        let mut ex = exchange(Some(ContentCoding::Deflate));
        let (get_head, get_body) = encode(&r, ex);
        ex.head_request = true;
        let (head_head, head_body) = encode(&r, ex);
        assert_eq!(get_head, head_head);
        assert!(head_head.contains(&format!("Content-Length: {}\r\n", get_body.len())));
        assert!(head_body.is_empty());
    }

    #[test]
    fn no_content_has_no_length_and_no_body() {
        let r = Response::new(StatusCode::NO_CONTENT);
        let (head, body) = encode(&r, exchange(None));
        assert_eq!(head, "HTTP/1.1 204 No Content\r\n\r\n");
        assert!(body.is_empty());
    }

    #[test]
    fn connection_fields_follow_the_exchange_and_handler_cannot_forge_them() {
        let r = Response::text(StatusCode::NOT_FOUND, "nope")
            .with_header("Content-Length", "999")
            .with_header("Connection", "upgrade")
            .with_header("X-Evil", "a\r\nSet-Cookie: x")
            .with_header("Bad Name", "v");
        let mut ex = exchange(None);
        ex.keep_alive = false;
        let (head, _) = encode(&r, ex);
        assert_eq!(
            head,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nVary: Accept-Encoding\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
        );
        ex.version = Version::Http10;
        ex.keep_alive = true;
        let (head, _) = encode(&r, ex);
        assert!(head.starts_with("HTTP/1.0 404 Not Found\r\n"));
        assert!(head.ends_with("Connection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn status_codes() {
        assert_eq!(StatusCode::new(99), None);
        assert_eq!(StatusCode::new(1000), None);
        assert_eq!(StatusCode::new(299).map(|s| s.reason()), Some(""));
        assert!(!StatusCode::CONTINUE.allows_body());
        assert!(StatusCode::OK.allows_body());
    }

    #[test]
    fn set_header_replaces() {
        let mut r = Response::text(StatusCode::OK, "x");
        r.set_header("content-type", "text/html");
        assert_eq!(
            r.headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .count(),
            1
        );
        assert_eq!(r.header("Content-Type"), Some("text/html"));
    }
}
