//! PromQL reachable end to end: the server scrapes a target, and `/api/v1/query` and
//! `/api/v1/query_range` (GET and POST) answer over what it stored with Prometheus's JSON,
//! parameter errors and limit warnings. Run with `E2E_SERVER_BIN=/usr/bin/prometheus` to check
//! the expectations against Prometheus itself.

mod common;

use common::http;
use common::{free_port, urlencode, wait_until, Server, TestTarget, PATIENCE};
use serde_json::Value;

fn start() -> (tempfile::TempDir, TestTarget, Server) {
    let target = TestTarget::serve(|n| {
        common::target::Reply::Metrics(format!(
            "# TYPE g gauge\ng{{k=\"a\"}} 1\ng{{k=\"b\"}} 2\n# TYPE c_total counter\nc_total {}\n",
            n * 10
        ))
    });
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: t\n    static_configs:\n      - targets: ['{}']\n",
        target.address()
    );
    let server = Server::start(dir.path(), free_port(), &config);
    (dir, target, server)
}

/// Waits until both gauge series are queryable.
fn wait_for_data(server: &Server) {
    let ready = wait_until(PATIENCE, || {
        let (status, v) = query(server, "g", "");
        (status == 200 && v["data"]["result"].as_array()?.len() == 2).then_some(())
    });
    assert!(ready.is_some(), "g never had 2 series\n{}", server.log());
}

fn json(r: &http::Response) -> Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&r.body)))
}

fn get(server: &Server, path: &str) -> (u16, Value) {
    let r = http::get(server.port, path).expect("GET");
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{path}: {}",
        r.text()
    );
    (r.status, json(&r))
}

fn query(server: &Server, q: &str, extra: &str) -> (u16, Value) {
    get(
        server,
        &format!("/api/v1/query?query={}{extra}", urlencode(q)),
    )
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn queries_answer_over_scraped_data_with_prometheus_json() {
    let (_dir, _target, server) = start();
    wait_for_data(&server);
    let (_, result) = query(&server, "g", "");
    assert_eq!(result["status"], "success");
    assert_eq!(result["data"]["resultType"], "vector");
    let first = &result["data"]["result"][0];
    assert_eq!(first["metric"]["__name__"], "g");
    assert_eq!(first["metric"]["job"], "t");
    assert!(first["value"][0].is_number());
    assert!(first["value"][1].is_string());

    // Aggregation drops the name; the value is a string.
    let (status, v) = query(&server, "sum(g)", "");
    assert_eq!(status, 200);
    assert_eq!(v["data"]["result"][0]["metric"], serde_json::json!({}));
    assert_eq!(v["data"]["result"][0]["value"][1], "3");

    // Grafana's health check: `1+1` at time 4 is the scalar [4,"2"].
    let (status, v) = query(&server, "1+1", "&time=4");
    assert_eq!(status, 200);
    assert_eq!(
        v["data"],
        serde_json::json!({"resultType": "scalar", "result": [4, "2"]})
    );

    // The counter goes up 10 per scrape: its rate over a few scrapes is positive.
    let rate = wait_until(PATIENCE, || {
        let (_, v) = query(&server, "rate(c_total[5s])", "");
        let s = v["data"]["result"][0]["value"][1]
            .as_str()?
            .parse::<f64>()
            .ok()?;
        (s > 0.0).then_some(s)
    });
    assert!(rate.is_some(), "rate(c_total[5s]) stayed empty or zero");

    // A range query: one series, one point per step, every value 1.
    let end = now_s().floor();
    let (status, v) = get(
        &server,
        &format!(
            "/api/v1/query_range?query={}&start={}&end={end}&step=1",
            urlencode("g{k=\"a\"}"),
            end - 3.0
        ),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let series = v["data"]["result"].as_array().unwrap();
    assert_eq!(series.len(), 1);
    let values = series[0]["values"].as_array().unwrap();
    assert!(!values.is_empty() && values.len() <= 4, "{values:?}");
    assert!(values.iter().all(|p| p[1] == "1"));

    // POST with a form body, as Grafana sends queries.
    let r = http::post(
        server.port,
        "/api/v1/query",
        "application/x-www-form-urlencoded",
        format!("query={}&time={}", urlencode("count(g)"), now_s()).as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(json(&r)["data"]["result"][0]["value"][1], "2");

    // `limit` cuts the series and says so (Prometheus 3; 2.42 ignores the parameter).
    if server.binary.promcore {
        let (status, v) = query(&server, "g", "&limit=1");
        assert_eq!(status, 200);
        assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1);
        assert_eq!(v["warnings"][0], "results truncated due to limit");
    }
}

#[test]
fn bad_queries_are_bad_data() {
    let (_dir, _target, server) = start();

    let (status, v) = query(&server, "sum(", "");
    assert_eq!(status, 400);
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.starts_with("invalid parameter \"query\": "), "{msg}");

    let (status, v) = get(
        &server,
        &format!(
            "/api/v1/query_range?query={}&start=0&end=10&step=1",
            urlencode("g[5m]")
        ),
    );
    assert_eq!(status, 400);
    // Prometheus 3 names the parameter; 2.42 sent the bare message.
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.ends_with(
            "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
        ),
        "{msg}"
    );

    let (status, v) = get(&server, "/api/v1/query_range?query=g&start=0&end=10&step=0");
    assert_eq!(status, 400);
    assert_eq!(
        v["error"],
        "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"
    );

    let (status, v) = get(&server, "/api/v1/query_range?query=g&start=10&end=0&step=1");
    assert_eq!(status, 400);
    assert_eq!(
        v["error"],
        "invalid parameter \"end\": end timestamp must not be before start time"
    );

    let (status, v) = query(&server, "g", "&time=yesterday");
    assert_eq!(status, 400);
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.starts_with("invalid parameter \"time\": ")
            && msg.ends_with("cannot parse \"yesterday\" to a valid timestamp"),
        "{msg}"
    );

    // An evaluation error is `execution`, 422.
    wait_for_data(&server);
    let (status, v) = query(&server, "label_replace(g, \"k\", \"x\", \"k\", \".*\")", "");
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["errorType"], "execution");
}
