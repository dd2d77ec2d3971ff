//! Grafana's walkthrough: the request sequence Grafana's Prometheus datasource sends
//! (../shared/spec/grafana-datasource.md) when a user adds the datasource (health check,
//! build info, exemplar probe, rules), opens Explore (metric list, metadata), browses labels
//! and values with `match[]` and snapped `start`/`end`, runs a query (range and instant by
//! POST, with the exemplar query), and loads a dashboard with chained variables
//! (`label_values(up, job)`, then `label_values(g_temp{job="$job"}, room)`, then the panel's
//! query with both substituted). Each answer is checked as Grafana reads it. The same
//! sequence runs against Prometheus 2.42 (Debian's), which validates the expectations, and
//! against the server under test.

mod common;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::http;
use common::{free_port, urlencode, wait_until, Binary, Reply, Server, TestTarget, PATIENCE};
use serde_json::Value;

const BODY: &str = "# HELP g_temp Temperature.
# TYPE g_temp gauge
g_temp{room=\"a\"} 21.5
g_temp{room=\"b\"} 19
g_temp{room=\"c\"} 23
# HELP req_total Requests.
# TYPE req_total counter
req_total{code=\"200\"} 10
req_total{code=\"500\"} 1
";

const FORM: &str = "application/x-www-form-urlencoded";

struct Step<'a> {
    server: &'a Server,
    log: Vec<String>,
}

impl Step<'_> {
    /// One request, its answer's JSON envelope checked (200, `success`); `data` returned.
    fn call(&mut self, method: &str, path: &str, body: &str) -> Value {
        let r = match method {
            "GET" => http::get(self.server.port, path),
            _ => http::post(self.server.port, path, FORM, body.as_bytes()),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let text = r.text();
        self.log
            .push(format!("{method} {path} [{body}] -> {}", r.status));
        assert_eq!(r.status, 200, "{method} {path} [{body}]: {text}");
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{method} {path}"
        );
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(v["status"], "success", "{method} {path}: {text}");
        v["data"].clone()
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array of strings: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_string()
        })
        .collect()
}

/// A query answer as Grafana's converter reads it: `resultType` and, per series, labels and
/// `[number, "string"]` points.
fn check_result(v: &Value, result_type: &str) -> usize {
    assert_eq!(v["resultType"], result_type, "{v}");
    let result = v["result"].as_array().unwrap();
    for s in result {
        assert!(s["metric"].is_object(), "{s}");
        let points: Vec<&Value> = match result_type {
            "matrix" => s["values"].as_array().unwrap().iter().collect(),
            _ => vec![&s["value"]],
        };
        for p in points {
            assert!(p[0].is_number() && p[1].is_string(), "point {p}");
            assert!(p[1].as_str().unwrap().parse::<f64>().is_ok(), "value {p}");
        }
    }
    result.len()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The whole walkthrough against one server.
fn walkthrough(server: &Server) -> Vec<String> {
    let mut s = Step {
        server,
        log: Vec::new(),
    };
    let t = now();
    // Grafana's snapping of lookups (cache level Low): start down, end up, to the minute.
    let (start, end) = ((t - 3600) / 60 * 60, (t / 60 + 1) * 60);
    let window = format!("start={start}&end={end}");

    // 1. Add the datasource: "Save & test" (an instant query of 1+1 at t=4), build info.
    let health = s.call("POST", "/api/v1/query", "query=1%2B1&time=4");
    assert_eq!(
        health,
        serde_json::json!({"resultType": "scalar", "result": [4, "2"]})
    );
    let build = s.call("GET", "/api/v1/status/buildinfo", "");
    assert!(build["version"].is_string(), "{build}");
    assert!(
        build
            .get("features")
            .is_none_or(|f| f.as_object().is_none_or(|o| o.is_empty())),
        "a features map makes Grafana treat the server as Mimir: {build}"
    );
    // Datasource start-up: exemplar probe (milliseconds where seconds are expected), rules.
    let ms = t * 1000;
    let ex = s.call(
        "GET",
        &format!(
            "/api/v1/query_exemplars?query=test&start={}&end={ms}",
            ms - 1_800_000
        ),
        "",
    );
    assert!(ex.is_array(), "{ex}");
    let rules = s.call("GET", "/api/v1/rules", "");
    assert!(rules["groups"].is_array(), "{rules}");

    // 2. Open Explore: the metric list and the metadata of the metric browser.
    let names = strings(&s.call(
        "GET",
        &format!("/api/v1/label/__name__/values?{window}&limit=40000"),
        "",
    ));
    for m in ["g_temp", "req_total", "up"] {
        assert!(names.iter().any(|n| n == m), "{m} missing from {names:?}");
    }
    let md = s.call("GET", "/api/v1/metadata", "");
    assert_eq!(md["g_temp"][0]["type"], "gauge", "{md}");
    assert_eq!(md["req_total"][0]["type"], "counter", "{md}");
    assert_eq!(md["g_temp"][0]["help"], "Temperature.", "{md}");

    // 3. Browse labels of a metric, and values of one label, scoped by match[].
    let sel = urlencode("g_temp");
    let labels = strings(&s.call(
        "GET",
        &format!("/api/v1/labels?{window}&limit=40000&match[]={sel}"),
        "",
    ));
    for l in ["__name__", "instance", "job", "room"] {
        assert!(labels.iter().any(|x| x == l), "{l} missing from {labels:?}");
    }
    // Resource calls by POST keep the parameters in the URL.
    let posted = strings(&s.call(
        "POST",
        &format!("/api/v1/labels?{window}&limit=40000&match[]={sel}"),
        "",
    ));
    assert_eq!(posted, labels);
    let rooms = strings(&s.call(
        "GET",
        &format!("/api/v1/label/room/values?{window}&limit=40000&match[]={sel}"),
        "",
    ));
    assert_eq!(rooms, ["a", "b", "c"]);
    let series = s.call(
        "GET",
        &format!(
            "/api/v1/series?{window}&limit=40000&match[]={}",
            urlencode("{__name__!=\"\"}")
        ),
        "",
    );
    let series = series.as_array().unwrap();
    assert!(series.iter().all(|x| x["__name__"].is_string()));
    assert!(series.iter().filter(|x| x["__name__"] == "g_temp").count() == 3);
    let posted_series = s.call(
        "POST",
        "/api/v1/series",
        &format!("match[]={}&{window}&limit=40000", urlencode("req_total")),
    );
    assert_eq!(posted_series.as_array().map(Vec::len), Some(2));

    // 4. Run a query in Explore ("Both": range and instant, by POST, plus exemplars). Step
    //    and range aligned as Grafana aligns them; the range starts after the first scrape.
    let step = 1;
    let (q_start, q_end) = (t - 5, t);
    let expr = urlencode("sum by (room) (g_temp)");
    let range = s.call(
        "POST",
        "/api/v1/query_range",
        &format!("query={expr}&start={q_start}&end={q_end}&step={step}&timeout=60s"),
    );
    assert_eq!(check_result(&range, "matrix"), 3);
    let instant = s.call("POST", "/api/v1/query", &format!("query={expr}&time={t}"));
    assert_eq!(check_result(&instant, "vector"), 3);
    let exemplars = s.call(
        "POST",
        "/api/v1/query_exemplars",
        &format!("query={expr}&start={q_start}&end={q_end}"),
    );
    assert!(exemplars.is_array());
    let rate = s.call(
        "POST",
        "/api/v1/query_range",
        &format!(
            "query={}&start={q_start}&end={q_end}&step={step}",
            urlencode("sum(rate(req_total[5s]))")
        ),
    );
    assert_eq!(check_result(&rate, "matrix"), 1);

    // 5. Load a dashboard with chained variables: job, then room for that job, then the
    //    panel with both substituted (multi-value room as Grafana's regex).
    let jobs = strings(&s.call(
        "GET",
        &format!(
            "/api/v1/label/job/values?match[]={}&{window}",
            urlencode("up")
        ),
        "",
    ));
    assert_eq!(jobs, ["walk"]);
    let job = &jobs[0];
    let chained = strings(&s.call(
        "GET",
        &format!(
            "/api/v1/label/room/values?match[]={}&{window}",
            urlencode(&format!("g_temp{{job=\"{job}\"}}"))
        ),
        "",
    ));
    assert_eq!(chained, ["a", "b", "c"]);
    let panel = s.call(
        "POST",
        "/api/v1/query_range",
        &format!(
            "query={}&start={q_start}&end={q_end}&step={step}",
            urlencode(&format!(
                "avg by (room) (g_temp{{job=\"{job}\",room=~\"({}|{})\"}})",
                chained[0], chained[1]
            ))
        ),
    );
    assert_eq!(check_result(&panel, "matrix"), 2);
    // Annotations query and the alerting view of the datasource.
    let alerts = s.call("GET", "/api/v1/alerts", "");
    assert!(alerts["alerts"].is_array());
    s.log
}

fn start(binary: &Binary, dir: &Path, config: &str) -> Server {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();
    let mut server = Server::spawn(binary, &path, &dir.join("data"), free_port(), &[]);
    server.wait_ready();
    server
}

/// Until the target was scraped for a few seconds (range queries start 5 s back) with its
/// metadata.
fn wait_for_data(server: &Server) {
    let ready = wait_until(PATIENCE, || {
        let r = http::get(
            server.port,
            "/api/v1/query?query=count_over_time(g_temp%7Broom%3D%22a%22%7D%5B10s%5D)",
        )
        .ok()?;
        let v: Value = serde_json::from_slice(&r.body).ok()?;
        let n: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
        (n >= 7.0).then_some(())
    });
    assert!(ready.is_some(), "no data\n{}", server.log_tail());
}

fn run(binary: Binary) {
    let target = TestTarget::serve(|_| Reply::Metrics(BODY.to_string()));
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: walk\n    static_configs:\n      - targets: ['{}']\n",
        target.address()
    );
    let server = start(&binary, dir.path(), &config);
    wait_for_data(&server);
    let log = walkthrough(&server);
    eprintln!("{}: {} requests green", binary.name(), log.len());
    drop((server, target));
}

#[test]
fn grafana_walkthrough_against_the_server_under_test() {
    run(Binary::under_test());
}

#[test]
fn grafana_walkthrough_against_prometheus_2_42() {
    let reference = Binary::prometheus();
    if std::process::Command::new(&reference.path)
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no `prometheus` binary (Debian's 2.42) on PATH");
        return;
    }
    run(reference);
}
