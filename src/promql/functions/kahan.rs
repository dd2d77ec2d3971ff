//! Compensated (Kahan–Neumaier) summation, the way Prometheus sums floats in `sum`, `avg`,
//! `sum_over_time`, the regressions and the variances: the running sum and its error term are
//! kept apart and added only at the end.

/// One step of Kahan–Neumaier summation, as Prometheus's `kahanSumInc`: adds `inc` to
/// `sum` whose accumulated error is `c`, returns the new `(sum, c)`. Once the sum is
/// infinite the error term is reset, so `sum + c` stays infinite rather than NaN.
pub fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        // Neumaier: the larger operand's low bits are the ones lost.
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_plain_summation_loses() {
        // functions.test, "Test if very big intermediate values cause loss of detail":
        // sum_over_time of 1 1e100 1 -1e100 is 2.
        let (mut s, mut c) = (0.0, 0.0);
        for v in [1.0, 1e100, 1.0, -1e100] {
            (s, c) = kahan_sum_inc(v, s, c);
        }
        assert_eq!(s + c, 2.0);
    }

    #[test]
    fn an_infinite_sum_stays_infinite() {
        let (s, c) = kahan_sum_inc(f64::INFINITY, 1.0, 0.5);
        assert_eq!((s, c), (f64::INFINITY, 0.0));
        let (s, c) = kahan_sum_inc(f64::MAX, f64::MAX, 0.0);
        assert_eq!(s + c, f64::INFINITY);
    }
}
