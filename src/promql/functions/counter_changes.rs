//! `changes` and `resets`: how often a series' value changed, or dropped, within a window.

use crate::promql::value::FPoint;

/// The number of times the value differs from the previous one; NaN followed by NaN is no
/// change. None when `points` is empty.
pub fn changes(points: &[FPoint]) -> Option<f64> {
    let (first, rest) = points.split_first()?;
    let mut prev = first.f;
    let mut n = 0u64;
    for p in rest {
        if p.f != prev && !(p.f.is_nan() && prev.is_nan()) {
            n += 1;
        }
        prev = p.f;
    }
    Some(n as f64)
}

/// The number of counter resets between consecutive points: decreases, or a start timestamp
/// saying a new counter began (`start_timestamps` aligned with `points`, or empty). None
/// when `points` is empty.
pub fn resets(points: &[FPoint], start_timestamps: &[i64]) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let sts = start_timestamps;
    let n = points
        .windows(2)
        .enumerate()
        .filter(|(k, w)| {
            w[1].f < w[0].f
                || (k + 1 < sts.len()
                    && super::start_time::is_reset(sts[*k], w[0].t, sts[k + 1], w[1].t))
        })
        .count();
    Some(n as f64)
}

#[cfg(test)]
mod tests {
    use super::super::load_notation::{expand, window, MINUTE};
    use super::*;

    #[test]
    fn resets_and_changes_as_the_test_files() {
        // functions.test, "Testdata for resets() and changes()" (load 5m), at 50m.
        let m = 5 * MINUTE;
        let series = [
            expand("1 2 3 0 1 0 0 1 2 0", m),
            expand("1 2 3 4 5 1 2 3 4 5", m),
            expand("0 0 0 0 0 1 1 1 1 1", m),
        ];
        let over = |f: fn(&[FPoint]) -> Option<f64>, range: i64| -> Vec<Option<f64>> {
            let range = range * MINUTE;
            series
                .iter()
                .map(|p| f(&window(p, 50 * MINUTE, range)))
                .collect()
        };
        assert_eq!(over(|p| resets(p, &[]), 5), vec![None, None, None]);
        assert_eq!(over(|p| resets(p, &[]), 10), vec![Some(0.0); 3]);
        assert_eq!(
            over(|p| resets(p, &[]), 20),
            vec![Some(1.0), Some(0.0), Some(0.0)]
        );
        assert_eq!(
            over(|p| resets(p, &[]), 30),
            vec![Some(1.0), Some(0.0), Some(0.0)]
        );
        assert_eq!(
            over(|p| resets(p, &[]), 32),
            vec![Some(2.0), Some(1.0), Some(0.0)]
        );
        assert_eq!(
            over(|p| resets(p, &[]), 50),
            vec![Some(3.0), Some(1.0), Some(0.0)]
        );
        assert_eq!(over(changes, 5), vec![None, None, None]);
        assert_eq!(over(changes, 6), vec![Some(0.0); 3]);
        assert_eq!(over(changes, 20), vec![Some(2.0), Some(2.0), Some(0.0)]);
        assert_eq!(over(changes, 30), vec![Some(3.0), Some(4.0), Some(0.0)]);
        assert_eq!(over(changes, 50), vec![Some(7.0), Some(8.0), Some(1.0)]);
        // "x{a=...} NaN NaN NaN / 0 NaN 0", changes(x[20m]) at 15m: 0 and 2.
        let x_b = expand("NaN NaN NaN", m);
        let x_c = expand("0 NaN 0", m);
        assert_eq!(changes(&window(&x_b, 15 * MINUTE, 20 * MINUTE)), Some(0.0));
        assert_eq!(changes(&window(&x_c, 15 * MINUTE, 20 * MINUTE)), Some(2.0));
        assert_eq!(changes(&[]), None);
        assert_eq!(resets(&[], &[]), None);
    }
}
