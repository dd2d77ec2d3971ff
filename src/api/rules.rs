//! `/api/v1/rules`, `/api/v1/alerts` and `/api/v1/alertmanagers`: the rule manager's groups
//! (health, last error, evaluation time and last evaluation of each group and rule, active
//! alerts of alerting rules) and the notifier's Alertmanagers, in Prometheus's JSON. Grafana
//! reads `/rules` at start-up and its alerting UI lists all three.
//!
//! It reads the state the rule manager and notifier keep; it never evaluates or sends.

use std::collections::BTreeMap;

use crate::http::{Request, Response, StatusCode};
use crate::rules::alerting::{Alert, AlertState};
use crate::rules::file::RuleKind;
use crate::rules::group::Group;
use crate::server::App;

use super::json::{self, write_label_pairs, write_string};
use super::rfc3339::{format_nano, Instant};
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

/// Which rules a `/rules` request asks for.
#[derive(Debug, Default)]
struct RuleFilter {
    alerts_only: bool,
    records_only: bool,
    names: Vec<String>,
    groups: Vec<String>,
    files: Vec<String>,
    exclude_alerts: bool,
}

impl RuleFilter {
    fn any(&self) -> bool {
        self.alerts_only
            || self.records_only
            || !self.names.is_empty()
            || !self.groups.is_empty()
            || !self.files.is_empty()
    }
}

/// `GET /api/v1/rules` with Prometheus's filters: `type`, `rule_name[]`, `rule_group[]`,
/// `file[]`, `exclude_alerts`.
pub fn rules(app: &App, req: &Request) -> Response {
    let mut params = crate::http::Params::default();
    params.extend_from_urlencoded(req.raw_query());
    let url_type = params.get("type").map(str::to_string);
    if let Some(message) = check_rules_params(url_type.as_deref()) {
        return bad_data(message);
    }
    let t = url_type.unwrap_or_default().to_ascii_lowercase();
    let filter = RuleFilter {
        alerts_only: t == "alert",
        records_only: t == "record",
        names: params.get_all("rule_name[]").map(str::to_string).collect(),
        groups: params.get_all("rule_group[]").map(str::to_string).collect(),
        files: params.get_all("file[]").map(str::to_string).collect(),
        exclude_alerts: params.get("exclude_alerts") == Some("true"),
    };
    let groups = app.rules.get().map(|r| r.groups()).unwrap_or_default();
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"groups\":[");
    let mut first = true;
    for g in &groups {
        if (!filter.groups.is_empty() && !filter.groups.contains(&g.def.name))
            || (!filter.files.is_empty() && !filter.files.contains(&g.def.file))
        {
            continue;
        }
        let mut rules = Vec::new();
        let mut n = 0;
        for cell in &g.rules {
            let st = cell.borrow();
            let is_alert = st.def.is_alert();
            if (filter.alerts_only && !is_alert)
                || (filter.records_only && is_alert)
                || (!filter.names.is_empty() && !filter.names.contains(&st.def.name))
            {
                continue;
            }
            if n > 0 {
                rules.push(b',');
            }
            n += 1;
            write_rule(&mut rules, &st, filter.exclude_alerts);
        }
        if n == 0 && filter.any() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_group(&mut out, g, &rules);
    }
    out.extend_from_slice(b"]}");
    success(&out)
}

fn write_group(out: &mut Vec<u8>, g: &Group, rules: &[u8]) {
    out.extend_from_slice(b"{\"name\":");
    write_string(out, &g.def.name);
    out.extend_from_slice(b",\"file\":");
    write_string(out, &g.def.file);
    out.extend_from_slice(b",\"rules\":[");
    out.extend_from_slice(rules);
    out.extend_from_slice(b"],\"interval\":");
    out.extend_from_slice(format_secs(g.interval_ms as f64 / 1000.0).as_bytes());
    out.extend_from_slice(format!(",\"limit\":{}", g.def.limit).as_bytes());
    out.extend_from_slice(b",\"evaluationTime\":");
    out.extend_from_slice(format_secs(g.eval_seconds.get()).as_bytes());
    out.extend_from_slice(b",\"lastEvaluation\":");
    write_time(out, g.last_eval.get());
    out.push(b'}');
}

fn write_rule(out: &mut Vec<u8>, st: &crate::rules::group::RuleState, exclude_alerts: bool) {
    match &st.def.kind {
        RuleKind::Alerting {
            for_,
            keep_firing_for,
            ..
        } => {
            out.extend_from_slice(b"{\"state\":");
            write_string(out, st.alerts.state().name());
            out.extend_from_slice(b",\"name\":");
            write_string(out, &st.def.name);
            out.extend_from_slice(b",\"query\":");
            write_string(out, &st.def.expr);
            out.extend_from_slice(b",\"duration\":");
            out.extend_from_slice(format_secs(for_.as_millis() as f64 / 1000.0).as_bytes());
            out.extend_from_slice(b",\"keepFiringFor\":");
            out.extend_from_slice(
                format_secs(keep_firing_for.as_millis() as f64 / 1000.0).as_bytes(),
            );
            out.extend_from_slice(b",\"labels\":");
            write_map(out, &st.def.labels);
            out.extend_from_slice(b",\"annotations\":");
            write_map(out, &st.def.annotations);
            if exclude_alerts {
                // Prometheus leaves its `Alerts` slice nil, which Go encodes as `null`.
                out.extend_from_slice(b",\"alerts\":null");
            } else {
                out.extend_from_slice(b",\"alerts\":[");
                let mut first = true;
                for a in st.alerts.active.values() {
                    if a.state == AlertState::Inactive {
                        continue;
                    }
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    write_alert(out, a);
                }
                out.push(b']');
            }
        }
        RuleKind::Recording => {
            out.extend_from_slice(b"{\"name\":");
            write_string(out, &st.def.name);
            out.extend_from_slice(b",\"query\":");
            write_string(out, &st.def.expr);
            out.extend_from_slice(b",\"labels\":");
            write_map(out, &st.def.labels);
        }
    }
    out.extend_from_slice(b",\"health\":");
    write_string(out, st.health.name());
    if !st.last_error.is_empty() {
        out.extend_from_slice(b",\"lastError\":");
        write_string(out, &st.last_error);
    }
    out.extend_from_slice(b",\"evaluationTime\":");
    out.extend_from_slice(format_secs(st.eval_seconds).as_bytes());
    out.extend_from_slice(b",\"lastEvaluation\":");
    write_time(out, st.last_eval);
    out.extend_from_slice(b",\"type\":");
    write_string(
        out,
        if st.def.is_alert() {
            "alerting"
        } else {
            "recording"
        },
    );
    out.push(b'}');
}

fn write_alert(out: &mut Vec<u8>, a: &Alert) {
    out.extend_from_slice(b"{\"labels\":");
    write_map(out, &a.labels);
    out.extend_from_slice(b",\"annotations\":");
    write_map(out, &a.annotations);
    out.extend_from_slice(b",\"state\":");
    write_string(out, a.state.name());
    out.extend_from_slice(b",\"activeAt\":");
    write_time(out, Some(a.active_at));
    if let Some(k) = a.keep_firing_since {
        out.extend_from_slice(b",\"keepFiringSince\":");
        write_time(out, Some(k));
    }
    out.extend_from_slice(b",\"value\":");
    write_string(out, &format_exp(a.value));
    out.push(b'}');
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: how the API prints an alert's value.
fn format_exp(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let e: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        None => s,
    }
}

/// A float of seconds as Go's JSON encoder prints it.
fn format_secs(v: f64) -> String {
    let mut out = Vec::new();
    json::write_go_json_float(&mut out, v);
    String::from_utf8_lossy(&out).into_owned()
}

/// Labels or annotations as a JSON object, in name order.
fn write_map(out: &mut Vec<u8>, m: &BTreeMap<String, String>) {
    write_label_pairs(out, m.iter().map(|(k, v)| (k.as_str(), v.as_str())));
}

/// An RFC 3339 time in quotes; never evaluated is Go's zero time.
fn write_time(out: &mut Vec<u8>, ms: Option<i64>) {
    match ms {
        None => out.extend_from_slice(b"\"0001-01-01T00:00:00Z\""),
        Some(ms) => {
            out.push(b'"');
            format_nano(
                out,
                Instant {
                    secs: ms.div_euclid(1000),
                    nanos: (ms.rem_euclid(1000) * 1_000_000) as u32,
                },
            );
            out.push(b'"');
        }
    }
}

/// `GET /api/v1/alerts`: every pending or firing alert.
pub fn alerts(app: &App) -> Response {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"alerts\":[");
    let mut first = true;
    for g in app.rules.get().map(|r| r.groups()).unwrap_or_default() {
        for cell in &g.rules {
            let st = cell.borrow();
            for a in st.alerts.active.values() {
                if a.state == AlertState::Inactive {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                write_alert(&mut out, a);
            }
        }
    }
    out.extend_from_slice(b"]}");
    success(&out)
}

/// `GET /api/v1/alertmanagers`: the notifier's active and dropped Alertmanagers.
pub fn alertmanagers(app: &App) -> Response {
    let (active, dropped) = app.notifier.alertmanagers();
    let mut out = Vec::with_capacity(128);
    let list = |out: &mut Vec<u8>, urls: &[String]| {
        out.push(b'[');
        for (i, u) in urls.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"url\":");
            write_string(out, u);
            out.push(b'}');
        }
        out.push(b']');
    };
    out.extend_from_slice(b"{\"activeAlertmanagers\":");
    list(&mut out, &active);
    out.extend_from_slice(b",\"droppedAlertmanagers\":");
    list(&mut out, &dropped);
    out.push(b'}');
    success(&out)
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

    #[test]
    fn alert_values_print_as_go_prints_them() {
        assert_eq!(format_exp(1.0), "1e+00");
        assert_eq!(format_exp(0.25), "2.5e-01");
        assert_eq!(format_exp(1234.5), "1.2345e+03");
    }
}
