//! The scrape request's bytes: `GET` with the headers Prometheus sends, written into a reused
//! buffer. Pure; it refuses values that would break the head (CR, LF, NUL), as Go's client
//! does, rather than letting a configured value inject header lines.

use std::io::Write as _;
use std::time::Duration;

use super::error::RequestError;

/// What varies between requests; the client adds nothing else.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub host: &'a str,
    pub path_and_query: &'a str,
    pub accept: &'a str,
    pub accept_gzip: bool,
    pub authorization: Option<&'a str>,
    pub user_agent: &'a str,
    pub timeout: Duration,
}

/// Replaces `out` with the request head.
pub fn encode(req: &RequestHead<'_>, out: &mut Vec<u8>) -> Result<(), RequestError> {
    out.clear();
    let target = match req.path_and_query {
        "" => "/",
        p => p,
    };
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(RequestError::InvalidAddress(format!(
            "invalid request target {target:?}"
        )));
    }
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    header(out, "Host", req.host)?;
    header(out, "User-Agent", req.user_agent)?;
    header(out, "Accept", req.accept)?;
    let encoding = if req.accept_gzip { "gzip" } else { "identity" };
    header(out, "Accept-Encoding", encoding)?;
    if let Some(auth) = req.authorization {
        header(out, "Authorization", auth)?;
    }
    // Go's strconv.FormatFloat(seconds, 'f', -1, 64): shortest round-trip, no exponent,
    // which is what Rust's Display prints for f64.
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "X-Prometheus-Scrape-Timeout-Seconds: {}\r\n\r\n",
        req.timeout.as_secs_f64()
    );
    Ok(())
}

fn header(out: &mut Vec<u8>, name: &'static str, value: &str) -> Result<(), RequestError> {
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(RequestError::InvalidHeaderValue(name));
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> RequestHead<'static> {
        RequestHead {
            host: "[::1]:9100",
            path_and_query: "/metrics?module=x",
            accept: "text/plain;version=0.0.4",
            accept_gzip: true,
            authorization: Some("Bearer t"),
            user_agent: "Prometheus/3.0.0",
            timeout: Duration::from_millis(10_500),
        }
    }

    #[test]
    fn prometheus_headers() {
        let mut out = b"stale".to_vec();
        encode(&head(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /metrics?module=x HTTP/1.1\r\nHost: [::1]:9100\r\nUser-Agent: Prometheus/3.0.0\r\n\
             Accept: text/plain;version=0.0.4\r\nAccept-Encoding: gzip\r\nAuthorization: Bearer t\r\n\
             X-Prometheus-Scrape-Timeout-Seconds: 10.5\r\n\r\n"
        );
        let mut out = Vec::new();
        let plain = RequestHead {
            path_and_query: "",
            accept_gzip: false,
            authorization: None,
            timeout: Duration::from_secs(10),
            ..head()
        };
        encode(&plain, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET / HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("Accept-Encoding: identity\r\n"), "{text}");
        assert!(text.contains("X-Prometheus-Scrape-Timeout-Seconds: 10\r\n"));
        assert!(!text.contains("Authorization"));
    }

    #[test]
    fn refuses_header_injection() {
        let bad = RequestHead {
            authorization: Some("Basic x\r\nX-Evil: 1"),
            ..head()
        };
        assert!(matches!(
            encode(&bad, &mut Vec::new()),
            Err(RequestError::InvalidHeaderValue("Authorization"))
        ));
        let bad = RequestHead {
            path_and_query: "/a b",
            ..head()
        };
        assert!(encode(&bad, &mut Vec::new()).is_err());
    }
}
