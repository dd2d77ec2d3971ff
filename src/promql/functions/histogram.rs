//! `histogram_quantile` and `histogram_fraction` over a classic histogram: the φ-quantile
//! estimated from cumulative `le` bucket counts by linear interpolation within the bucket
//! holding the rank, as Prometheus's bucketQuantile, and the fraction of observations between
//! two values, as its BucketFraction. Grouping series into buckets, parsing `le` and annotating are
//! the engine's; native histograms are not handled here.

/// One cumulative bucket: the count of observations `<= upper_bound`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub upper_bound: f64,
    pub count: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketQuantile {
    pub value: f64,
    /// Buckets were not monotonic and were fixed (the engine adds Prometheus's info
    /// annotation "input to histogram_quantile needed to be fixed for monotonicity").
    pub forced_monotonic: bool,
    /// Counts differing by a relative 1e-12 or less (float noise, e.g. from `rate`) were
    /// made equal. Prometheus reports nothing for it; kept for symmetry with its return.
    pub fixed_precision: bool,
}

/// Relative difference below which two adjacent counts are taken as equal.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// Prometheus's bucketQuantile. Sorts/merges `buckets` in place.
///
/// NaN for q NaN, -Inf/+Inf for q below 0/above 1; NaN without a +Inf bucket, with fewer
/// than two buckets or no observations. A rank in the +Inf bucket gives the highest finite
/// bound; a rank in a lowest bucket bounded at or below zero gives that bound.
pub fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> BucketQuantile {
    let value = |value| BucketQuantile {
        value,
        forced_monotonic: false,
        fixed_precision: false,
    };
    if q.is_nan() {
        return value(f64::NAN);
    }
    if q < 0.0 {
        return value(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return value(f64::INFINITY);
    }
    buckets.sort_unstable_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    match buckets.last() {
        Some(b) if b.upper_bound == f64::INFINITY => {}
        _ => return value(f64::NAN),
    }
    coalesce(buckets);
    let (forced_monotonic, fixed_precision) = ensure_monotonic(buckets);
    let result = |v| BucketQuantile {
        value: v,
        forced_monotonic,
        fixed_precision,
    };
    let n = buckets.len();
    if n < 2 {
        return value(f64::NAN);
    }
    let observations = buckets[n - 1].count;
    if observations == 0.0 {
        return value(f64::NAN);
    }
    let mut rank = q * observations;
    // The first bucket (the +Inf one excluded) holding the rank; n - 1 if none does.
    let b = buckets[..n - 1].partition_point(|b| b.count < rank);
    if b == n - 1 {
        return result(buckets[n - 2].upper_bound);
    }
    if b == 0 && buckets[0].upper_bound <= 0.0 {
        return result(buckets[0].upper_bound);
    }
    let end = buckets[b].upper_bound;
    let mut count = buckets[b].count;
    let mut start = 0.0;
    if b > 0 {
        start = buckets[b - 1].upper_bound;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    result(start + (end - start) * (rank / count))
}

/// Prometheus's histogram_fraction for classic buckets: the estimated fraction of the
/// observations between `lower` and `upper`. Sorts/merges `buckets` in place.
///
/// NaN without a +Inf bucket, without observations, or with a NaN bound; 0 when `lower >=
/// upper`. Inside a bucket observations are spread evenly (the lowest bucket starts at 0
/// when its bound is positive), except in a bucket of infinite width, where they all sit
/// at its infinite end.
pub fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    buckets.sort_unstable_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    match buckets.last() {
        Some(b) if b.upper_bound == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    coalesce(buckets);
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let lower_rank = rank_below(lower, buckets).min(count);
    let upper_rank = rank_below(upper, buckets).min(count);
    (upper_rank - lower_rank) / count
}

/// The estimated number of observations below `v` (sorted, coalesced buckets).
fn rank_below(v: f64, buckets: &[Bucket]) -> f64 {
    let mut rank = 0.0;
    for (i, b) in buckets.iter().enumerate() {
        let lo = match i {
            0 if b.upper_bound > 0.0 => 0.0,
            0 => f64::NEG_INFINITY,
            _ => buckets[i - 1].upper_bound,
        };
        if lo >= v {
            return rank;
        }
        if v < b.upper_bound {
            if lo == f64::NEG_INFINITY {
                return b.count;
            }
            if b.upper_bound == f64::INFINITY {
                return rank;
            }
            return rank + (b.count - rank) * (v - lo) / (b.upper_bound - lo);
        }
        rank = b.count;
    }
    rank
}

/// Merges buckets with the same bound (e.g. `le="0.2"` and `le="2e-1"`), summing counts.
/// `buckets` is sorted by bound.
fn coalesce(buckets: &mut Vec<Bucket>) {
    buckets.dedup_by(|next, kept| {
        if next.upper_bound == kept.upper_bound {
            kept.count += next.count;
            true
        } else {
            false
        }
    });
}

/// Makes counts non-decreasing: a count within a relative 1e-12 of the last kept one is set
/// to it (either direction); a lower count is raised to it. Returns (forced, fixed
/// precision).
fn ensure_monotonic(buckets: &mut [Bucket]) -> (bool, bool) {
    let (mut forced, mut fixed) = (false, false);
    let Some(first) = buckets.first() else {
        return (false, false);
    };
    let mut prev = first.count;
    for b in &mut buckets[1..] {
        let cur = b.count;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            fixed = true;
            continue;
        }
        if cur < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    (forced, fixed)
}

/// Relative comparison as Prometheus's `almost.Equal`: NaN equals NaN; near zero the
/// difference is compared against the smallest normal float.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < epsilon * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

#[cfg(test)]
mod tests {
    use super::super::load_notation::close;
    use super::*;

    /// (upper bound, cumulative count)
    type Pair = (f64, f64);

    fn buckets(pairs: &[Pair]) -> Vec<Bucket> {
        pairs
            .iter()
            .map(|&(upper_bound, count)| Bucket { upper_bound, count })
            .collect()
    }

    fn q(q: f64, pairs: &[(f64, f64)]) -> BucketQuantile {
        bucket_quantile(q, &mut buckets(pairs))
    }

    const INF: f64 = f64::INFINITY;

    // histograms.test, testhistogram_bucket at 50m (counts 0+Nx10 at index 10).
    const POSITIVE: [(f64, f64); 4] = [(0.1, 50.0), (0.2, 70.0), (1.0, 110.0), (INF, 120.0)];
    const NEGATIVE: [(f64, f64); 4] = [(-0.2, 10.0), (-0.1, 20.0), (0.3, 20.0), (INF, 30.0)];

    #[test]
    fn quantiles_as_the_test_files() {
        let cases = [
            (0.0, 0.0, -0.2),
            (0.2, 0.048, -0.2),
            (0.5, 0.15, -0.15),
            (0.8, 0.72, 0.3),
            (1.0, 1.0, 0.3),
        ];
        for (phi, pos, neg) in cases {
            // Given out of order: the kernel sorts.
            let mut p = POSITIVE;
            p.reverse();
            let got = q(phi, &p);
            assert!(close(got.value, pos), "q={phi}: {}", got.value);
            assert!(!got.forced_monotonic);
            assert!(close(q(phi, &NEGATIVE).value, neg), "q={phi} negative");
        }
        assert_eq!(q(-0.1, &POSITIVE).value, f64::NEG_INFINITY);
        assert_eq!(q(1.01, &POSITIVE).value, INF);
        assert!(q(f64::NAN, &POSITIVE).value.is_nan());
    }

    #[test]
    fn middle_of_buckets() {
        // histograms.test, testhistogram2 at 7m (1 observation per bucket of width 2).
        let b = [(0.0, 0.0), (2.0, 1.0), (4.0, 2.0), (6.0, 3.0), (INF, 3.0)];
        assert!(close(q(1.0 / 6.0, &b).value, 1.0));
        assert!(close(q(0.5, &b).value, 3.0));
        assert!(close(q(5.0 / 6.0, &b).value, 5.0));
    }

    #[test]
    fn nonmonotonic_buckets_are_fixed_and_reported() {
        // histograms.test, nonmonotonic_bucket at 50m.
        let b = [
            (0.1, 20.0),
            (1.0, 10.0),
            (10.0, 50.0),
            (100.0, 40.0),
            (1000.0, 90.0),
            (INF, 80.0),
        ];
        for (phi, want) in [(0.01, 0.0045), (0.5, 8.5), (0.99, 979.75)] {
            let got = q(phi, &b);
            assert!(close(got.value, want), "q={phi}: {}", got.value);
            assert!(got.forced_monotonic);
        }
    }

    #[test]
    fn duplicate_bounds_are_merged() {
        // histograms.test, rate(mixed_bucket[10m]): le 0.1, 0.2 (three spellings), +Inf.
        let r = 1.0 / 300.0;
        let b = [(0.1, r), (0.2, r), (0.2, r), (0.2, r), (INF, 4.0 * r)];
        assert!(close(q(0.5, &b).value, 0.15));
        assert!(close(q(0.75, &b).value, 0.2));
        assert!(close(q(1.0, &b).value, 0.2));
        // ins2: two +Inf buckets, merged into one: fewer than two buckets.
        assert!(q(0.5, &[(INF, 0.0), (INF, 0.0)]).value.is_nan());
    }

    #[test]
    fn degenerate_histograms_are_nan() {
        // No +Inf bucket; no observations (histograms.test, empty_bucket); a lone bucket.
        assert!(q(0.5, &[(1.0, 1.0), (2.0, 2.0)]).value.is_nan());
        assert!(q(0.2, &[(0.1, 0.0), (0.2, 0.0), (INF, 0.0)]).value.is_nan());
        assert!(q(0.5, &[(INF, 5.0)]).value.is_nan());
        assert!(q(0.5, &[]).value.is_nan());
    }

    #[test]
    fn rank_in_the_inf_bucket_gives_the_highest_finite_bound() {
        let b = [(1.0, 1.0), (2.0, 2.0), (INF, 10.0)];
        assert_eq!(q(0.9, &b).value, 2.0);
    }

    #[test]
    fn fractions_as_the_test_files() {
        // histograms.test, "Test histogram_fraction" (the `_bucket` cases at 50m).
        let one_two_three = [(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (INF, 100.0)];
        let negative = [(-3.0, 10.0), (-2.0, 12.0), (-1.0, 15.0), (INF, 100.0)];
        let h2 = [
            (0.0, 0.0),
            (2.0, 10.0),
            (4.0, 20.0),
            (6.0, 30.0),
            (INF, 30.0),
        ];
        let h3_pos = [
            (0.0, 0.0),
            (0.1, 50.0),
            (0.2, 70.0),
            (1.0, 110.0),
            (INF, 110.0),
        ];
        let h3_neg = [
            (-0.25, 0.0),
            (-0.2, 10.0),
            (-0.1, 20.0),
            (0.3, 20.0),
            (INF, 20.0),
        ];
        let fractional = [(0.5, 2.5), (1.0, 7.5), (INF, 100.0)];
        let crosses_zero = [
            (-2.0, 5.0),
            (-1.0, 10.0),
            (0.0, 15.0),
            (1.0, 20.0),
            (INF, 100.0),
        ];
        let small = [(1.0, 1.0), (2.0, 3.0), (INF, 10.0)];
        let nan = f64::NAN;
        // (lower, upper, buckets, fraction)
        let cases: [(f64, f64, &[Pair], f64); 23] = [
            (0.0, 4.0, &h2, 0.6666666666666666),
            (0.0, 6.0, &h2, 1.0),
            (0.0, 3.5, &h2, 0.5833333333333334),
            (0.0, 0.2, &h3_pos, 0.6363636363636364),
            (0.0, 0.2, &h3_neg, 0.0),
            (0.0, 1.5, &one_two_three, 0.02),
            (-4.0, -2.0, &negative, 0.02),
            (-INF, -1.5, &negative, 0.135),
            (-INF, INF, &one_two_three, 1.0),
            (-INF, INF, &negative, 1.0),
            (4.0, 5.0, &one_two_three, 0.0),
            (0.0, 1.0, &negative, 0.0),
            (2.0, 5.0, &one_two_three, 0.03),
            (400.0, INF, &one_two_three, 0.94),
            (2.0, 2.0, &one_two_three, 0.0),
            (3.0, 2.0, &one_two_three, 0.0),
            (0.0, 1.0, &[(INF, 100.0)], 0.0),
            (2.0, 3.5, &one_two_three, 0.03),
            (0.5, 2.0, &one_two_three, 0.025),
            (1.0, 3.0, &one_two_three, 0.05),
            (0.1, 0.75, &fractional, 0.045),
            (-1.0, 1.0, &crosses_zero, 0.1),
            (-10.0, -5.0, &small, 0.0),
        ];
        for (lower, upper, b, want) in cases {
            let got = bucket_fraction(lower, upper, &mut buckets(b));
            assert!(
                close(got, want),
                "({lower}, {upper}) {b:?}: {got}, want {want}"
            );
        }
        assert!(close(bucket_fraction(5.0, 10.0, &mut buckets(&small)), 0.0));
        let zero = [(1.0, 0.0), (2.0, 0.0), (3.0, 0.0), (INF, 0.0)];
        assert!(bucket_fraction(0.0, 5.0, &mut buckets(&zero)).is_nan());
        let two = [(1.0, 1.0), (INF, 100.0)];
        assert!(bucket_fraction(nan, 1.0, &mut buckets(&two)).is_nan());
        assert!(bucket_fraction(0.0, nan, &mut buckets(&two)).is_nan());
        assert!(bucket_fraction(0.0, 1.0, &mut buckets(&[(1.0, 1.0)])).is_nan());
    }

    #[test]
    fn float_noise_is_smoothed_without_an_annotation() {
        let b = [(1.0, 10.0), (2.0, 10.0 - 1e-14), (3.0, 20.0), (INF, 20.0)];
        let got = q(0.5, &b);
        assert!(got.fixed_precision);
        assert!(!got.forced_monotonic);
        assert_eq!(got.value, 1.0);
    }
}
