//! `prometheus_engine_query_duration_seconds`: how long queries waited for a slot under
//! `--query.max-concurrency` (`slice="queue_time"`) and how long they then took to evaluate
//! (`slice="inner_eval"`), as summaries with Prometheus's quantiles. Prometheus also splits
//! out `prepare_time` and `result_sort`; promcore's engine selects and sorts inside its
//! evaluation, so those slices are not exposed rather than reported as zero. It only
//! observes; `self_metrics` writes it.

use std::time::{Duration, Instant};

use crate::metrics::{Kind, MetricsWriter, Summary};

const NAME: &str = "prometheus_engine_query_duration_seconds";
/// The engine's objectives in Prometheus.
const QUANTILES: &[f64] = &[0.5, 0.9, 0.99];

#[derive(Debug)]
pub struct QueryTimings {
    queue_time: Summary,
    inner_eval: Summary,
}

impl QueryTimings {
    pub fn new(now: Instant) -> Self {
        QueryTimings {
            queue_time: Summary::new(QUANTILES, now),
            inner_eval: Summary::new(QUANTILES, now),
        }
    }

    pub fn queued(&self, took: Duration) {
        self.queue_time.observe(took.as_secs_f64(), Instant::now());
    }

    pub fn evaluated(&self, took: Duration) {
        self.inner_eval.observe(took.as_secs_f64(), Instant::now());
    }

    pub fn write(&self, w: &mut MetricsWriter, now: Instant) {
        w.family(NAME, "Query timings", Kind::Summary);
        self.inner_eval
            .write(w, NAME, &[("slice", "inner_eval")], now);
        self.queue_time
            .write(w, NAME, &[("slice", "queue_time")], now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_slice_is_a_summary_series() {
        let t = QueryTimings::new(Instant::now());
        t.queued(Duration::from_millis(2));
        t.evaluated(Duration::from_millis(30));
        t.evaluated(Duration::from_millis(10));
        let mut w = MetricsWriter::new();
        t.write(&mut w, Instant::now());
        let text = w.finish();
        for line in [
            "prometheus_engine_query_duration_seconds_count{slice=\"inner_eval\"} 2",
            "prometheus_engine_query_duration_seconds_count{slice=\"queue_time\"} 1",
            "prometheus_engine_query_duration_seconds{slice=\"inner_eval\",quantile=\"0.99\"} 0.03",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
