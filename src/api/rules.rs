//! `/api/v1/rules`, `/api/v1/alerts` and `/api/v1/alertmanagers`. promcore evaluates no rules
//! and sends no alerts yet, so these answer Prometheus's shapes with nothing in them — what
//! Prometheus answers with no rule files and no Alertmanager configured — after checking the
//! parameters Prometheus checks. Grafana reads `/rules` at start-up and its alerting UI lists
//! both; an empty but well-formed answer is what keeps them working.

use crate::http::{Request, Response, StatusCode};

use super::json;
use super::v1::bad_data;

fn success(data: &[u8]) -> Response {
    let mut out = Vec::with_capacity(32 + data.len());
    json::success(&mut out, |o| o.extend_from_slice(data));
    Response::json(StatusCode::OK, out)
}

/// Why a `/rules` request is refused; `None` for a valid one.
pub fn check_rules_params(rule_type: Option<&str>) -> Option<String> {
    let t = rule_type.unwrap_or("").to_ascii_lowercase();
    match t.as_str() {
        "" | "alert" | "record" => None,
        _ => Some(format!(
            "invalid parameter \"type\": not supported value {}",
            super::params::GoQuoted(&t)
        )),
    }
}

/// `GET /api/v1/rules`: `{"groups":[]}`. Only `type` is checked, as Prometheus 2.42 checks it
/// (from the URL's query string); the filters Grafana adds (`file[]`, `rule_group[]`, ...)
/// select from no groups.
pub fn rules(req: &Request) -> Response {
    let url_type = url_param(req, "type");
    if let Some(message) = check_rules_params(url_type.as_deref()) {
        return bad_data(message);
    }
    success(br#"{"groups":[]}"#)
}

/// `GET /api/v1/alerts`: `{"alerts":[]}`.
pub fn alerts() -> Response {
    success(br#"{"alerts":[]}"#)
}

/// `GET /api/v1/alertmanagers`: none active, none dropped.
pub fn alertmanagers() -> Response {
    success(br#"{"activeAlertmanagers":[],"droppedAlertmanagers":[]}"#)
}

/// A parameter from the URL's query string only (Go's `r.URL.Query().Get`), ignoring a form
/// body, for the handlers Prometheus writes that way.
fn url_param(req: &Request, name: &str) -> Option<String> {
    let mut params = crate::http::Params::default();
    params.extend_from_urlencoded(req.raw_query());
    params.get(name).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_type_is_checked_case_insensitively() {
        assert_eq!(check_rules_params(None), None);
        assert_eq!(check_rules_params(Some("")), None);
        assert_eq!(check_rules_params(Some("ALERT")), None);
        assert_eq!(check_rules_params(Some("record")), None);
        assert_eq!(
            check_rules_params(Some("Recording")).as_deref(),
            Some("invalid parameter \"type\": not supported value \"recording\"")
        );
    }
}
