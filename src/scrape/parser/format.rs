//! Which exposition format a response body is in, chosen from its `Content-Type` the way
//! Prometheus chooses its parser. This file only names formats; it never looks at a body.

use thiserror::Error;

/// The text formats the parser reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain; version=0.0.4` (and `version=1.0.0` with legacy names).
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0` (or the pre-release `0.0.1`).
    OpenMetrics,
}

/// Why no format could be chosen; the messages are Prometheus 3's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContentTypeError {
    #[error("non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol specified for target")]
    Missing,
    #[error("cannot parse Content-Type {0:?} and no fallback_scrape_protocol for target")]
    Unparsable(String),
    #[error("received unsupported Content-Type {0:?} and no fallback_scrape_protocol specified for target")]
    Unsupported(String),
    #[error("received protobuf exposition (Content-Type {0:?}), which is not supported: the target should honour the Accept header and send text or OpenMetrics")]
    Protobuf(String),
}

const PROTOBUF: &str = "application/vnd.google.protobuf";

impl Format {
    /// Prometheus 3's rule: a recognised media type picks its parser; a missing, unparsable
    /// or unknown one fails the scrape unless the target has a `fallback_scrape_protocol`.
    /// An empty `content_type` means the header was absent. Protobuf is refused even with a
    /// fallback: it is never asked for, and the text parser would only produce noise.
    pub fn from_content_type(
        content_type: &str,
        fallback: Option<Format>,
    ) -> Result<Format, ContentTypeError> {
        if content_type.trim().is_empty() {
            return fallback.ok_or(ContentTypeError::Missing);
        }
        let Some(media_type) = media_type(content_type) else {
            return fallback.ok_or_else(|| ContentTypeError::Unparsable(content_type.into()));
        };
        if media_type.eq_ignore_ascii_case("application/openmetrics-text") {
            Ok(Format::OpenMetrics)
        } else if media_type.eq_ignore_ascii_case("text/plain") {
            Ok(Format::PrometheusText)
        } else if media_type.eq_ignore_ascii_case(PROTOBUF) {
            Err(ContentTypeError::Protobuf(content_type.into()))
        } else {
            fallback.ok_or_else(|| ContentTypeError::Unsupported(content_type.into()))
        }
    }

    /// The media type this parser understands, for building `Accept` headers.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::PrometheusText => "text/plain",
            Format::OpenMetrics => "application/openmetrics-text",
        }
    }
}

/// Prometheus 2's rule: OpenMetrics when the response says so, text 0.0.4 for anything
/// else, a missing or unknown type included.
pub fn format_for_content_type(content_type: &str) -> Format {
    Format::from_content_type(content_type, Some(Format::PrometheusText))
        .unwrap_or(Format::PrometheusText)
}

/// The `type/subtype` of a Content-Type, if the header parses as Go's `mime.ParseMediaType`
/// would accept it: tokens around the slash, then `; name=value` parameters whose value is
/// a token or a quoted string (a trailing `;` is tolerated).
fn media_type(content_type: &str) -> Option<&str> {
    let mut parts = content_type.split(';');
    let media_type = parts.next()?.trim();
    let (kind, subtype) = media_type.split_once('/')?;
    if !is_token(kind) || !is_token(subtype) {
        return None;
    }
    let mut params = parts.map(str::trim).peekable();
    while let Some(param) = params.next() {
        if param.is_empty() && params.peek().is_none() {
            break;
        }
        let (name, value) = param.split_once('=')?;
        let (name, value) = (name.trim(), value.trim());
        let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        if !is_token(name) || !(quoted || is_token(value)) {
            return None;
        }
    }
    Some(media_type)
}

/// RFC 2045 token: printable ASCII without spaces and tspecials.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Format::*;

    #[test]
    fn recognised_media_types() {
        for (ct, f) in [
            ("text/plain; version=0.0.4; charset=utf-8", PrometheusText),
            ("text/plain", PrometheusText),
            (
                "TEXT/Plain;version=1.0.0;escaping=underscores",
                PrometheusText,
            ),
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                OpenMetrics,
            ),
            ("application/openmetrics-text;version=0.0.1", OpenMetrics),
            (
                "application/openmetrics-text; charset=\"utf-8\";",
                OpenMetrics,
            ),
        ] {
            assert_eq!(Format::from_content_type(ct, None), Ok(f), "{ct}");
            assert_eq!(format_for_content_type(ct), f, "{ct}");
        }
    }

    #[test]
    fn prometheus3_refuses_without_fallback() {
        assert_eq!(
            Format::from_content_type("", None),
            Err(ContentTypeError::Missing)
        );
        assert!(matches!(
            Format::from_content_type("text/html", None),
            Err(ContentTypeError::Unsupported(_))
        ));
        for bad in [
            "text",
            "text/plain; version",
            "/plain",
            "text/pl ain",
            "text/plain;a=b c",
        ] {
            assert!(
                matches!(
                    Format::from_content_type(bad, None),
                    Err(ContentTypeError::Unparsable(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            Format::from_content_type("text/html", Some(OpenMetrics)),
            Ok(OpenMetrics)
        );
        assert_eq!(
            Format::from_content_type("", Some(PrometheusText)),
            Ok(PrometheusText)
        );
    }

    #[test]
    fn protobuf_is_refused() {
        let ct = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
        assert!(matches!(
            Format::from_content_type(ct, Some(PrometheusText)),
            Err(ContentTypeError::Protobuf(_))
        ));
    }

    #[test]
    fn prometheus2_falls_back_to_text() {
        for ct in ["", "text/html", "garbage", "application/json"] {
            assert_eq!(format_for_content_type(ct), PrometheusText, "{ct}");
        }
    }
}
