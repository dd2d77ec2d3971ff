//! `/federate`: the newest sample of every series matching any `match[]`, in the text format
//! with its own timestamp, for a Prometheus (or promcore) that federates from this one.
//!
//! As Prometheus: the newest sample at or before now within the 5-minute lookback, none if it
//! is a staleness marker; families sorted by name and typed `untyped`; the external labels
//! added to series that lack them.

use std::fmt::Write;

use shards::labels::Label;

use crate::http::{Request, Response, StatusCode};
use crate::metrics::push_float;
use crate::router::protocol::LatestSample;
use crate::scrape::parser::escape_label_value;
use crate::scrape::scrape_loop::unix_ms;
use crate::server::App;

use super::params;

/// Prometheus's default `--query.lookback-delta`.
const LOOKBACK_MS: i64 = 5 * 60 * 1000;

pub async fn federate(app: &App, req: &Request) -> Response {
    let Some(router) = app.router.get() else {
        return Response::text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    };
    let mut selectors = Vec::new();
    for s in req.params().get_all("match[]") {
        match params::parse_matchers(s) {
            Ok(m) => selectors.push(m),
            Err(e) => return Response::text(StatusCode::BAD_REQUEST, format!("{e}\n")),
        }
    }
    let now = unix_ms(std::time::SystemTime::now());
    let mut samples: Vec<LatestSample> = Vec::new();
    for matchers in &selectors {
        match router.latest(matchers, now, LOOKBACK_MS).await {
            Ok(s) => samples.extend(s),
            Err(e) => return Response::text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        }
    }
    samples.sort_by(|a, b| {
        a.labels
            .metric_name()
            .cmp(&b.labels.metric_name())
            .then_with(|| a.labels.cmp(&b.labels))
    });
    samples.dedup_by(|a, b| a.labels == b.labels);
    let external: Vec<Label> = app
        .config
        .borrow()
        .config
        .global
        .external_labels
        .iter()
        .map(|(k, v)| Label::new(k.as_str(), v.as_str()))
        .collect();
    let body = render(&samples, &external);
    Response::new(StatusCode::OK).with_body(crate::metrics::CONTENT_TYPE, body.into_bytes())
}

/// The text exposition of `samples` (sorted by metric name), with `external` labels added
/// where a series lacks them.
fn render(samples: &[LatestSample], external: &[Label]) -> String {
    let mut out = String::new();
    let mut family: Option<&str> = None;
    let mut labels: Vec<&Label> = Vec::new();
    for s in samples {
        let name = s.labels.metric_name().unwrap_or("");
        if family != Some(name) {
            let _ = writeln!(out, "# TYPE {name} untyped");
            family = Some(name);
        }
        labels.clear();
        labels.extend(s.labels.iter().filter(|l| l.name != "__name__"));
        for e in external {
            if s.labels.get(&e.name).is_none() {
                labels.push(e);
            }
        }
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (i, l) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&l.name);
                out.push_str("=\"");
                escape_label_value(&l.value, &mut out);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        push_float(&mut out, s.v);
        let _ = writeln!(out, " {}", s.t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shards::labels::Labels;

    #[test]
    fn families_are_untyped_and_external_labels_fill_gaps() {
        let s = |pairs: &[(&str, &str)], t, v| LatestSample {
            labels: Labels::from_pairs(pairs.iter().copied()).unwrap(),
            t,
            v,
        };
        let samples = vec![
            s(&[("__name__", "a"), ("job", "x")], 1000, 1.0),
            s(&[("__name__", "a"), ("job", "y"), ("dc", "own")], 2000, 0.5),
            s(&[("__name__", "b")], 3000, f64::INFINITY),
        ];
        let external = vec![Label::new("dc", "eu\"1")];
        assert_eq!(
            render(&samples, &external),
            "# TYPE a untyped\n\
             a{dc=\"eu\\\"1\",job=\"x\"} 1 1000\n\
             a{dc=\"own\",job=\"y\"} 0.5 2000\n\
             # TYPE b untyped\n\
             b{dc=\"eu\\\"1\"} +Inf 3000\n"
        );
    }
}
