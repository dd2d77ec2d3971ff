//! The `<aggregation>_over_time` functions: one number from all the points of one series'
//! window (`avg`, `sum`, `min`, `max`, `count`, `last`, `first`, `present`, `stddev`,
//! `stdvar`, `mad`, `quantile`, and the experimental `ts_of_*`).
//!
//! Every function returns None for an empty window (Prometheus outputs no element then). The
//! sums are compensated exactly as Prometheus's, so results match it to the last bit where
//! its tests compare exactly.

use super::kahan::kahan_sum_inc;
use super::quantile::quantile;
use crate::promql::value::FPoint;

/// The mean, by compensated summation; once the sum overflows, by a compensated incremental
/// mean instead (so two huge values average to a huge value, not +Inf).
pub fn avg_over_time(points: &[FPoint]) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let (mut sum, mut c, mut mean) = (0.0, 0.0, 0.0);
    let mut count = 0.0;
    let mut incremental = false;
    for p in points {
        count += 1.0;
        if !incremental {
            let (new_sum, new_c) = kahan_sum_inc(p.f, sum, c);
            if count == 1.0 || !new_sum.is_infinite() {
                (sum, c) = (new_sum, new_c);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_sum_inc(p.f / count, q * mean, q * c);
    }
    Some(if incremental {
        mean + c
    } else {
        sum / count + c / count
    })
}

pub fn sum_over_time(points: &[FPoint]) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let (mut sum, mut c) = (0.0, 0.0);
    for p in points {
        (sum, c) = kahan_sum_inc(p.f, sum, c);
    }
    Some(if sum.is_infinite() { sum } else { sum + c })
}

/// The smallest value; NaN only when every value is NaN.
pub fn min_over_time(points: &[FPoint]) -> Option<f64> {
    select_over_time(points, |cur, best| cur < best || best.is_nan()).map(|p| p.f)
}

/// The largest value; NaN only when every value is NaN.
pub fn max_over_time(points: &[FPoint]) -> Option<f64> {
    select_over_time(points, |cur, best| cur > best || best.is_nan()).map(|p| p.f)
}

/// Seconds of the (first) smallest value's timestamp.
pub fn ts_of_min_over_time(points: &[FPoint]) -> Option<f64> {
    select_over_time(points, |cur, best| cur < best || best.is_nan()).map(|p| seconds(p.t))
}

/// Seconds of the (first) largest value's timestamp.
pub fn ts_of_max_over_time(points: &[FPoint]) -> Option<f64> {
    select_over_time(points, |cur, best| cur > best || best.is_nan()).map(|p| seconds(p.t))
}

/// The first point that `better(value, best so far)` prefers, starting from the oldest.
fn select_over_time(points: &[FPoint], better: impl Fn(f64, f64) -> bool) -> Option<FPoint> {
    let mut best = *points.first()?;
    for p in &points[1..] {
        if better(p.f, best.f) {
            best = *p;
        }
    }
    Some(best)
}

pub fn count_over_time(points: &[FPoint]) -> Option<f64> {
    (!points.is_empty()).then_some(points.len() as f64)
}

pub fn last_over_time(points: &[FPoint]) -> Option<f64> {
    points.last().map(|p| p.f)
}

pub fn first_over_time(points: &[FPoint]) -> Option<f64> {
    points.first().map(|p| p.f)
}

pub fn ts_of_last_over_time(points: &[FPoint]) -> Option<f64> {
    points.last().map(|p| seconds(p.t))
}

pub fn ts_of_first_over_time(points: &[FPoint]) -> Option<f64> {
    points.first().map(|p| seconds(p.t))
}

pub fn present_over_time(points: &[FPoint]) -> Option<f64> {
    (!points.is_empty()).then_some(1.0)
}

/// Population standard deviation.
pub fn stddev_over_time(points: &[FPoint]) -> Option<f64> {
    stdvar_over_time(points).map(f64::sqrt)
}

/// Population variance: Welford's running mean and squared deviations, each Kahan-summed.
pub fn stdvar_over_time(points: &[FPoint]) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        count += 1.0;
        let delta = p.f - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (p.f - (mean + c_mean)), aux, c_aux);
    }
    Some((aux + c_aux) / count)
}

/// Median absolute deviation from the median. A NaN anywhere makes it NaN (the quantile
/// alone would sort the NaN away as the smallest value).
pub fn mad_over_time(points: &[FPoint]) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    if points.iter().any(|p| p.f.is_nan()) {
        return Some(f64::NAN);
    }
    let mut values: Vec<f64> = points.iter().map(|p| p.f).collect();
    let median = quantile(0.5, &mut values);
    for v in &mut values {
        *v = (*v - median).abs();
    }
    Some(quantile(0.5, &mut values))
}

/// `quantile` over the window's values; the caller warns about q outside [0, 1].
pub fn quantile_over_time(q: f64, points: &[FPoint]) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = points.iter().map(|p| p.f).collect();
    Some(quantile(q, &mut values))
}

fn seconds(t_ms: i64) -> f64 {
    t_ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::super::load_notation::{assert_close, expand, window, MINUTE, SECOND};
    use super::*;

    /// functions.test, "Tests for avg_over_time" (load 10s, at 55s over [1m]).
    #[test]
    #[allow(clippy::excessive_precision)] // the literals as the test file writes them
    fn avg_and_sum_with_infinities_and_overflow() {
        let inf = f64::INFINITY;
        let cases = [
            ("1 2 3 4 5", 3.0, 3.0),
            ("1 2 3 4 Inf", inf, inf),
            ("1 2 3 4 -Inf", -inf, -inf),
            ("1 2 3 Inf -Inf", f64::NAN, f64::NAN),
            ("Inf 0 Inf", inf, inf),
            ("Inf Inf Inf -Inf", f64::NAN, f64::NAN),
            ("1 2 3 -Inf -Inf", -inf, -inf),
            ("-Inf 0 -Inf", -inf, -inf),
            ("-Inf -Inf -Inf Inf", f64::NAN, f64::NAN),
            ("1 2 -Inf -Inf Inf", f64::NAN, f64::NAN),
            // Overflowing sums: the mean survives, sum/count does not.
            (
                "9.988465674311579e+307 9.988465674311579e+307",
                9.988465674311579e307,
                inf,
            ),
            (
                "-9.988465674311579e+307 -9.988465674311579e+307 -9.988465674311579e+307",
                -9.988465674311579e307,
                -inf,
            ),
            ("-9.988465674311579e+307 9.988465674311579e+307", 0.0, 0.0),
            ("1 2 3 NaN NaN", f64::NAN, f64::NAN),
        ];
        for (spec, avg, sum_div_count) in cases {
            let p = window(&expand(spec, 10 * SECOND), 55 * SECOND, MINUTE);
            assert_close(avg_over_time(&p), avg);
            let n = count_over_time(&p).unwrap();
            assert_close(sum_over_time(&p).map(|s| s / n), sum_div_count);
        }
        let metric = expand("1 2 3 4 5", 10 * SECOND);
        assert_eq!(
            avg_over_time(&window(&metric, 55 * SECOND, 10 * SECOND)),
            None
        );
        assert_close(
            avg_over_time(&window(&metric, 55 * SECOND, 20 * SECOND)),
            5.0,
        );
        let nan = expand("1 2 3 NaN NaN", 10 * SECOND);
        assert_close(avg_over_time(&window(&nan, 20 * SECOND, MINUTE)), 2.0);
    }

    #[test]
    fn avg_of_extreme_magnitudes() {
        // functions.test, "More tests for extreme values" (load 5s, at 55s over [1m]).
        let cases = [
            ("1e10 1e-6 1e-6 1e-6 1e-6 1e-6", 1.6666666666666675e+09),
            (
                "5.30921651659898 0.961118537914768 1.62091361305318 0.865089463758091 \
                 0.323055185914577 0.951811357687154",
                1.67186744582113,
            ),
            (
                "1.78264e50 0.76342771 1.9592258 7.69805412 458.90154",
                3.56528E+49,
            ),
            (
                "0.76342771 1.9592258 7.69805412 1.78264e50 458.90154",
                3.56528E+49,
            ),
            (
                "1.78264E+50 0.76342771 1.9592258 2.258E+220 7.69805412 458.90154",
                3.76333333333333E+219,
            ),
            (
                "-1.78264E+50 0.76342771 1.9592258 2.258E+220 7.69805412 -458.90154",
                3.76333333333333E+219,
            ),
            (
                "-1.78264E+50 0.76342771 1.9592258 -2.258E+220 7.69805412 -458.90154",
                -3.76333333333333E+219,
            ),
            (
                "-1.78264E+215 0.76342771 1.9592258 2.258E+220 7.69805412 -458.90154",
                3.76330362266667E+219,
            ),
            (
                "-1.78264E+215 0.76342771 1.9592258 2.258E+220 7.69805412 1.78264E+215 \
                 -458.90154",
                3.225714285714286e+219,
            ),
            (
                "-1.78264E+219 0.76342771 1.9592258 2.3757689E+217 -2.3757689E+217 \
                 2.258E+220 7.69805412 1.78264E+219 -458.90154",
                2.5088888888888888e+219,
            ),
            // "Even Kahan summation cannot cope ...": Prometheus's answer is 0.
            (
                "-2.258E+220 -1.78264E+219 0.76342771 1.9592258 2.3757689E+217 \
                 -2.3757689E+217 2.258E+220 7.69805412 1.78264E+219 -458.90154",
                0.0,
            ),
        ];
        for (spec, want) in cases {
            let p = window(&expand(spec, 5 * SECOND), 55 * SECOND, MINUTE);
            assert_close(avg_over_time(&p), want);
        }
    }

    #[test]
    fn constant_series_average_exactly() {
        // functions.test: foo 52+0x100 (load 10s), avg_over_time(foo[100s..130s]) == 52 at 10m.
        let foo = expand("52+0x100", 10 * SECOND);
        for range in [100, 110, 120, 130] {
            let p = window(&foo, 10 * MINUTE, range * SECOND);
            assert_eq!(avg_over_time(&p), Some(52.0));
        }
        // load 1ms, metric 1+0x4000: sum_over_time(metric[1000ms..3003ms]) at 4s.
        let dense = expand("1+0x4000", 1);
        for range in [1000, 1001, 1002, 1003, 2000, 2001, 2002, 2003, 3000, 3003] {
            assert_eq!(
                sum_over_time(&window(&dense, 4000, range)),
                Some(range as f64)
            );
        }
        let big = window(&expand("1 1e100 1 -1e100", 10 * SECOND), MINUTE, 2 * MINUTE);
        assert_eq!(sum_over_time(&big), Some(2.0));
        assert_eq!(avg_over_time(&big), Some(0.5));
    }

    #[test]
    fn variance_and_deviation() {
        // functions.test, "Tests for stddev_over_time and stdvar_over_time".
        let p = window(&expand("0 8 8 2 3", 10 * SECOND), MINUTE, 2 * MINUTE);
        assert_close(stdvar_over_time(&p), 10.56);
        assert_close(stddev_over_time(&p), 3.249615);
        // #4927: equal values have exactly zero variance.
        let same = "1.5990505637277868 1.5990505637277868 1.5990505637277868";
        let p = window(&expand(same, 10 * SECOND), 55 * SECOND, MINUTE);
        assert_eq!(stdvar_over_time(&p), Some(0.0));
        assert_eq!(stddev_over_time(&p), Some(0.0));
    }

    #[test]
    fn median_absolute_deviation() {
        // functions.test, "Tests for mad_over_time" (load 10s).
        let s = 10 * SECOND;
        let mad = |spec: &str, at: i64, range: i64| {
            mad_over_time(&window(&expand(spec, s), at * SECOND, range * SECOND))
        };
        assert_close(mad("4 6 2 1 999 1 2", 70, 70), 1.0);
        assert_close(mad("1 2 3 4 5", 40, 50), 1.0);
        assert_close(mad("7 7 7 7 7", 40, 50), 0.0);
        assert_close(mad("5", 0, 10), 0.0);
        assert_close(mad("1 2 NaN 4", 30, 40), f64::NAN);
    }

    #[test]
    fn min_max_ignore_nan_unless_all_nan() {
        // functions.test, "Tests for *_over_time" (load 10s, at 1m over [2m]).
        let at = |spec: &str| window(&expand(spec, 10 * SECOND), MINUTE, 2 * MINUTE);
        let cases = [
            ("2 0 3", 0.0, 3.0, 3.0, 2.0, 3.0),
            ("2 0 NaN", 0.0, 2.0, f64::NAN, 2.0, 3.0),
            ("2 NaN 1", 1.0, 2.0, 1.0, 2.0, 3.0),
            ("NaN 0 1", 0.0, 1.0, 1.0, f64::NAN, 3.0),
            ("NaN NaN NaN", f64::NAN, f64::NAN, f64::NAN, f64::NAN, 3.0),
            ("_ 5 2 _ 4 _", 2.0, 5.0, 4.0, 5.0, 3.0),
        ];
        for (spec, min, max, last, first, count) in cases {
            let p = at(spec);
            assert_close(min_over_time(&p), min);
            assert_close(max_over_time(&p), max);
            assert_close(last_over_time(&p), last);
            assert_close(first_over_time(&p), first);
            assert_close(count_over_time(&p), count);
            assert_eq!(present_over_time(&p), Some(1.0));
        }
        for f in [
            min_over_time,
            max_over_time,
            last_over_time,
            count_over_time,
        ] {
            assert_eq!(f(&[]), None);
        }
        assert_eq!(present_over_time(&[]), None);
    }

    #[test]
    fn timestamps_of_selected_points() {
        // functions.test, ts_of_* tests (load 10s53ms: odd steps catch rounding bugs).
        let step = 10 * SECOND + 53;
        let p = window(&expand("1 2 3 0 5 6 2 1 4", step), 90 * SECOND, 90 * SECOND);
        assert_eq!(ts_of_min_over_time(&p), Some(30.159));
        assert_eq!(ts_of_max_over_time(&p), Some(50.265));
        let metric = expand("1 2 3 _ _", step);
        for at in [90, 95] {
            let p = window(&metric, at * SECOND, 90 * SECOND);
            assert_eq!(ts_of_last_over_time(&p), Some(20.106));
        }
        let metric = expand("_ _ 1 2 3 _ _", step);
        for at in [90, 95] {
            let p = window(&metric, at * SECOND, 90 * SECOND);
            assert_eq!(ts_of_first_over_time(&p), Some(20.106));
        }
        assert_eq!(
            ts_of_first_over_time(&window(&metric, 15 * SECOND, 90 * SECOND)),
            None
        );
    }

    #[test]
    fn quantile_of_the_window() {
        // functions.test, "Tests for quantile_over_time", uneven samples 0 1 4.
        let p = window(&expand("0 1 4", 10 * SECOND), MINUTE, 2 * MINUTE);
        assert_close(quantile_over_time(0.75, &p), 2.5);
        assert_close(quantile_over_time(0.8, &p), 2.8);
        assert_eq!(quantile_over_time(-1.0, &p), Some(f64::NEG_INFINITY));
        assert_eq!(quantile_over_time(0.5, &[]), None);
    }
}
