//! The shape of a simulated target's exposition: which metric families it has, which label
//! sets (groups) each family holds, and which value slots each group owns.
//!
//! A shape is decided once from the command line and shared by every target; it never holds
//! values or bytes (that is `Rendering` and `Target`). The mix follows real exporters: most
//! series come from classic histograms, then counters and gauges, then summaries, plus one
//! info metric. Families are never interleaved, as OpenMetrics requires.

use std::ops::Range;

use thiserror::Error;

use crate::slot::{SlotFormat, COUNT, GAUGE, QUANTILE, SECONDS_SUM};

/// Upper bounds of a histogram's buckets, Prometheus's `DefBuckets`; `+Inf` follows them.
pub const BUCKETS: [&str; 11] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
];
/// The same bounds as numbers, for the simulated latency distributions.
pub const BUCKET_BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
pub const QUANTILES: [&str; 3] = ["0.5", "0.9", "0.99"];

/// Label dimensions in the order they are added by `--labels`; each offers 8 realistic
/// values, and more values are made by numbering them.
pub const DIMENSIONS: [(&str, [&str; 8]); 8] = [
    (
        "handler",
        [
            "/api/v1/users",
            "/api/v1/orders",
            "/api/v1/items",
            "/api/v1/search",
            "/api/v1/login",
            "/api/v1/cart",
            "/healthz",
            "/metrics",
        ],
    ),
    (
        "method",
        [
            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE",
        ],
    ),
    (
        "code",
        ["200", "201", "204", "301", "400", "404", "500", "503"],
    ),
    (
        "zone",
        [
            "eu-west-1a",
            "eu-west-1b",
            "eu-west-1c",
            "us-east-1a",
            "us-east-1b",
            "us-east-1c",
            "ap-south-1a",
            "ap-south-1b",
        ],
    ),
    (
        "tier",
        [
            "frontend", "backend", "cache", "db", "queue", "batch", "edge", "admin",
        ],
    ),
    ("shard", ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"]),
    (
        "version",
        [
            "v1.0.0", "v1.0.1", "v1.1.0", "v1.2.0", "v2.0.0", "v2.0.1", "v2.1.0", "v3.0.0",
        ],
    ),
    (
        "mode",
        [
            "sync", "async", "stream", "bulk", "retry", "dryrun", "replay", "shadow",
        ],
    ),
];

/// Series per group are fixed by kind; which kinds come how often follows this cycle
/// (14 + 3 + 3 + 5 series a turn: histograms dominate, as on real exporters).
const CYCLE: [Kind; 8] = [
    Kind::Histogram,
    Kind::Counter,
    Kind::Gauge,
    Kind::Counter,
    Kind::Gauge,
    Kind::Summary,
    Kind::Counter,
    Kind::Gauge,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl Kind {
    /// Series (lines, value slots) of one label set of this kind.
    pub const fn series(self) -> usize {
        match self {
            Kind::Counter | Kind::Gauge => 1,
            Kind::Histogram => BUCKETS.len() + 3,
            Kind::Summary => QUANTILES.len() + 2,
        }
    }

    fn base_names(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Counter => &[
                ("http_requests", "Total HTTP requests handled."),
                ("rpc_calls", "Total RPC calls made to upstream services."),
                (
                    "network_transmit_bytes",
                    "Total bytes written to the network.",
                ),
                ("cache_operations", "Total cache lookups."),
                ("queue_messages", "Total messages consumed from the queue."),
                ("errors", "Total errors by cause."),
            ],
            Kind::Gauge => &[
                ("memory_usage_bytes", "Resident memory in use."),
                ("open_connections", "Connections currently open."),
                ("temperature_celsius", "Sensor temperature."),
                ("queue_depth", "Messages waiting in the queue."),
                ("pool_utilization_ratio", "Share of the worker pool in use."),
            ],
            Kind::Histogram => &[
                ("http_request_duration_seconds", "HTTP request latencies."),
                (
                    "rpc_duration_seconds",
                    "RPC latencies to upstream services.",
                ),
                ("db_query_duration_seconds", "Database query latencies."),
            ],
            Kind::Summary => &[
                ("gc_pause_seconds", "Garbage collection pause durations."),
                ("lock_wait_seconds", "Time spent waiting for locks."),
            ],
        }
    }

    /// The value format of the `i`-th slot of a group of this kind.
    fn slot_format(self, i: usize) -> SlotFormat {
        match self {
            Kind::Counter => COUNT,
            Kind::Gauge => GAUGE,
            Kind::Histogram if i == BUCKETS.len() + 1 => SECONDS_SUM,
            Kind::Histogram => COUNT,
            Kind::Summary if i < QUANTILES.len() => QUANTILE,
            Kind::Summary if i == QUANTILES.len() => SECONDS_SUM,
            Kind::Summary => COUNT,
        }
    }
}

/// What a target exposes, as chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeConfig {
    /// Series per target, the info metric's one included.
    pub series: usize,
    /// Label dimensions per series, besides `pod`, `le` and `quantile` (0..=8).
    pub labels: usize,
    /// Distinct values per dimension: a family holds at most `label_values ^ labels` label
    /// sets before the next family of its kind starts.
    pub label_values: usize,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ShapeError {
    #[error("series per target must be at least 1 (the info metric)")]
    NoSeries,
    #[error("at most {max} label dimensions are simulated, not {0}", max = DIMENSIONS.len())]
    TooManyLabels(usize),
    #[error("label values per dimension must be between 1 and 1000, not {0}")]
    LabelValues(usize),
}

/// One metric family: a name, its type and its label sets.
#[derive(Debug, Clone)]
pub struct Family {
    pub kind: Kind,
    /// The name in `# TYPE` of the 0.0.4 text format (`..._total` for counters).
    pub name: String,
    pub help: &'static str,
    pub groups: Range<usize>,
}

/// One label set of a family, and the consecutive value slots of its lines.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    pub family: usize,
    pub kind: Kind,
    pub first_slot: usize,
    /// Index of the label set inside its family, spelled in base `label_values`, one digit
    /// per dimension.
    pub combo: usize,
}

impl Group {
    pub fn slots(&self) -> Range<usize> {
        self.first_slot..self.first_slot + self.kind.series()
    }
}

#[derive(Debug, Clone)]
pub struct Shape {
    pub config: ShapeConfig,
    pub families: Vec<Family>,
    pub groups: Vec<Group>,
    /// One per value slot, in body order.
    pub slots: Vec<SlotFormat>,
}

impl Shape {
    pub fn new(config: ShapeConfig) -> Result<Shape, ShapeError> {
        if config.series == 0 {
            return Err(ShapeError::NoSeries);
        }
        if config.labels > DIMENSIONS.len() {
            return Err(ShapeError::TooManyLabels(config.labels));
        }
        if !(1..=1000).contains(&config.label_values) {
            return Err(ShapeError::LabelValues(config.label_values));
        }
        let per_family = (config.label_values as u64)
            .checked_pow(config.labels as u32)
            .unwrap_or(u64::MAX)
            .min(usize::MAX as u64) as usize;

        // Kinds of every group in creation order; the remainder after the last whole turn of
        // the cycle is filled with gauges so that the series count is exact.
        let mut left = config.series - 1;
        let mut kinds = Vec::new();
        let mut turn = CYCLE.iter().cycle();
        while left > 0 {
            let mut kind = *turn.next().unwrap_or(&Kind::Gauge);
            if kind.series() > left {
                kind = Kind::Gauge;
            }
            left -= kind.series();
            kinds.push(kind);
        }

        // Families fill up to `per_family` label sets, kind by kind, in order of creation.
        let mut members: Vec<(Kind, usize)> = Vec::new();
        let mut open: [Option<usize>; 4] = [None; 4];
        for kind in kinds {
            let k = kind as usize;
            match open[k] {
                Some(f) if members[f].1 < per_family => members[f].1 += 1,
                _ => {
                    open[k] = Some(members.len());
                    members.push((kind, 1));
                }
            }
        }

        let mut families = Vec::with_capacity(members.len());
        let mut groups = Vec::new();
        let mut slots = Vec::with_capacity(config.series - 1);
        let mut nth_of_kind = [0usize; 4];
        for (kind, count) in members {
            let nth = nth_of_kind[kind as usize];
            nth_of_kind[kind as usize] += 1;
            let names = kind.base_names();
            let (base, help) = names[nth % names.len()];
            let round = nth / names.len();
            let mut name = if round == 0 {
                format!("loadgen_{base}")
            } else {
                format!("loadgen_svc{}_{base}", round + 1)
            };
            if kind == Kind::Counter {
                name.push_str("_total");
            }
            let family = families.len();
            let start = groups.len();
            for combo in 0..count {
                groups.push(Group {
                    family,
                    kind,
                    first_slot: slots.len(),
                    combo,
                });
                slots.extend((0..kind.series()).map(|i| kind.slot_format(i)));
            }
            families.push(Family {
                kind,
                name,
                help,
                groups: start..groups.len(),
            });
        }
        Ok(Shape {
            config,
            families,
            groups,
            slots,
        })
    }

    /// Value of dimension `dim` for a group's label set. Allocates: used only when a
    /// template is rendered, once per process.
    pub fn label_value(&self, combo: usize, dim: usize) -> String {
        let v = self.config.label_values;
        let j = (0..dim).fold(combo, |c, _| c / v) % v;
        let words = &DIMENSIONS[dim].1;
        let word = words[j % words.len()];
        if j < words.len() {
            word.to_string()
        } else {
            format!("{word}-{}", j / words.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn shape(series: usize, labels: usize, label_values: usize) -> Shape {
        Shape::new(ShapeConfig {
            series,
            labels,
            label_values,
        })
        .unwrap()
    }

    #[test]
    fn series_count_is_exact() {
        for series in [1, 2, 3, 14, 15, 16, 26, 27, 100, 1000, 1234] {
            let s = shape(series, 2, 4);
            assert_eq!(s.slots.len() + 1, series, "series={series}");
            let by_groups: usize = s.groups.iter().map(|g| g.kind.series()).sum();
            assert_eq!(by_groups + 1, series);
        }
    }

    #[test]
    fn families_hold_at_most_the_label_cross_product() {
        let s = shape(5000, 2, 3);
        for f in &s.families {
            assert!(f.groups.len() <= 9, "{} has {}", f.name, f.groups.len());
        }
        let names: HashSet<_> = s.families.iter().map(|f| f.name.clone()).collect();
        assert_eq!(names.len(), s.families.len(), "family names are unique");
    }

    #[test]
    fn mix_is_histogram_heavy() {
        let s = shape(10_000, 2, 10);
        let hist: usize = s
            .groups
            .iter()
            .filter(|g| g.kind == Kind::Histogram)
            .map(|g| g.kind.series())
            .sum();
        assert!(hist * 2 > s.slots.len(), "{hist} of {}", s.slots.len());
        for kind in [Kind::Counter, Kind::Gauge, Kind::Summary] {
            assert!(s.groups.iter().any(|g| g.kind == kind));
        }
    }

    #[test]
    fn label_sets_are_distinct_within_a_family() {
        let s = shape(3000, 3, 12);
        for f in &s.families {
            let mut seen = HashSet::new();
            for g in &s.groups[f.groups.clone()] {
                let set: Vec<String> = (0..3).map(|d| s.label_value(g.combo, d)).collect();
                assert!(seen.insert(set), "{}", f.name);
            }
        }
        assert_eq!(s.label_value(108, 1), "POST-1");
    }

    #[test]
    fn refuses_bad_configs() {
        let c = |series, labels, label_values| {
            Shape::new(ShapeConfig {
                series,
                labels,
                label_values,
            })
            .unwrap_err()
        };
        assert_eq!(c(0, 1, 1), ShapeError::NoSeries);
        assert_eq!(c(10, 9, 1), ShapeError::TooManyLabels(9));
        assert_eq!(c(10, 1, 0), ShapeError::LabelValues(0));
    }
}
