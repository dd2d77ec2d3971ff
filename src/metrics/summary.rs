//! Summaries: quantiles over a sliding window of recent observations plus a cumulative `_sum`
//! and `_count`, and the one Prometheus has on its `/metrics` that promcore keeps too,
//! `prometheus_target_interval_length_seconds` (one series per scrape interval).
//!
//! The window follows client_golang's defaults: observations of the last 10 minutes, aged out
//! in 5 buckets of 2 minutes (so a quantile covers between 8 and 10 minutes). Rather than a
//! CKMS stream per bucket, each bucket keeps a uniform random reservoir of at most
//! [`RESERVOIR_PER_BUCKET`] observations (Vitter's algorithm R) and counts all it saw: memory
//! is bounded (500 values a series) however fast targets are scraped, every observation of the
//! window has the same chance to be kept (the latest N values would only describe the last
//! few targets scraped), and each kept value weighs for the observations its bucket did not
//! keep. Quantiles are computed when written (exact over the kept values: nearest rank, as
//! client_golang's stream answers for small windows); a window with no observation gives
//! `NaN`, as Prometheus does.
//!
//! State lives in `Cell`/`RefCell`: a summary belongs to one executor and is never shared
//! across threads. Time is passed in, so the logic is tested without waiting.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use super::exposition::{push_float, Kind, MetricsWriter};

/// How long an observation counts towards the quantiles (client_golang's `DefMaxAge`).
pub const MAX_AGE: Duration = Duration::from_secs(600);
/// Buckets the window ages out by (client_golang's `DefAgeBuckets`).
pub const AGE_BUCKETS: usize = 5;
/// Observations each age bucket keeps: 500 values a series in all.
pub const RESERVOIR_PER_BUCKET: usize = 100;

/// The quantiles of `prometheus_target_interval_length_seconds` (Prometheus's objectives).
pub const TARGET_INTERVAL_QUANTILES: &[f64] = &[0.01, 0.05, 0.5, 0.9, 0.99];
pub const TARGET_INTERVAL_LENGTH: &str = "prometheus_target_interval_length_seconds";
const TARGET_INTERVAL_LENGTH_HELP: &str = "Actual intervals between scrapes.";

/// One summary series.
#[derive(Debug)]
pub struct Summary {
    quantiles: &'static [f64],
    window: RefCell<Window>,
    sum: Cell<f64>,
    count: Cell<u64>,
}

impl Summary {
    /// A summary reporting `quantiles` (each in `0..=1`); `now` starts its first age bucket.
    pub fn new(quantiles: &'static [f64], now: Instant) -> Self {
        debug_assert!(quantiles.iter().all(|q| (0.0..=1.0).contains(q)));
        Summary {
            quantiles,
            window: RefCell::new(Window::new(now)),
            sum: Cell::new(0.0),
            count: Cell::new(0),
        }
    }

    pub fn observe(&self, value: f64, now: Instant) {
        self.window.borrow_mut().observe(value, now);
        self.sum.set(self.sum.get() + value);
        self.count.set(self.count.get() + 1);
    }

    pub fn sum(&self) -> f64 {
        self.sum.get()
    }

    pub fn count(&self) -> u64 {
        self.count.get()
    }

    /// The configured quantiles over the window at `now`, in configuration order; `NaN` for
    /// each when the window holds no observation.
    pub fn quantile_values(&self, now: Instant) -> Vec<f64> {
        self.window.borrow().quantiles(self.quantiles, now)
    }

    /// Writes this series' samples under the family `name` (already declared as a summary):
    /// one line per quantile with `labels` plus `quantile`, then `_sum` and `_count`.
    pub fn write(&self, w: &mut MetricsWriter, name: &str, labels: &[(&str, &str)], now: Instant) {
        let values = self.quantile_values(now);
        let texts: Vec<String> = self
            .quantiles
            .iter()
            .map(|&q| {
                let mut s = String::new();
                push_float(&mut s, q);
                s
            })
            .collect();
        let mut with_quantile: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 1);
        for (text, value) in texts.iter().zip(values) {
            with_quantile.clear();
            with_quantile.extend_from_slice(labels);
            with_quantile.push(("quantile", text));
            w.sample(name, &with_quantile, value);
        }
        let mut suffixed = String::with_capacity(name.len() + 6);
        suffixed.push_str(name);
        suffixed.push_str("_sum");
        w.sample(&suffixed, labels, self.sum());
        suffixed.truncate(name.len());
        suffixed.push_str("_count");
        w.sample(&suffixed, labels, self.count() as f64);
    }
}

/// `prometheus_target_interval_length_seconds`: the time between two scrapes of a target,
/// one series per configured interval (`interval="15s"`, the scrape interval as Prometheus
/// prints a duration). Few intervals exist in a configuration, so they are kept in a vector
/// sorted by label value, which is also the order Prometheus writes them in.
#[derive(Debug, Default)]
pub struct TargetIntervalLength {
    by_interval: RefCell<Vec<(Box<str>, Summary)>>,
}

impl TargetIntervalLength {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that a target of the `interval` scrape interval was scraped `seconds` after
    /// its previous scrape.
    pub fn observe(&self, interval: &str, seconds: f64, now: Instant) {
        let mut by_interval = self.by_interval.borrow_mut();
        let at = match by_interval.binary_search_by(|(label, _)| (**label).cmp(interval)) {
            Ok(at) => at,
            Err(at) => {
                let summary = Summary::new(TARGET_INTERVAL_QUANTILES, now);
                by_interval.insert(at, (interval.into(), summary));
                at
            }
        };
        by_interval[at].1.observe(seconds, now);
    }

    /// The family with every interval's series; nothing before the first observation, as
    /// Prometheus omits a summary vector without children.
    pub fn write(&self, w: &mut MetricsWriter, now: Instant) {
        let by_interval = self.by_interval.borrow();
        if by_interval.is_empty() {
            return;
        }
        w.family(
            TARGET_INTERVAL_LENGTH,
            TARGET_INTERVAL_LENGTH_HELP,
            Kind::Summary,
        );
        for (interval, summary) in by_interval.iter() {
            summary.write(w, TARGET_INTERVAL_LENGTH, &[("interval", interval)], now);
        }
    }
}

/// Observations of the last [`MAX_AGE`], in [`AGE_BUCKETS`] reservoirs.
#[derive(Debug)]
struct Window {
    origin: Instant,
    buckets: [AgeBucket; AGE_BUCKETS],
    /// xorshift64 state choosing which observation a full reservoir replaces; a fixed seed
    /// keeps the output reproducible, and the choice needs no more than a uniform spread.
    random: u64,
}

#[derive(Debug, Default)]
struct AgeBucket {
    /// Which stretch of [`bucket_width`] since the window's origin this bucket holds.
    epoch: u64,
    /// Observations that fell into this bucket, kept or not.
    seen: u64,
    kept: Vec<f64>,
}

fn bucket_width() -> Duration {
    MAX_AGE / AGE_BUCKETS as u32
}

impl Window {
    fn new(origin: Instant) -> Self {
        Window {
            origin,
            buckets: Default::default(),
            random: 0x2545_f491_4f6c_dd1d,
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        let age = now.saturating_duration_since(self.origin);
        (age.as_nanos() / bucket_width().as_nanos()) as u64
    }

    fn observe(&mut self, value: f64, now: Instant) {
        let epoch = self.epoch(now);
        let slot = (epoch % AGE_BUCKETS as u64) as usize;
        let random = self.next_random();
        let bucket = &mut self.buckets[slot];
        if bucket.epoch != epoch {
            bucket.epoch = epoch;
            bucket.seen = 0;
            bucket.kept.clear();
        }
        bucket.seen += 1;
        if bucket.kept.len() < RESERVOIR_PER_BUCKET {
            bucket.kept.push(value);
        } else {
            // Algorithm R: the n-th observation replaces a kept one with probability k/n.
            let pick = random % bucket.seen;
            if let Some(slot) = bucket.kept.get_mut(pick as usize) {
                *slot = value;
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        x
    }

    /// Nearest-rank quantiles over the live buckets, each kept value weighing
    /// `seen / kept` observations of its bucket.
    fn quantiles(&self, quantiles: &[f64], now: Instant) -> Vec<f64> {
        let epoch = self.epoch(now);
        let mut weighted: Vec<(f64, f64)> = Vec::new();
        let mut total = 0.0;
        for bucket in &self.buckets {
            let live = bucket.epoch <= epoch && epoch - bucket.epoch < AGE_BUCKETS as u64;
            if !live || bucket.kept.is_empty() {
                continue;
            }
            let weight = bucket.seen as f64 / bucket.kept.len() as f64;
            weighted.extend(bucket.kept.iter().map(|&v| (v, weight)));
            total += bucket.seen as f64;
        }
        if weighted.is_empty() {
            return vec![f64::NAN; quantiles.len()];
        }
        weighted.sort_by(|a, b| a.0.total_cmp(&b.0));
        quantiles
            .iter()
            .map(|&q| {
                let rank = q * total;
                let mut cumulative = 0.0;
                for &(value, weight) in &weighted {
                    cumulative += weight;
                    // A relative slack absorbs the rounding of fractional weights, so a rank
                    // that falls exactly on a boundary picks the lower value.
                    if cumulative >= rank * (1.0 - 1e-12) {
                        return value;
                    }
                }
                weighted[weighted.len() - 1].0
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEDIAN_AND_EXTREMES: &[f64] = &[0.0, 0.5, 1.0];

    #[test]
    fn empty_window_is_nan() {
        let t0 = Instant::now();
        let s = Summary::new(MEDIAN_AND_EXTREMES, t0);
        assert!(s.quantile_values(t0).iter().all(|v| v.is_nan()));
        assert_eq!((s.sum(), s.count()), (0.0, 0));
    }

    #[test]
    fn exact_quantiles_below_the_reservoir_size() {
        let t0 = Instant::now();
        let s = Summary::new(TARGET_INTERVAL_QUANTILES, t0);
        // 1..=100 in a scrambled order: nearest rank gives q*100 exactly.
        for i in 0..100u64 {
            s.observe(((i * 37) % 100 + 1) as f64, t0);
        }
        assert_eq!(s.quantile_values(t0), vec![1.0, 5.0, 50.0, 90.0, 99.0]);
        assert_eq!(s.sum(), 5050.0);
        assert_eq!(s.count(), 100);
    }

    #[test]
    fn reservoir_bounds_memory_and_stays_representative() {
        let t0 = Instant::now();
        let s = Summary::new(MEDIAN_AND_EXTREMES, t0);
        // 100_000 observations uniform over 0..1000 within one bucket.
        for i in 0..100_000u64 {
            s.observe(
                ((i * 7919) % 1000) as f64,
                t0 + Duration::from_millis(i % 1000),
            );
        }
        let window = s.window.borrow();
        let kept: usize = window.buckets.iter().map(|b| b.kept.len()).sum();
        assert_eq!(kept, RESERVOIR_PER_BUCKET);
        drop(window);
        let q = s.quantile_values(t0 + Duration::from_secs(1));
        // A uniform sample of 100 values: its median is within 0.2 of the true median with
        // overwhelming probability (and the seed is fixed, so this is deterministic anyway).
        assert!((300.0..700.0).contains(&q[1]), "median {}", q[1]);
        assert!(q[0] <= q[1] && q[1] <= q[2]);
        assert_eq!(s.count(), 100_000);
    }

    #[test]
    fn buckets_weigh_by_what_they_saw() {
        let t0 = Instant::now();
        let s = Summary::new(MEDIAN_AND_EXTREMES, t0);
        // First bucket: 1000 observations of 1.0 (100 kept); second: 10 of 5.0 (all kept).
        for _ in 0..1000 {
            s.observe(1.0, t0);
        }
        let later = t0 + bucket_width();
        for _ in 0..10 {
            s.observe(5.0, later);
        }
        assert_eq!(s.quantile_values(later), vec![1.0, 1.0, 5.0]);
    }

    #[test]
    fn observations_age_out_after_max_age() {
        let t0 = Instant::now();
        let s = Summary::new(MEDIAN_AND_EXTREMES, t0);
        s.observe(7.0, t0);
        let later = t0 + bucket_width() * 3;
        s.observe(3.0, later);
        assert_eq!(s.quantile_values(later), vec![3.0, 3.0, 7.0]);
        // The first bucket drops out once MAX_AGE has passed since its stretch began.
        assert_eq!(s.quantile_values(t0 + MAX_AGE), vec![3.0, 3.0, 3.0]);
        assert!(s
            .quantile_values(later + MAX_AGE)
            .iter()
            .all(|v| v.is_nan()));
        // Sum and count stay cumulative.
        assert_eq!((s.sum(), s.count()), (10.0, 2));
        // A reused slot starts afresh.
        s.observe(9.0, t0 + MAX_AGE * 2);
        assert_eq!(s.quantile_values(t0 + MAX_AGE * 2), vec![9.0, 9.0, 9.0]);
    }

    #[test]
    fn time_before_the_origin_counts_as_the_origin() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let s = Summary::new(MEDIAN_AND_EXTREMES, t0);
        s.observe(2.0, t0 - Duration::from_secs(30));
        assert_eq!(s.quantile_values(t0), vec![2.0, 2.0, 2.0]);
    }

    #[test]
    fn target_interval_length_exposition() {
        let t0 = Instant::now();
        let m = TargetIntervalLength::new();
        let mut w = MetricsWriter::new();
        m.write(&mut w, t0);
        assert_eq!(w.as_str(), "", "no family before the first observation");
        m.observe("1m", 60.5, t0);
        m.observe("15s", 15.0, t0);
        m.observe("15s", 15.25, t0);
        m.write(&mut w, t0);
        assert_eq!(
            w.finish(),
            "# HELP prometheus_target_interval_length_seconds Actual intervals between scrapes.\n\
             # TYPE prometheus_target_interval_length_seconds summary\n\
             prometheus_target_interval_length_seconds{interval=\"15s\",quantile=\"0.01\"} 15\n\
             prometheus_target_interval_length_seconds{interval=\"15s\",quantile=\"0.05\"} 15\n\
             prometheus_target_interval_length_seconds{interval=\"15s\",quantile=\"0.5\"} 15\n\
             prometheus_target_interval_length_seconds{interval=\"15s\",quantile=\"0.9\"} 15.25\n\
             prometheus_target_interval_length_seconds{interval=\"15s\",quantile=\"0.99\"} 15.25\n\
             prometheus_target_interval_length_seconds_sum{interval=\"15s\"} 30.25\n\
             prometheus_target_interval_length_seconds_count{interval=\"15s\"} 2\n\
             prometheus_target_interval_length_seconds{interval=\"1m\",quantile=\"0.01\"} 60.5\n\
             prometheus_target_interval_length_seconds{interval=\"1m\",quantile=\"0.05\"} 60.5\n\
             prometheus_target_interval_length_seconds{interval=\"1m\",quantile=\"0.5\"} 60.5\n\
             prometheus_target_interval_length_seconds{interval=\"1m\",quantile=\"0.9\"} 60.5\n\
             prometheus_target_interval_length_seconds{interval=\"1m\",quantile=\"0.99\"} 60.5\n\
             prometheus_target_interval_length_seconds_sum{interval=\"1m\"} 60.5\n\
             prometheus_target_interval_length_seconds_count{interval=\"1m\"} 1\n"
        );
    }

    #[test]
    fn aged_out_series_writes_nan_quantiles() {
        let t0 = Instant::now();
        let m = TargetIntervalLength::new();
        m.observe("15s", 15.0, t0);
        let mut w = MetricsWriter::new();
        m.write(&mut w, t0 + MAX_AGE * 2);
        let body = w.finish();
        assert!(
            body.contains("{interval=\"15s\",quantile=\"0.5\"} NaN\n"),
            "{body}"
        );
        assert!(body.contains("_count{interval=\"15s\"} 1\n"), "{body}");
    }
}
