//! Scrape health over a measured window, from the servers' own record of their scrapes:
//! every target's `scrape_duration_seconds` and `up` samples in the window (one instant
//! query of a range selector, which all three servers answer with raw samples).
//!
//! Durations go into an HDR histogram for p50/p99. A missed scrape is one that should have
//! happened and left no sample (a gap longer than 1.5 intervals counts as the scrapes that
//! fit in it; a target with no sample at all misses the whole window) or one that failed
//! (`up` = 0). Pure: it reads query answers, never a socket.

use std::collections::HashMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScrapeHealth {
    pub scrapes: u64,
    pub expected_scrapes: u64,
    pub missed_scrapes: u64,
    pub failed_scrapes: u64,
    pub duration_p50_ms: f64,
    pub duration_p99_ms: f64,
    pub duration_max_ms: f64,
}

impl ScrapeHealth {
    /// Share of expected scrapes that were missed or failed.
    pub fn missed_share(&self) -> f64 {
        if self.expected_scrapes == 0 {
            return 0.0;
        }
        (self.missed_scrapes + self.failed_scrapes) as f64 / self.expected_scrapes as f64
    }
}

/// `(series labels, [(unix seconds, value)])` of a matrix answer.
pub type Matrix = Vec<(String, Vec<(f64, f64)>)>;

/// Reads a Prometheus API matrix answer (`data.resultType == "matrix"`).
pub fn parse_matrix(answer: &Value) -> Result<Matrix, String> {
    if answer["status"] != "success" {
        return Err(format!("query failed: {answer}"));
    }
    let result = answer["data"]["result"]
        .as_array()
        .ok_or_else(|| format!("no result array: {answer}"))?;
    let mut out = Vec::with_capacity(result.len());
    for series in result {
        let key = series["metric"]["instance"]
            .as_str()
            .map_or_else(|| series["metric"].to_string(), str::to_string);
        let values = series["values"]
            .as_array()
            .ok_or_else(|| format!("series without values: {series}"))?;
        let mut points = Vec::with_capacity(values.len());
        for v in values {
            let t = v[0].as_f64();
            let x = v[1].as_str().and_then(|s| s.parse::<f64>().ok());
            match (t, x) {
                (Some(t), Some(x)) => points.push((t, x)),
                _ => return Err(format!("bad sample {v}")),
            }
        }
        out.push((key, points));
    }
    Ok(out)
}

/// Scrape health of `targets` targets scraped every `interval` over `window`, from the
/// `scrape_duration_seconds` and `up` matrices of that window.
pub fn assess(
    durations: &Matrix,
    up: &Matrix,
    targets: usize,
    interval: Duration,
    window: Duration,
) -> ScrapeHealth {
    let step = interval.as_secs_f64().max(1e-3);
    let per_target = (window.as_secs_f64() / step).floor() as u64;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .expect("constant histogram bounds are valid");
    let mut scrapes = 0u64;
    let mut missed = 0u64;
    let mut seen: HashMap<&str, ()> = HashMap::new();
    for (key, points) in durations {
        seen.insert(key, ());
        let mut times: Vec<f64> = points.iter().map(|p| p.0).collect();
        times.sort_by(f64::total_cmp);
        for w in times.windows(2) {
            let gap = w[1] - w[0];
            if gap > 1.5 * step {
                missed += ((gap / step).round() as u64).saturating_sub(1);
            }
        }
        // Scrapes due before the first sample and after the last one also count.
        if let (Some(first), Some(last)) = (times.first(), times.last()) {
            let span = last - first;
            let fitted = (span / step).round() as u64 + 1;
            missed += per_target.saturating_sub(fitted);
        }
        for &(_, secs) in points {
            scrapes += 1;
            let micros = (secs * 1e6).round().max(1.0) as u64;
            hist.saturating_record(micros);
        }
    }
    let absent = targets.saturating_sub(seen.len()) as u64;
    missed += absent * per_target;
    let failed = up
        .iter()
        .flat_map(|(_, p)| p.iter())
        .filter(|p| p.1 == 0.0)
        .count() as u64;
    let ms = |q: f64| {
        if hist.is_empty() {
            0.0
        } else {
            hist.value_at_quantile(q) as f64 / 1000.0
        }
    };
    ScrapeHealth {
        scrapes,
        expected_scrapes: per_target * targets as u64,
        missed_scrapes: missed,
        failed_scrapes: failed,
        duration_p50_ms: ms(0.5),
        duration_p99_ms: ms(0.99),
        duration_max_ms: if hist.is_empty() {
            0.0
        } else {
            hist.max() as f64 / 1000.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(key: &str, times: &[f64], value: f64) -> (String, Vec<(f64, f64)>) {
        (key.to_string(), times.iter().map(|t| (*t, value)).collect())
    }

    #[test]
    fn parses_a_matrix_answer() {
        let answer: Value = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{"__name__":"up","instance":"127.0.0.1:1"},"values":[[10.5,"1"],[20.5,"0"]]}]}}"#,
        )
        .unwrap();
        let m = parse_matrix(&answer).unwrap();
        assert_eq!(
            m,
            vec![("127.0.0.1:1".to_string(), vec![(10.5, 1.0), (20.5, 0.0)])]
        );
        let failed: Value = serde_json::from_str(r#"{"status":"error","error":"x"}"#).unwrap();
        assert!(parse_matrix(&failed).is_err());
    }

    #[test]
    fn counts_gaps_edges_absent_targets_and_failures() {
        let interval = Duration::from_secs(10);
        let window = Duration::from_secs(60); // 6 scrapes per target
        let durations = vec![
            // Every scrape there: nothing missed.
            series("a", &[1.0, 11.0, 21.0, 31.0, 41.0, 51.0], 0.010),
            // One gap of 30 s (2 missed) and one scrape missing at the end.
            series("b", &[2.0, 12.0, 42.0], 0.020),
        ];
        let up = vec![
            series("a", &[1.0, 11.0, 21.0, 31.0, 41.0, 51.0], 1.0),
            series("b", &[2.0, 12.0], 1.0),
            series("b2", &[42.0], 0.0),
        ];
        let h = assess(&durations, &up, 3, interval, window);
        assert_eq!(h.scrapes, 9);
        assert_eq!(h.expected_scrapes, 18);
        // b: 2 in the gap + 1 at the edge; the third target: all 6.
        assert_eq!(h.missed_scrapes, 3 + 6);
        assert_eq!(h.failed_scrapes, 1);
        assert!((h.missed_share() - 10.0 / 18.0).abs() < 1e-9);
        assert!((h.duration_p50_ms - 10.0).abs() < 0.05, "{h:?}");
        assert!((h.duration_p99_ms - 20.0).abs() < 0.05, "{h:?}");
    }

    #[test]
    fn a_full_window_misses_nothing() {
        let d = vec![series("a", &[0.0, 10.0, 20.0], 0.5)];
        let h = assess(&d, &d, 1, Duration::from_secs(10), Duration::from_secs(30));
        assert_eq!((h.missed_scrapes, h.failed_scrapes), (0, 0));
        // Three significant digits: 500 ms is kept within 0.1 %.
        assert!((h.duration_max_ms - 500.0).abs() <= 0.5, "{h:?}");
    }
}
