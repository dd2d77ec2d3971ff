//! A PromQL result as the `data` of `/api/v1/query` and `/api/v1/query_range`:
//! `{"resultType":"vector","result":[...]}`, in the encodings of `json` (timestamps from the
//! milliseconds, values as Go formats them, `{}` for an empty label set).
//!
//! Only encoding lives here; which result a query has is the engine's business.

use crate::promql::value::{Sample, Series, Value};

use super::json;

/// Writes `{"resultType":...,"result":...}`.
pub fn write_result(out: &mut Vec<u8>, value: &Value) {
    out.extend_from_slice(br#"{"resultType":""#);
    out.extend_from_slice(value.type_name().as_bytes());
    out.extend_from_slice(br#"","result":"#);
    match value {
        Value::Scalar { t, f } => json::write_scalar(out, *t, *f),
        Value::String { t, s } => json::write_string_result(out, *t, s),
        Value::Vector(samples) => write_vector(out, samples),
        Value::Matrix(series) => write_matrix(out, series),
    }
    out.push(b'}');
}

/// `[{"metric":{...},"value":[t,"v"]},...]`.
fn write_vector(out: &mut Vec<u8>, samples: &[Sample]) {
    out.push(b'[');
    for (i, s) in samples.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"metric":"#);
        json::write_labels(out, &s.labels);
        out.extend_from_slice(br#","value":"#);
        json::write_point(out, s.t, s.f);
        out.push(b'}');
    }
    out.push(b']');
}

/// `[{"metric":{...},"values":[[t,"v"],...]},...]`.
fn write_matrix(out: &mut Vec<u8>, series: &[Series]) {
    out.push(b'[');
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"metric":"#);
        json::write_labels(out, &s.labels);
        out.extend_from_slice(br#","values":["#);
        for (k, p) in s.points.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            json::write_point(out, p.t, p.f);
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
}

/// Cuts a vector or matrix to its first `limit` series (0: no limit); true when it cut.
/// Scalars and strings have no series to cut.
pub fn truncate(value: &mut Value, limit: usize) -> bool {
    if limit == 0 {
        return false;
    }
    match value {
        Value::Vector(v) if v.len() > limit => v.truncate(limit),
        Value::Matrix(m) if m.len() > limit => m.truncate(limit),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::value::FPoint;
    use shards::labels::Labels;

    fn text(value: &Value) -> String {
        let mut out = Vec::new();
        write_result(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string()))).unwrap()
    }

    #[test]
    fn each_result_type_is_encoded_as_prometheus_does() {
        assert_eq!(
            text(&Value::Scalar { t: 4000, f: 2.0 }),
            r#"{"resultType":"scalar","result":[4,"2"]}"#
        );
        assert_eq!(
            text(&Value::String {
                t: 1500,
                s: "a\"b".into()
            }),
            r#"{"resultType":"string","result":[1.5,"a\"b"]}"#
        );
        let v = Value::Vector(vec![Sample {
            labels: labels(&[("__name__", "up"), ("job", "x")]),
            t: 1_435_781_451_780,
            f: f64::INFINITY,
            drop_name: false,
        }]);
        assert_eq!(
            text(&v),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"x"},"value":[1435781451.780,"+Inf"]}]}"#
        );
        let m = Value::Matrix(vec![Series {
            labels: Labels::empty(),
            points: vec![FPoint { t: 0, f: 1e-7 }, FPoint { t: 15, f: 0.5 }],
            drop_name: false,
        }]);
        assert_eq!(
            text(&m),
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[0,"1e-07"],[0.015,"0.5"]]}]}"#
        );
        assert_eq!(
            text(&Value::Vector(vec![])),
            r#"{"resultType":"vector","result":[]}"#
        );
    }

    #[test]
    fn truncation_cuts_series_only() {
        let mut s = Value::Scalar { t: 0, f: 1.0 };
        assert!(!truncate(&mut s, 1));
        let series = |n: &str| Series {
            labels: labels(&[("a", n)]),
            points: vec![],
            drop_name: false,
        };
        let mut m = Value::Matrix(vec![series("1"), series("2")]);
        assert!(!truncate(&mut m, 0));
        assert!(!truncate(&mut m, 2));
        assert!(truncate(&mut m, 1));
        assert!(matches!(&m, Value::Matrix(m) if m.len() == 1));
    }
}
