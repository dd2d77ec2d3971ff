//! The values PromQL expressions evaluate to: points, samples, series, and the four result
//! types (scalar, string, instant vector, range vector).
//!
//! `drop_name` carries Prometheus 3's delayed `__name__` removal: an operation that would drop
//! the metric name only marks the sample, and the name goes at the very end of evaluation
//! (`Engine` does it), so that `label_replace(rate(x[5m]), "__name__", ...)` still sees it.

use shards::labels::Labels;

/// One float sample of a series: a timestamp in milliseconds and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FPoint {
    pub t: i64,
    pub f: f64,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub f: f64,
    /// `__name__` is to be removed when evaluation ends.
    pub drop_name: bool,
}

/// One series of a range vector, or of an instant vector evaluated over the steps of a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<FPoint>,
    pub drop_name: bool,
}

pub type Vector = Vec<Sample>;
pub type Matrix = Vec<Series>;

/// A query's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { t: i64, f: f64 },
    String { t: i64, s: String },
    Vector(Vector),
    Matrix(Matrix),
}

impl Value {
    /// The type's name in the HTTP API's `resultType`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Non-fatal notes of a query, as Prometheus's annotations: each text is complete
/// (`PromQL warning: ...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Annotations {
    pub fn warn(&mut self, text: String) {
        if !self.warnings.contains(&text) {
            self.warnings.push(text);
        }
    }

    pub fn info(&mut self, text: String) {
        if !self.infos.contains(&text) {
            self.infos.push(text);
        }
    }

    pub fn merge(&mut self, other: Annotations) {
        for w in other.warnings {
            self.warn(w);
        }
        for i in other.infos {
            self.info(i);
        }
    }
}
