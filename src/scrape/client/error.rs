//! Why a scrape request failed, worded as Prometheus's `lastError` words it, since that text
//! is what `/api/v1/targets` shows and what users compare between the two servers.
//!
//! Go's HTTP client prefixes transport failures with `Get "<url>": `; failures while reading
//! the body, a non-200 status and the body size limit come without it, as in Prometheus.

use std::io;

use thiserror::Error;

use super::gunzip::GunzipError;

#[derive(Debug, Error)]
pub enum ScrapeError {
    /// Failed before a complete response head arrived.
    #[error("Get \"{url}\": {cause}")]
    Request { url: String, cause: RequestError },
    /// Any status but 200, as Prometheus: the status line's code and reason.
    #[error("server returned HTTP status {0}")]
    Status(String),
    /// The (decompressed) body reached `body_size_limit`: Prometheus's `errBodySizeLimit`.
    #[error("body size limit exceeded")]
    BodySizeLimit,
    /// The deadline passed while the body was arriving.
    #[error("context deadline exceeded")]
    Timeout,
    #[error("{0}")]
    Body(BodyError),
}

impl ScrapeError {
    /// The scrape timeout fired, before or after the response head.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ScrapeError::Timeout
                | ScrapeError::Request {
                    cause: RequestError::Timeout,
                    ..
                }
        )
    }
}

/// Failures before the response head is complete.
#[derive(Debug, Error)]
pub enum RequestError {
    #[error("{0}")]
    InvalidAddress(String),
    #[error("net/http: invalid header field value for {0:?}")]
    InvalidHeaderValue(&'static str),
    #[error("dial tcp: lookup {host}: {reason}")]
    Lookup { host: String, reason: String },
    #[error("dial tcp {addr}: connect: {reason}")]
    Connect { addr: String, reason: String },
    #[error("context deadline exceeded")]
    Timeout,
    /// The TLS handshake failed, in Go's words (`x509: certificate signed by unknown authority`).
    #[error("{0}")]
    Tls(String),
    /// The server closed the connection without sending a byte.
    #[error("EOF")]
    Eof,
    #[error("net/http: HTTP/1.x transport connection broken: unexpected EOF")]
    TruncatedHead,
    #[error("net/http: HTTP/1.x transport connection broken: malformed HTTP response {0:?}")]
    Malformed(String),
    #[error("net/http: server response headers exceeded {0} bytes; aborted")]
    HeadTooLarge(usize),
    #[error("{op} tcp {addr}: {reason}")]
    Io {
        op: &'static str,
        addr: String,
        reason: String,
    },
}

/// Failures while reading the body.
#[derive(Debug, Error)]
pub enum BodyError {
    #[error("unexpected EOF")]
    UnexpectedEof,
    #[error("{0}")]
    Chunked(String),
    #[error("{0}")]
    Gunzip(GunzipError),
    #[error("read tcp {addr}: read: {reason}")]
    Io { addr: String, reason: String },
}

impl From<GunzipError> for ScrapeError {
    fn from(e: GunzipError) -> Self {
        match e {
            GunzipError::SizeLimit => ScrapeError::BodySizeLimit,
            e => ScrapeError::Body(BodyError::Gunzip(e)),
        }
    }
}

/// An OS error as Go prints it: `connection refused`, not `Connection refused (os error 111)`.
pub fn os_reason(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_prometheus() {
        let refused = ScrapeError::Request {
            url: "http://127.0.0.1:1/metrics".into(),
            cause: RequestError::Connect {
                addr: "127.0.0.1:1".into(),
                reason: os_reason(&io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            },
        };
        assert_eq!(
            refused.to_string(),
            "Get \"http://127.0.0.1:1/metrics\": dial tcp 127.0.0.1:1: connect: connection refused"
        );
        assert_eq!(
            ScrapeError::Status("404 Not Found".into()).to_string(),
            "server returned HTTP status 404 Not Found"
        );
        assert_eq!(
            ScrapeError::from(GunzipError::SizeLimit).to_string(),
            "body size limit exceeded"
        );
        let timeout = ScrapeError::Request {
            url: "http://h:1/m".into(),
            cause: RequestError::Timeout,
        };
        assert!(timeout.is_timeout());
        assert_eq!(
            timeout.to_string(),
            "Get \"http://h:1/m\": context deadline exceeded"
        );
        assert_eq!(
            ScrapeError::Timeout.to_string(),
            "context deadline exceeded"
        );
    }
}
