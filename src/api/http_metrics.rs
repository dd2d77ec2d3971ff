//! `prometheus_http_requests_total` and `prometheus_http_request_duration_seconds`: what
//! each HTTP handler answered and how long it took, labelled with the handler's route
//! pattern as Prometheus 2.42 labels them (`/api/v1/label/:name/values`, `/federate`), so
//! that dashboards and alerts written for Prometheus's own API latency work unchanged. It
//! only counts; `self_metrics` writes the exposition. A handler appears once it has been
//! requested, as Prometheus's vectors do. State lives behind a `Mutex`: the router and the
//! listeners of the other cores (`api::front`) count into the same table.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::metrics::{Kind, MetricsWriter};

/// Upper bounds (seconds) of the duration buckets, `+Inf` aside: Prometheus's web handler
/// instrumentation uses these.
pub const BUCKETS: [f64; 9] = [0.1, 0.2, 0.4, 1.0, 3.0, 8.0, 20.0, 60.0, 120.0];

const REQUESTS: &str = "prometheus_http_requests_total";
const DURATION: &str = "prometheus_http_request_duration_seconds";

#[derive(Debug, Default)]
pub struct HttpMetrics {
    handlers: Mutex<BTreeMap<&'static str, HandlerStats>>,
}

#[derive(Debug, Default)]
struct HandlerStats {
    by_code: BTreeMap<u16, u64>,
    /// Non-cumulative counts per bucket of `BUCKETS`.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

impl HttpMetrics {
    /// One request to `handler` answered with `code` after `took`.
    pub fn observe(&self, handler: &'static str, code: u16, took: Duration) {
        let mut handlers = self.table();
        let h = handlers.entry(handler).or_default();
        *h.by_code.entry(code).or_default() += 1;
        let s = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&le| s <= le) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum_seconds += s;
    }

    /// The table; a thread that panicked while counting left it usable (counts only grow).
    fn table(&self) -> MutexGuard<'_, BTreeMap<&'static str, HandlerStats>> {
        self.handlers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self, w: &mut MetricsWriter) {
        let handlers = self.table();
        w.family(REQUESTS, "Counter of HTTP requests.", Kind::Counter);
        for (handler, h) in handlers.iter() {
            for (code, n) in &h.by_code {
                let code = code.to_string();
                w.sample(
                    REQUESTS,
                    &[("code", &code), ("handler", handler)],
                    *n as f64,
                );
            }
        }
        w.family(
            DURATION,
            "Histogram of latencies for HTTP requests.",
            Kind::Histogram,
        );
        let bucket = format!("{DURATION}_bucket");
        let (sum, count) = (format!("{DURATION}_sum"), format!("{DURATION}_count"));
        for (handler, h) in handlers.iter() {
            let mut acc = 0;
            for (le, n) in BUCKETS.iter().zip(&h.buckets) {
                acc += n;
                let le = le.to_string();
                w.sample(&bucket, &[("handler", handler), ("le", &le)], acc as f64);
            }
            w.sample(
                &bucket,
                &[("handler", handler), ("le", "+Inf")],
                h.count as f64,
            );
            w.sample(&sum, &[("handler", handler)], h.sum_seconds);
            w.sample(&count, &[("handler", handler)], h.count as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_code_and_buckets_cumulatively() {
        let m = HttpMetrics::default();
        m.observe("/api/v1/query", 200, Duration::from_millis(50));
        m.observe("/api/v1/query", 400, Duration::from_millis(300));
        m.observe("/api/v1/query", 200, Duration::from_secs(200));
        let mut w = MetricsWriter::new();
        m.write(&mut w);
        let text = w.finish();
        for line in [
            "prometheus_http_requests_total{code=\"200\",handler=\"/api/v1/query\"} 2",
            "prometheus_http_requests_total{code=\"400\",handler=\"/api/v1/query\"} 1",
            "prometheus_http_request_duration_seconds_bucket{handler=\"/api/v1/query\",le=\"0.1\"} 1",
            "prometheus_http_request_duration_seconds_bucket{handler=\"/api/v1/query\",le=\"0.4\"} 2",
            "prometheus_http_request_duration_seconds_bucket{handler=\"/api/v1/query\",le=\"120\"} 2",
            "prometheus_http_request_duration_seconds_bucket{handler=\"/api/v1/query\",le=\"+Inf\"} 3",
            "prometheus_http_request_duration_seconds_count{handler=\"/api/v1/query\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
