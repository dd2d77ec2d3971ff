//! Samples ingested, read from a server's own `/metrics` exposition: the sum of every
//! series of one metric name whose labels include a given pair (or all of them).
//!
//! Which counter counts ingested samples differs by server (`Server::ingest_counter`); this
//! module only reads exposition text. Pure: no I/O.

/// Which series of a server's exposition count ingested samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub name: &'static str,
    /// Only series carrying this exact `label="value"` pair, when set.
    pub label: Option<(&'static str, &'static str)>,
}

/// The sum over matching series, `None` when no series matched (the server does not
/// expose that counter: a wrong configuration, not zero samples).
pub fn sum(exposition: &str, counter: &Counter) -> Option<f64> {
    let mut total = None;
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix(counter.name) else {
            continue;
        };
        let (labels, value) = match rest.as_bytes().first() {
            Some(b'{') => match rest.rfind('}') {
                Some(end) => (&rest[1..end], &rest[end + 1..]),
                None => continue,
            },
            Some(b' ') => ("", rest),
            _ => continue, // a longer name sharing the prefix
        };
        if let Some((k, v)) = counter.label {
            let pair = format!("{k}=\"{v}\"");
            if !labels.split(',').any(|l| l.trim() == pair) {
                continue;
            }
        }
        let Some(v) = value
            .split_ascii_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        *total.get_or_insert(0.0) += v;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP prometheus_tsdb_head_samples_appended_total Total number of appended samples.
# TYPE prometheus_tsdb_head_samples_appended_total counter
prometheus_tsdb_head_samples_appended_total{type="float"} 1.5e+06
prometheus_tsdb_head_samples_appended_total{type="histogram"} 10
prometheus_tsdb_head_samples_appended_total_extra 99
vm_rows_inserted_total{type="promscrape"} 12345
vm_rows_inserted_total{type="influx"} 7
vm_rows_added_to_storage_total 500 1700000000000
"#;

    #[test]
    fn sums_matching_series_only() {
        let prom = Counter {
            name: "prometheus_tsdb_head_samples_appended_total",
            label: None,
        };
        assert_eq!(sum(TEXT, &prom), Some(1_500_010.0));
        let vm = Counter {
            name: "vm_rows_inserted_total",
            label: Some(("type", "promscrape")),
        };
        assert_eq!(sum(TEXT, &vm), Some(12345.0));
        let plain = Counter {
            name: "vm_rows_added_to_storage_total",
            label: None,
        };
        assert_eq!(sum(TEXT, &plain), Some(500.0));
        let missing = Counter {
            name: "nope_total",
            label: None,
        };
        assert_eq!(sum(TEXT, &missing), None);
    }
}
