//! The Grafana dashboard of `config/grafana/dashboards/promcore.json` works against promcore:
//! promcore scrapes itself, and every PromQL expression of every panel (Grafana's variables
//! substituted as Grafana would) runs as the range query Grafana sends, without error, and
//! returns data; each template variable query returns values. Every metric the dashboard
//! names must therefore be one promcore really exports.

mod common;

use common::http;
use common::{free_port, urlencode, wait_until, Server, PATIENCE};
use serde_json::Value;

fn dashboard() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/grafana/dashboards/promcore.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Grafana's substitutions: `All` for the multi-value variables, a rate window of several
/// scrapes.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "10s")
        .replace("$instance", ".*")
        .replace("$job", ".*")
}

/// `label_values(selector, label)` as Grafana sends it: a label-values call with `match[]`.
fn variable_request(query: &str) -> String {
    let inner = query
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a label_values() query: {query}"));
    let (selector, label) = inner.rsplit_once(',').unwrap();
    format!(
        "/api/v1/label/{}/values?match[]={}",
        label.trim(),
        urlencode(&substitute(selector.trim()))
    )
}

fn post_range(server: &Server, expr: &str, start: i64, end: i64) -> Value {
    let body = format!("query={}&start={start}&end={end}&step=1", urlencode(expr));
    let r = http::post(
        server.port,
        "/api/v1/query_range",
        "application/x-www-form-urlencoded",
        body.as_bytes(),
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{expr}: not JSON ({e}): {}", r.text()));
    assert_eq!(r.status, 200, "{expr}: {}", r.text());
    assert_eq!(v["status"], "success", "{expr}: {v}");
    v
}

#[test]
fn every_dashboard_expression_runs_and_has_data() {
    let d = dashboard();
    let mut exprs = Vec::new();
    for panel in d["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let e = target["expr"].as_str().unwrap();
            exprs.push((panel["title"].as_str().unwrap().to_string(), e.to_string()));
        }
    }
    assert!(exprs.len() >= 10, "the dashboard lost its panels");
    let variables: Vec<String> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| v["query"]["query"].as_str().unwrap().to_string())
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: promcore\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    let server = Server::start(dir.path(), port, &config);

    for (title, expr) in &exprs {
        let expr = substitute(expr);
        let answered = wait_until(PATIENCE, || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let v = post_range(&server, &expr, now - 30, now);
            v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
                .then_some(())
        });
        assert!(
            answered.is_some(),
            "panel {title:?}: {expr} returned no data\n{}",
            server.log_tail()
        );
    }
    for query in &variables {
        let values = server.api(&variable_request(query));
        assert!(
            values.as_array().is_some_and(|a| !a.is_empty()),
            "variable {query}: no values"
        );
    }
}
