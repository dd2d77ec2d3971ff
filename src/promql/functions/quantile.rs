//! The φ-quantile of a set of floats, as the `quantile` aggregation and
//! `quantile_over_time` compute it: linear interpolation between the two nearest ranks,
//! NaN counted as the smallest value.

use std::cmp::Ordering;

/// Prometheus's `quantile` (φ-quantile with linear interpolation; NaN if empty, -Inf for q<0,
/// +Inf for q>1). Sorts `values` in place.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_unstable_by(nan_first);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Ascending order with every NaN before every number, as Prometheus sorts for quantiles.
pub(crate) fn nan_first(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_between_ranks() {
        // functions.test, "Tests for quantile_over_time" (and aggregators.test `quantile`).
        let cases: [(&[f64], [f64; 5]); 3] = [
            (&[0.0, 1.0], [0.0, 0.5, 0.75, 0.8, 1.0]),
            (&[0.0, 1.0, 2.0], [0.0, 1.0, 1.5, 1.6, 2.0]),
            (&[0.0, 1.0, 4.0], [0.0, 1.0, 2.5, 2.8, 4.0]),
        ];
        for (values, wants) in cases {
            for (q, want) in [0.0, 0.5, 0.75, 0.8, 1.0].into_iter().zip(wants) {
                let got = quantile(q, &mut values.to_vec());
                assert!((got - want).abs() < 1e-12, "q={q} {values:?}: {got}");
            }
            assert_eq!(quantile(-1.0, &mut values.to_vec()), f64::NEG_INFINITY);
            assert_eq!(quantile(2.0, &mut values.to_vec()), f64::INFINITY);
            assert!(quantile(f64::NAN, &mut values.to_vec()).is_nan());
        }
        assert!(quantile(0.5, &mut []).is_nan());
    }

    #[test]
    fn nan_is_the_smallest_value() {
        // aggregators.test: {0, 1, NaN}: q=0.8 is 0.6; q=0.2 falls between NaN and 0: NaN.
        let data = [1.0, f64::NAN, 0.0];
        assert!((quantile(0.8, &mut data.to_vec()) - 0.6).abs() < 1e-12);
        assert!(quantile(0.2, &mut data.to_vec()).is_nan());
        assert_eq!(quantile(1.0, &mut data.to_vec()), 1.0);
    }
}
