//! Whether two evaluations of the same eval gave the same answer exactly: the judge of
//! `--compare-pushdown`, which runs every eval with and without the planner's pushdown.
//!
//! Exactly means values bit for bit (so NaN equals NaN, and a last-bit difference of a float
//! sum counts), labels and order as returned, the same error text, and the same annotations.
//! Annotations are compared as sets: shards report theirs in shard order.

use crate::promql::engine::QueryResult;
use crate::promql::value::{Matrix, Value};
use crate::promql::QueryError;

fn same_matrix(a: &Matrix, b: &Matrix) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.labels == y.labels
                && x.points.len() == y.points.len()
                && x.points
                    .iter()
                    .zip(&y.points)
                    .all(|(p, q)| p.t == q.t && p.f.to_bits() == q.f.to_bits())
        })
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Scalar { t, f }, Value::Scalar { t: u, f: g }) => {
            t == u && f.to_bits() == g.to_bits()
        }
        (Value::String { t, s }, Value::String { t: u, s: r }) => t == u && s == r,
        (Value::Vector(x), Value::Vector(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(p, q)| {
                    p.labels == q.labels && p.t == q.t && p.f.to_bits() == q.f.to_bits()
                })
        }
        (Value::Matrix(x), Value::Matrix(y)) => same_matrix(x, y),
        _ => false,
    }
}

fn sorted(v: &[String]) -> Vec<&String> {
    let mut v: Vec<&String> = v.iter().collect();
    v.sort();
    v
}

/// Whether `a` and `b` are the same answer (see the module's note).
pub fn identical(a: &Result<QueryResult, QueryError>, b: &Result<QueryResult, QueryError>) -> bool {
    match (a, b) {
        (Err(x), Err(y)) => x == y,
        (Ok(x), Ok(y)) => {
            same_value(&x.value, &y.value)
                && sorted(&x.annotations.warnings) == sorted(&y.annotations.warnings)
                && sorted(&x.annotations.infos) == sorted(&y.annotations.infos)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::value::Annotations;

    fn scalar(f: f64) -> Result<QueryResult, QueryError> {
        Ok(QueryResult {
            value: Value::Scalar { t: 0, f },
            annotations: Annotations::default(),
        })
    }

    #[test]
    fn bits_decide_and_nan_equals_nan() {
        assert!(identical(&scalar(f64::NAN), &scalar(f64::NAN)));
        assert!(!identical(&scalar(0.1 + 0.2), &scalar(0.3)));
        assert!(!identical(&scalar(1.0), &Err(QueryError::exec("x"))));
    }
}
