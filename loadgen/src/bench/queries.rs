//! The fixed query set run against every server at the end of a measured window, and the
//! latency of each: the same PromQL, evaluated at the same kind of instant (the end of the
//! window) or over the window, a few times each, the median kept.
//!
//! The queries touch what dashboards touch on loadgen's families: a count, counter rates,
//! a histogram quantile, a top-k of gauges, a grouping, and one range query. This module
//! sends queries; it never judges their answers beyond counting series.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::client;

/// How many times each query runs; the median is reported.
pub const RUNS: usize = 3;
const TIMEOUT: Duration = Duration::from_secs(120);

/// `(name, PromQL, range?)`: range queries span the window at a 15 s step.
pub const QUERIES: [(&str, &str, bool); 6] = [
    ("count_up", "count(up == 1)", false),
    (
        "sum_rate",
        "sum(rate(loadgen_http_requests_total[1m]))",
        false,
    ),
    (
        "by_handler",
        "sum by (handler) (rate(loadgen_http_requests_total[1m]))",
        false,
    ),
    (
        "p99_latency",
        "histogram_quantile(0.99, sum by (le) (rate(loadgen_http_request_duration_seconds_bucket[1m])))",
        false,
    ),
    ("topk_gauge", "topk(10, loadgen_memory_usage_bytes)", false),
    (
        "range_sum_rate",
        "sum(rate(loadgen_http_requests_total[1m]))",
        true,
    ),
];

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueryLatency {
    pub name: &'static str,
    pub query: &'static str,
    pub median_ms: f64,
    /// Series in the answer (or the error), so a fast wrong answer is visible.
    pub series: Option<usize>,
    pub error: Option<String>,
}

/// The query path for an instant query at `at` or a range query over `[at - span, at]`.
pub fn path(query: &str, range: bool, at: f64, span: Duration) -> String {
    let q = client::encode(query);
    if range {
        format!(
            "/api/v1/query_range?query={q}&start={:.3}&end={at:.3}&step=15",
            at - span.as_secs_f64()
        )
    } else {
        format!("/api/v1/query?query={q}&time={at:.3}")
    }
}

/// Series in a query answer, or the reason it failed.
pub fn series_in(body: &str) -> Result<usize, String> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    if v["status"] != "success" {
        return Err(format!("query failed: {}", v["error"]));
    }
    v["data"]["result"]
        .as_array()
        .map(Vec::len)
        .ok_or_else(|| "answer without a result array".to_string())
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Runs the query set against `addr`, evaluated at `at` (Unix seconds).
pub fn run(addr: SocketAddr, at: f64, span: Duration) -> Vec<QueryLatency> {
    QUERIES
        .iter()
        .map(|&(name, query, range)| {
            let p = path(query, range, at, span);
            let mut times = Vec::with_capacity(RUNS);
            let mut outcome = Err("not run".to_string());
            for _ in 0..RUNS {
                let started = Instant::now();
                let answer = client::get_ok(addr, &p, TIMEOUT).map_err(|e| e.to_string());
                times.push(started.elapsed().as_secs_f64() * 1e3);
                outcome = answer.and_then(|body| series_in(&body));
            }
            QueryLatency {
                name,
                query,
                median_ms: median(times),
                series: outcome.as_ref().ok().copied(),
                error: outcome.err(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_answers() {
        assert_eq!(
            path("up", false, 100.0, Duration::from_secs(60)),
            "/api/v1/query?query=up&time=100.000"
        );
        assert_eq!(
            path("up", true, 100.0, Duration::from_secs(60)),
            "/api/v1/query_range?query=up&start=40.000&end=100.000&step=15"
        );
        assert_eq!(
            series_in(r#"{"status":"success","data":{"resultType":"vector","result":[{},{}]}}"#),
            Ok(2)
        );
        assert!(series_in(r#"{"status":"error","error":"bad"}"#).is_err());
        assert!(series_in("<html>").is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
