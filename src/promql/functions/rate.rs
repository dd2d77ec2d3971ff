//! `rate`, `increase`, `delta` (Prometheus's extrapolatedRate) and `irate`, `idelta`: the
//! change of a series over a window, per second or in total.
//!
//! Only float points of one series' window come in; the window bounds are passed because
//! the extrapolation depends on how far the first and last points sit from them. Native
//! histograms and the `anchored`/`smoothed` modifiers are not handled here.

use super::start_time;
use crate::promql::value::FPoint;

/// How much further than the average sample interval a window edge may be from the nearest
/// point before extrapolation stops at half an interval (Prometheus's constant).
const EXTRAPOLATION_THRESHOLD: f64 = 1.1;

/// Prometheus's extrapolatedRate: rate (is_counter, is_rate), increase (is_counter, !is_rate),
/// delta (!is_counter, !is_rate). `range_start` exclusive and `range_end` inclusive, in ms.
/// `start_timestamps` are the points' start timestamps (0 = unknown), or empty.
///
/// The raw change between the first and last point (plus, for counters, every value before
/// a reset, by value or by start timestamp) is extrapolated to the window edges: fully when
/// the gap to an edge is below 1.1 average intervals, else by half an interval; a counter is
/// never extrapolated below zero. A counter whose first point started inside the window is
/// taken from zero at that start instead of extrapolated to the left, which also gives a
/// single point a rate; otherwise None with fewer than 2 points.
pub fn extrapolated_rate(
    points: &[FPoint],
    start_timestamps: &[i64],
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let (first, last) = match points {
        [] => return None,
        [only] => (*only, *only),
        [first, .., last] => (*first, *last),
    };
    let sts = start_timestamps;
    let mut result = last.f - first.f;
    if is_counter {
        // A drop is a reset to zero: the value before it was lost from the difference.
        for (k, w) in points.windows(2).enumerate() {
            let by_start =
                k + 1 < sts.len() && start_time::is_reset(sts[k], w[0].t, sts[k + 1], w[1].t);
            if w[1].f < w[0].f || by_start {
                result += w[0].f;
            }
        }
    }
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last.t) as f64 / 1000.0;
    let mut sampled = (last.t - first.t) as f64 / 1000.0;
    let intervals = points.len() - 1;
    let avg_step = if intervals > 0 {
        sampled / intervals as f64
    } else {
        0.0
    };
    let threshold = avg_step * EXTRAPOLATION_THRESHOLD;
    match sts.first() {
        Some(&st) if is_counter && st != 0 && st > range_start && st < first.t => {
            // The counter started at `st` from zero, inside the window.
            to_start = 0.0;
            sampled = (last.t - st) as f64 / 1000.0;
            result += first.f;
        }
        _ if intervals == 0 => return None,
        _ => {
            if to_start >= threshold {
                to_start = avg_step / 2.0;
            }
            if is_counter && result > 0.0 && first.f >= 0.0 {
                // Where the counter, extrapolated backwards at its average rate, would reach
                // zero.
                let to_zero = sampled * (first.f / result);
                if to_zero < to_start {
                    to_start = to_zero;
                }
            }
        }
    }
    if to_end >= threshold {
        to_end = avg_step / 2.0;
    }
    let mut factor = if sampled != 0.0 {
        (sampled + to_start + to_end) / sampled
    } else {
        1.0
    };
    if is_rate {
        factor /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// Whether some point's start timestamp overlaps the previous point (Prometheus warns).
pub fn start_time_overlap(points: &[FPoint], start_timestamps: &[i64]) -> bool {
    let sts = start_timestamps;
    points
        .windows(2)
        .enumerate()
        .any(|(k, w)| k + 1 < sts.len() && start_time::overlaps(sts[k], w[0].t, sts[k + 1]))
}

/// irate (is_rate) / idelta (!is_rate) from the last two points; None with fewer than 2.
/// `irate` treats a drop as a counter reset (the increase is the last value) and divides by
/// the seconds between the two points.
pub fn instant_rate(points: &[FPoint], start_timestamps: &[i64], is_rate: bool) -> Option<f64> {
    let [.., prev, last] = points else {
        return None;
    };
    let n = points.len();
    let reset_by_start = start_timestamps.len() == n
        && start_time::is_reset(
            start_timestamps[n - 2],
            prev.t,
            start_timestamps[n - 1],
            last.t,
        );
    let interval_ms = last.t - prev.t;
    if interval_ms == 0 {
        return None;
    }
    let mut result = if is_rate && (last.f < prev.f || reset_by_start) {
        last.f
    } else {
        last.f - prev.f
    };
    if is_rate {
        result /= interval_ms as f64 / 1000.0;
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::super::load_notation::{assert_close, expand, window, MINUTE, SECOND};
    use super::*;

    /// `kind(m[range])` at `at` over the series `spec` loaded with `step`.
    fn eval(spec: &str, step: i64, at: i64, range: i64, counter: bool, rate: bool) -> Option<f64> {
        let points = window(&expand(spec, step), at, range);
        extrapolated_rate(&points, &[], at - range, at, counter, rate)
    }

    fn increase(spec: &str, step: i64, at: i64, range: i64) -> Option<f64> {
        eval(spec, step, at, range, true, false)
    }

    fn rate(spec: &str, step: i64, at: i64, range: i64) -> Option<f64> {
        eval(spec, step, at, range, true, true)
    }

    #[test]
    fn spec_worked_example() {
        // promql.md §7.1: samples (5s,10) (20s,20) (35s,30) (50s,40), rate(x[1m]) at 60s.
        let points: Vec<FPoint> = [(5, 10.0), (20, 20.0), (35, 30.0), (50, 40.0)]
            .iter()
            .map(|&(s, f)| FPoint { t: s * SECOND, f })
            .collect();
        assert_close(
            extrapolated_rate(&points, &[], 0, 60_000, true, false),
            40.0,
        );
        assert_close(
            extrapolated_rate(&points, &[], 0, 60_000, true, true),
            40.0 / 60.0,
        );
    }

    #[test]
    fn increase_extrapolates_but_not_below_zero() {
        // functions.test, "Tests for increase()", load 5m, at 50m.
        let m = 5 * MINUTE;
        assert_close(increase("0+10x10", m, 50 * MINUTE, 50 * MINUTE), 100.0);
        assert_close(
            increase("0+18x5 0+18x5", m, 50 * MINUTE, 50 * MINUTE),
            160.0,
        );
        assert_close(increase("10+10x10", m, 50 * MINUTE, 50 * MINUTE), 100.0);
        assert_close(increase("1+10x10", m, 50 * MINUTE, 50 * MINUTE), 100.0);
        assert_close(increase("0+10x10", m, 50 * MINUTE, 100 * MINUTE), 100.0);
        assert_close(
            increase("0+18x5 0+18x5", m, 50 * MINUTE, 100 * MINUTE),
            162.0,
        );
        assert_close(increase("10+10x10", m, 50 * MINUTE, 100 * MINUTE), 105.0);
        assert_close(increase("1+10x10", m, 50 * MINUTE, 100 * MINUTE), 101.0);
        // "3 2 is interpreted the same as 3 0 1 2".
        assert_close(increase("0 1 2 3 2 3 4", m, 30 * MINUTE, 30 * MINUTE), 7.0);
    }

    #[test]
    fn rate_handles_resets_and_window_edges() {
        // functions.test, "Tests for rate()".
        let m = 5 * MINUTE;
        assert_close(rate("0+27x4 0+27x5", m, 50 * MINUTE, 50 * MINUTE), 0.08);
        // A reset as the only change in a window with two points: no result / zero.
        assert_eq!(rate("0+10x9 0 10", m, 50 * MINUTE, 5 * MINUTE), None);
        assert_close(rate("0+10x9 0 10", m, 50 * MINUTE, 6 * MINUTE), 0.0);
        assert_close(
            rate("0+80x10", m, 50 * MINUTE, 50 * MINUTE),
            0.26666666666666666,
        );
        // `offset 5m`: the window is (35m, 45m].
        let points = window(&expand("0+10x10", m), 45 * MINUTE, 10 * MINUTE);
        assert_close(
            extrapolated_rate(&points, &[], 35 * MINUTE, 45 * MINUTE, true, true),
            0.03333333333333333,
        );
    }

    #[test]
    fn zero_cutoff_stops_at_half_an_interval() {
        // functions.test, testcounter_zero_cutoff_total, load 4m, rate(...[20m]).
        let m = 4 * MINUTE;
        let starts = ["0", "60", "120", "180", "240", "300"];
        let at_10m = [0.5, 0.55, 0.6, 0.6, 0.6, 0.6];
        for (start, want) in starts.iter().zip(at_10m) {
            let spec = format!("{start}+240x10");
            assert_close(rate(&spec, m, 10 * MINUTE, 20 * MINUTE), want);
            assert_close(rate(&spec, m, 50 * MINUTE, 20 * MINUTE), 0.6);
        }
    }

    #[test]
    fn delta_is_not_a_counter() {
        // functions.test, "Tests for delta()", at 20m over [20m].
        let m = 5 * MINUTE;
        assert_close(
            eval(
                "0 50 100 150 200",
                m,
                20 * MINUTE,
                20 * MINUTE,
                false,
                false,
            ),
            200.0,
        );
        assert_close(
            eval(
                "200 150 100 50 0",
                m,
                20 * MINUTE,
                20 * MINUTE,
                false,
                false,
            ),
            -200.0,
        );
        // Extrapolated a whole interval at both ends (below 1.1 intervals): 2 * 180/60 = 6; a
        // counter stops where it would cross zero, 30s before its first point: 2 * 150/60.
        let points = expand("1 3", MINUTE);
        assert_close(
            extrapolated_rate(&points, &[], -MINUTE, 2 * MINUTE, false, false),
            6.0,
        );
        assert_close(
            extrapolated_rate(&points, &[], -MINUTE, 2 * MINUTE, true, false),
            5.0,
        );
    }

    #[test]
    fn fewer_than_two_points_give_nothing() {
        assert_eq!(extrapolated_rate(&[], &[], 0, 1, true, true), None);
        let one = [FPoint { t: 1, f: 1.0 }];
        assert_eq!(extrapolated_rate(&one, &[], 0, 1, true, true), None);
        assert_eq!(instant_rate(&one, &[], true), None);
    }

    #[test]
    fn irate_and_idelta_use_the_last_two_points() {
        // functions.test, "Tests for irate()" and "Tests for idelta()".
        let m = 5 * MINUTE;
        let irate = |spec: &str, at: i64, range: i64| {
            instant_rate(&window(&expand(spec, m), at, range), &[], true)
        };
        assert_close(
            irate("0+10x10", 50 * MINUTE, 50 * MINUTE),
            0.03333333333333333,
        );
        assert_close(
            irate("0+10x5 0+10x5", 50 * MINUTE, 50 * MINUTE),
            0.03333333333333333,
        );
        assert_close(irate("0+10x5 0+10x5", 30 * MINUTE, 50 * MINUTE), 0.0);
        // irate(http_requests_nan[15m1s]) at 0..20m: _ NaN NaN NaN 0.02.
        let nan = "1 NaN NaN 5 11";
        let range = 15 * MINUTE + SECOND;
        assert_eq!(irate(nan, 0, range), None);
        for at in [5, 10, 15] {
            assert!(irate(nan, at * MINUTE, range).unwrap().is_nan());
        }
        assert_close(irate(nan, 20 * MINUTE, range), 0.02);

        let idelta = |spec: &str, at: i64, range: i64| {
            instant_rate(&window(&expand(spec, m), at, range), &[], false)
        };
        assert_close(idelta("0 50 100 150", 20 * MINUTE, 20 * MINUTE), 50.0);
        assert_close(idelta("0 50 100 50", 20 * MINUTE, 20 * MINUTE), -50.0);
        assert!(idelta(nan, 15 * MINUTE, range).unwrap().is_nan());
        assert_close(idelta(nan, 20 * MINUTE, range), 6.0);
    }

    #[test]
    fn equal_timestamps_give_nothing() {
        let p = [FPoint { t: 5, f: 1.0 }, FPoint { t: 5, f: 2.0 }];
        assert_eq!(instant_rate(&p, &[], true), None);
        assert_eq!(instant_rate(&p, &[], false), None);
    }
}
