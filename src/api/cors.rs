//! Cross-origin headers on every `/api/v1` answer, as Prometheus's `SetCORS` writes them: `Vary:
//! Origin` always; for a request with an `Origin`, the allowed headers, methods and exposed
//! headers, and `Access-Control-Allow-Origin` (`*` for the default `.*`, the origin itself when
//! it fully matches `--web.cors.origin`, absent otherwise). It only adds headers; it never
//! refuses a request (browsers enforce CORS, not servers).

use regex::Regex;

use crate::http::Response;

/// The `--web.cors.origin` policy, compiled once.
#[derive(Debug, Clone)]
pub struct Cors {
    /// The default `.*`: any origin, answered with `*`.
    any: bool,
    /// The anchored pattern; `None` when it does not compile (no origin is allowed then).
    origin: Option<Regex>,
}

impl Cors {
    /// `pattern` as `--web.cors.origin` takes it, anchored at both ends as Prometheus anchors
    /// it. An invalid pattern allows no origin (the flag parser refuses those already).
    pub fn new(pattern: &str) -> Cors {
        Cors {
            any: pattern == ".*",
            origin: Regex::new(&format!("^(?:{pattern})$")).ok(),
        }
    }

    /// Adds the CORS headers for a request that sent `origin` (or none).
    pub fn apply(&self, origin: Option<&[u8]>, response: &mut Response) {
        response.set_header("Vary", "Origin");
        let Some(origin) = origin else {
            return;
        };
        response.set_header(
            "Access-Control-Allow-Headers",
            "Accept, Authorization, Content-Type, Origin",
        );
        response.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        response.set_header("Access-Control-Expose-Headers", "Date");
        if self.any {
            response.set_header("Access-Control-Allow-Origin", "*");
        } else if let (Some(re), Ok(origin)) = (&self.origin, std::str::from_utf8(origin)) {
            if re.is_match(origin) {
                response.set_header("Access-Control-Allow-Origin", origin.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::StatusCode;

    fn headers(cors: &Cors, origin: Option<&str>) -> Response {
        let mut r = Response::new(StatusCode::OK);
        cors.apply(origin.map(str::as_bytes), &mut r);
        r
    }

    #[test]
    fn no_origin_only_varies() {
        let r = headers(&Cors::new(".*"), None);
        assert_eq!(r.header("Vary"), Some("Origin"));
        assert_eq!(r.header("Access-Control-Allow-Origin"), None);
        assert_eq!(r.header("Access-Control-Allow-Methods"), None);
    }

    #[test]
    fn default_allows_any_origin_as_star() {
        let r = headers(&Cors::new(".*"), Some("http://a.example"));
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(
            r.header("Access-Control-Allow-Methods"),
            Some("GET, POST, OPTIONS")
        );
        assert_eq!(r.header("Access-Control-Expose-Headers"), Some("Date"));
    }

    #[test]
    fn configured_regex_is_anchored() {
        let cors = Cors::new(r"https?://grafana\.example");
        let ok = headers(&cors, Some("https://grafana.example"));
        assert_eq!(
            ok.header("Access-Control-Allow-Origin"),
            Some("https://grafana.example")
        );
        let suffix = headers(&cors, Some("https://grafana.example.evil"));
        assert_eq!(suffix.header("Access-Control-Allow-Origin"), None);
        assert_eq!(
            suffix.header("Access-Control-Allow-Headers"),
            Some("Accept, Authorization, Content-Type, Origin")
        );
    }
}
