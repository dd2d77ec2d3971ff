//! How long compactions and head truncations took, kept as Prometheus 2.42 exposes them:
//! `prometheus_tsdb_compaction_duration_seconds` is a histogram with buckets 1, 2, 4, …,
//! 8192 s (`ExponentialBuckets(1, 2, 14)`), `prometheus_tsdb_head_gc_duration_seconds` a
//! summary without quantiles (a sum and a count). Plain counters that add up across shards;
//! this module only counts, it never writes the exposition.

use std::time::Duration;

/// Upper bounds (seconds) of the compaction duration histogram's buckets, `+Inf` aside.
pub const COMPACTION_BUCKETS: [f64; 14] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
];

/// A histogram over `COMPACTION_BUCKETS`, with non-cumulative counts.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DurationHistogram {
    pub buckets: [u64; COMPACTION_BUCKETS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

impl DurationHistogram {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = COMPACTION_BUCKETS.iter().position(|&le| s <= le) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum_seconds += s;
    }

    /// Adds another shard's observations.
    pub fn merge(&mut self, other: &DurationHistogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum_seconds += other.sum_seconds;
    }

    /// `(le, cumulative count)` for each bucket, as the exposition lists them (`+Inf` is
    /// `count`).
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let mut acc = 0;
        COMPACTION_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(move |(&le, &n)| {
                acc += n;
                (le, acc)
            })
    }
}

/// A summary without quantiles: sum and count.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DurationSum {
    pub count: u64,
    pub sum_seconds: f64,
}

impl DurationSum {
    pub fn observe(&mut self, d: Duration) {
        self.count += 1;
        self.sum_seconds += d.as_secs_f64();
    }

    pub fn merge(&mut self, other: &DurationSum) {
        self.count += other.count;
        self.sum_seconds += other.sum_seconds;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_upper_bounds_and_cumulative() {
        let mut h = DurationHistogram::default();
        for ms in [500, 1000, 1001, 3000, 10_000_000] {
            h.observe(Duration::from_millis(ms));
        }
        let c: Vec<(f64, u64)> = h.cumulative().take(3).collect();
        assert_eq!(c, [(1.0, 2), (2.0, 3), (4.0, 4)]);
        // Beyond the last bucket: only in +Inf (the count).
        assert_eq!(h.cumulative().last(), Some((8192.0, 4)));
        assert_eq!(h.count, 5);
        let mut total = h.clone();
        total.merge(&h);
        assert_eq!((total.count, total.buckets[0]), (10, 4));
        assert!((total.sum_seconds - 2.0 * h.sum_seconds).abs() < 1e-9);
    }
}
