//! `/api/v1/status/tsdb`: the head statistics and the top cardinality lists, merged over the
//! shards. Each shard reports every label pair with its series count; since a series lives on
//! exactly one shard, summing the pairs' counts gives the whole head, from which the lists are
//! derived as Prometheus's `MemPostings.Stats` derives them. Pure: no I/O here.

use std::collections::HashMap;

use crate::router::protocol::TsdbStatus;

use super::json::write_string;

/// Prometheus's default number of entries per list.
pub const DEFAULT_LIMIT: usize = 10;
/// The largest `limit` Prometheus 3 accepts.
pub const MAX_LIMIT: usize = 10_000;

/// `limit`: absent is 10; it must be 1..=10000 (Prometheus 3's messages).
pub fn parse_limit(value: Option<&str>) -> Result<usize, String> {
    match value {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n <= 0 => Err("limit must be a positive number".to_string()),
            Ok(n) if n as u64 > MAX_LIMIT as u64 => {
                Err(format!("limit must not exceed {MAX_LIMIT}"))
            }
            Ok(n) => Ok(n as usize),
            Err(_) => Err(format!(
                "strconv.Atoi: parsing {}: invalid syntax",
                super::params::GoQuoted(v)
            )),
        },
    }
}

/// The merged answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TsdbSummary {
    pub num_series: u64,
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub series_count_by_metric_name: Vec<(String, u64)>,
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

/// Merges the shards' reports and keeps the `limit` largest entries of each list.
pub fn summarize(shards: &[TsdbStatus], limit: usize) -> TsdbSummary {
    let mut pairs: HashMap<(&str, &str), u64> = HashMap::new();
    let mut s = TsdbSummary {
        min_time: i64::MAX,
        max_time: i64::MIN,
        ..Default::default()
    };
    for shard in shards {
        s.num_series += shard.num_series;
        s.chunk_count += shard.chunk_count;
        if let Some((min, max)) = shard.time_range {
            s.min_time = s.min_time.min(min);
            s.max_time = s.max_time.max(max);
        }
        for (name, value, n) in &shard.pairs {
            *pairs.entry((name.as_str(), value.as_str())).or_insert(0) += n;
        }
    }
    s.num_label_pairs = pairs.len() as u64;
    let mut metrics = Vec::new();
    let mut values_per_name: HashMap<&str, u64> = HashMap::new();
    let mut bytes_per_name: HashMap<&str, u64> = HashMap::new();
    let mut by_pair = Vec::with_capacity(pairs.len());
    for (&(name, value), &n) in &pairs {
        if name == "__name__" {
            metrics.push((value.to_string(), n));
        }
        *values_per_name.entry(name).or_insert(0) += 1;
        // The bytes of the distinct values (each is stored once), as Prometheus 2.42 counts.
        *bytes_per_name.entry(name).or_insert(0) += value.len() as u64;
        by_pair.push((format!("{name}={value}"), n));
    }
    let owned = |m: HashMap<&str, u64>| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    s.series_count_by_metric_name = top(metrics, limit);
    s.label_value_count_by_label_name = top(owned(values_per_name), limit);
    s.memory_in_bytes_by_label_name = top(owned(bytes_per_name), limit);
    s.series_count_by_label_value_pair = top(by_pair, limit);
    s
}

/// The `limit` largest by count, descending; ties by name so the answer is stable.
fn top(mut items: Vec<(String, u64)>, limit: usize) -> Vec<(String, u64)> {
    items.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    items.truncate(limit);
    items
}

pub fn write_summary(out: &mut Vec<u8>, s: &TsdbSummary) {
    out.extend_from_slice(
        format!(
            r#"{{"headStats":{{"numSeries":{},"numLabelPairs":{},"chunkCount":{},"minTime":{},"maxTime":{}}}"#,
            s.num_series, s.num_label_pairs, s.chunk_count, s.min_time, s.max_time
        )
        .as_bytes(),
    );
    for (key, list) in [
        ("seriesCountByMetricName", &s.series_count_by_metric_name),
        (
            "labelValueCountByLabelName",
            &s.label_value_count_by_label_name,
        ),
        ("memoryInBytesByLabelName", &s.memory_in_bytes_by_label_name),
        (
            "seriesCountByLabelValuePair",
            &s.series_count_by_label_value_pair,
        ),
    ] {
        out.extend_from_slice(format!(",\"{key}\":[").as_bytes());
        for (i, (name, value)) in list.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"name":"#);
            write_string(out, name);
            out.extend_from_slice(format!(r#","value":{value}}}"#).as_bytes());
        }
        out.push(b']');
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(series: &[&[(&str, &str)]], range: Option<(i64, i64)>) -> TsdbStatus {
        let mut pairs: HashMap<(String, String), u64> = HashMap::new();
        for s in series {
            for (n, v) in *s {
                *pairs.entry((n.to_string(), v.to_string())).or_insert(0) += 1;
            }
        }
        TsdbStatus {
            num_series: series.len() as u64,
            chunk_count: series.len() as u64,
            time_range: range,
            pairs: pairs.into_iter().map(|((n, v), c)| (n, v, c)).collect(),
        }
    }

    #[test]
    fn merges_shards_like_one_head() {
        let a = shard(
            &[
                &[("__name__", "up"), ("job", "a")],
                &[("__name__", "up"), ("job", "bb")],
            ],
            Some((10, 20)),
        );
        let b = shard(
            &[
                &[("__name__", "up"), ("job", "a")],
                &[("__name__", "x"), ("job", "a")],
            ],
            Some((5, 15)),
        );
        let s = summarize(&[a, b], 10);
        assert_eq!((s.num_series, s.chunk_count), (4, 4));
        assert_eq!((s.min_time, s.max_time), (5, 20));
        // __name__=up, __name__=x, job=a, job=bb
        assert_eq!(s.num_label_pairs, 4);
        assert_eq!(
            s.series_count_by_metric_name,
            vec![("up".to_string(), 3), ("x".to_string(), 1)]
        );
        assert_eq!(
            s.label_value_count_by_label_name,
            vec![("__name__".to_string(), 2), ("job".to_string(), 2)]
        );
        // __name__: "up" + "x"; job: "a" + "bb".
        assert_eq!(
            s.memory_in_bytes_by_label_name,
            vec![("__name__".to_string(), 3), ("job".to_string(), 3)]
        );
        assert_eq!(
            s.series_count_by_label_value_pair[0],
            ("__name__=up".to_string(), 3)
        );
        assert_eq!(summarize(&[], 1).series_count_by_label_value_pair, vec![]);
    }

    #[test]
    fn empty_head_and_json() {
        let s = summarize(&[TsdbStatus::default()], 10);
        let mut out = Vec::new();
        write_summary(&mut out, &s);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"headStats":{"numSeries":0,"numLabelPairs":0,"chunkCount":0,"minTime":9223372036854775807,"maxTime":-9223372036854775808},"seriesCountByMetricName":[],"labelValueCountByLabelName":[],"memoryInBytesByLabelName":[],"seriesCountByLabelValuePair":[]}"#
        );
    }

    #[test]
    fn limit_rules() {
        assert_eq!(parse_limit(None), Ok(10));
        assert_eq!(parse_limit(Some("3")), Ok(3));
        assert!(parse_limit(Some("0")).unwrap_err().contains("positive"));
        assert!(parse_limit(Some("10001")).unwrap_err().contains("exceed"));
        assert!(parse_limit(Some("x")).is_err());
    }
}
