//! The scrape engine's own counters, as Prometheus names them (`prometheus_target_*`), kept
//! on the router executor by the scrape loops and written out by `/metrics`.

use std::time::{Duration, Instant};

use shards::head::AppendOutcome;

use crate::metrics::{Counter, TargetIntervalLength};

#[derive(Debug, Default)]
pub struct ScrapeMetrics {
    pub scrapes: Counter,
    pub exceeded_sample_limit: Counter,
    pub exceeded_body_size_limit: Counter,
    pub samples_out_of_order: Counter,
    pub samples_out_of_bounds: Counter,
    pub samples_duplicate_timestamp: Counter,
    pub intervals: TargetIntervalLength,
}

impl ScrapeMetrics {
    /// A target of scrape interval `interval` was scraped `seconds` after its previous scrape.
    pub fn observe_interval(&self, interval: Duration, seconds: f64) {
        let label =
            crate::config::duration::Duration::from_millis(interval.as_millis() as u64).to_string();
        self.intervals.observe(&label, seconds, Instant::now());
    }

    pub fn record_outcome(&self, o: &AppendOutcome) {
        self.samples_out_of_order.add(u64::from(o.out_of_order));
        self.samples_out_of_bounds.add(u64::from(o.out_of_bounds));
        self.samples_duplicate_timestamp
            .add(u64::from(o.duplicate_timestamp));
    }
}
