//! What the parser yields: one entry per meaningful line, borrowing the body. Nothing here
//! owns data except HELP text that needed its escapes resolved.

use std::borrow::Cow;

/// One line of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// A sample. `series` is the raw `name{labels}` exactly as in the body: the scrape-cache
    /// key. Its labels are decoded only on a cache miss, with `Parser::labels`.
    Sample {
        series: &'a [u8],
        /// A NaN is always the canonical `NORMAL_NAN_BITS`, never a staleness marker.
        value: f64,
        /// Milliseconds; OpenMetrics seconds are already converted.
        timestamp_ms: Option<i64>,
    },
    /// `# HELP`, escapes resolved. Empty text means no help.
    Help { metric: &'a str, text: Cow<'a, str> },
    /// `# TYPE`.
    Type { metric: &'a str, kind: MetricType },
    /// `# UNIT` (OpenMetrics). An empty unit means none.
    Unit { metric: &'a str, unit: &'a str },
    /// Any other `#` line (text format only).
    Comment,
}

/// A metric family's type. Text 0.0.4's `untyped` is `Unknown`, as in Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    /// The type names of text 0.0.4.
    pub(crate) fn from_text(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"counter" => MetricType::Counter,
            b"gauge" => MetricType::Gauge,
            b"histogram" => MetricType::Histogram,
            b"summary" => MetricType::Summary,
            b"untyped" => MetricType::Unknown,
            _ => return None,
        })
    }

    /// The type names of OpenMetrics 1.0.
    pub(crate) fn from_openmetrics(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"counter" => MetricType::Counter,
            b"gauge" => MetricType::Gauge,
            b"histogram" => MetricType::Histogram,
            b"gaugehistogram" => MetricType::GaugeHistogram,
            b"summary" => MetricType::Summary,
            b"info" => MetricType::Info,
            b"stateset" => MetricType::StateSet,
            b"unknown" => MetricType::Unknown,
            _ => return None,
        })
    }

    /// The name Prometheus's metadata API reports.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}
