//! `deriv` and `predict_linear`: a least-squares line through a window's points, with the
//! sums Kahan-compensated and x measured in seconds from a reference time, as Prometheus's
//! linearRegression does.

use super::kahan::kahan_sum_inc;
use crate::promql::value::FPoint;

/// The per-second slope of the regression line (x from the first point). None with < 2
/// points.
pub fn deriv(points: &[FPoint]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    Some(linear_regression(points, points[0].t).0)
}

/// The regression line's value `seconds_ahead` seconds after `eval_t` (ms): the evaluation
/// step's time, which is not the window's end under `@`. None with < 2 points.
pub fn predict_linear(points: &[FPoint], seconds_ahead: f64, eval_t: i64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(points, eval_t);
    Some(slope * seconds_ahead + intercept)
}

/// `(slope, intercept)` with x = seconds since `intercept_t`. All-equal y gives a flat line
/// (NaN, NaN if that y is infinite, as an infinite line has no slope).
fn linear_regression(points: &[FPoint], intercept_t: i64) -> (f64, f64) {
    let init_y = points[0].f;
    let mut const_y = true;
    let mut n = 0.0;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    for (i, p) in points.iter().enumerate() {
        if const_y && i > 0 && p.f != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_t) as f64 / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(p.f, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * p.f, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

#[cfg(test)]
mod tests {
    use super::super::load_notation::{assert_close, expand, window, MINUTE};
    use super::*;

    // functions.test, "Tests for deriv() and predict_linear()" (load 5m).
    const RESET_MIDDLE: &str = "0+10x4 0+10x5";

    #[test]
    fn deriv_as_the_test_files() {
        let m = 5 * MINUTE;
        let p = window(&expand("0+80x10", m), 50 * MINUTE, 50 * MINUTE);
        assert_close(deriv(&p), 0.26666666666666666);
        let p = window(&expand(RESET_MIDDLE, m), 50 * MINUTE, 100 * MINUTE);
        assert_close(deriv(&p), 0.010606060606060607);
        let p = window(&expand("-Inf 0+80x10 Inf", m), 100 * MINUTE, 100 * MINUTE);
        assert!(deriv(&p).unwrap().is_nan());
        assert_eq!(deriv(&p[..1]), None);
    }

    #[test]
    fn predict_linear_intercepts_at_the_evaluation_time() {
        let series = expand(RESET_MIDDLE, 5 * MINUTE);
        let p = window(&series, 50 * MINUTE, 50 * MINUTE);
        assert_close(predict_linear(&p, 3600.0, 50 * MINUTE), 70.0);
        // `[55m] @ 3000` evaluated at 50m, 10m and 70m: the same window, other intercepts.
        let at_3000 = window(&series, 50 * MINUTE, 55 * MINUTE);
        assert_close(
            predict_linear(&at_3000, 3600.0, 50 * MINUTE),
            76.81818181818181,
        );
        assert_close(
            predict_linear(&at_3000, 3600.0, 10 * MINUTE),
            51.36363636363637,
        );
        assert_close(
            predict_linear(&at_3000, 3600.0, 70 * MINUTE),
            89.54545454545455,
        );
        let inf = window(
            &expand("-Inf 0+80x10 Inf", 5 * MINUTE),
            100 * MINUTE,
            100 * MINUTE,
        );
        assert!(predict_linear(&inf, 6000.0, 100 * MINUTE).unwrap().is_nan());
        // A straight line ending at the evaluation time predicts exactly.
        let line = window(&expand("0+80x10", 5 * MINUTE), 50 * MINUTE, 50 * MINUTE);
        let slope = deriv(&line).unwrap();
        assert_eq!(
            predict_linear(&line, 3600.0, 50 * MINUTE),
            Some(800.0 + slope * 3600.0)
        );
    }

    #[test]
    fn constant_values_give_a_flat_line() {
        let flat = expand("5 5 5", MINUTE);
        assert_eq!(deriv(&flat), Some(0.0));
        assert_eq!(predict_linear(&flat, 100.0, 0), Some(5.0));
        let inf = expand("Inf Inf", MINUTE);
        assert!(predict_linear(&inf, 1.0, 0).unwrap().is_nan());
    }
}
