//! The `anchored` and `smoothed` range modifiers' view of a window (Prometheus 3,
//! experimental): instead of extrapolating from the samples inside `(start, end]`, the value at
//! each edge is either the last sample at or before it (anchored) or the straight line between
//! the samples around it (smoothed). `rate`, `increase` and `delta` become the difference of the
//! two edge values (plus counter resets); `changes` and `resets` count from the anchor sample;
//! an instant selector with `smoothed` interpolates at the step.
//!
//! The points handed in are those of the widened window the evaluator fetched: up to one
//! lookback before the start, and for `smoothed` up to one lookback after the end. Pure
//! arithmetic over one series' floats: no labels, no storage.

use crate::promql::value::FPoint;

/// The value at `t` on the line from `a` to `b`. For a counter, a drop between them is a reset,
/// so the line starts at zero instead of at `a`.
fn interpolate(a: FPoint, b: FPoint, t: i64, is_counter: bool) -> f64 {
    let y1 = if is_counter && b.f < a.f { 0.0 } else { a.f };
    y1 + (b.f - y1) * (t - a.t) as f64 / (b.t - a.t) as f64
}

/// Index of the last point at or before `t`, or 0 when there is none; the last point is never
/// chosen (as Prometheus's search over all but the last point).
fn anchor_index(points: &[FPoint], t: i64) -> usize {
    let n = points.len().saturating_sub(1);
    points[..n].partition_point(|p| p.t <= t).saturating_sub(1)
}

/// `rate` (is_counter, is_rate), `increase` (is_counter) or `delta` over an anchored or
/// smoothed window `(range_start, range_end]`. `range` is the selector's range in ms (the
/// divisor of `rate`). None where Prometheus gives no output.
pub fn edge_rate(
    points: &[FPoint],
    range_start: i64,
    range_end: i64,
    smoothed: bool,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let mut first = anchor_index(points, range_start);
    let mut last = points.len() - 1;
    if smoothed {
        last = points[..last].partition_point(|p| p.t < range_end);
    }
    if points[last].t <= range_start {
        return None;
    }
    if smoothed && points[first].t > range_end {
        return None;
    }
    let left = if smoothed && points[first].t < range_start {
        interpolate(points[first], points[first + 1], range_start, is_counter)
    } else {
        points[first].f
    };
    let right = if smoothed && last > 0 && points[last].t > range_end {
        interpolate(points[last - 1], points[last], range_end, is_counter)
    } else {
        points[last].f
    };
    let mut result = right - left;
    if is_counter {
        // Resets across an edge are already in the edge values; only those strictly inside
        // the window are added back.
        if points[first].t <= range_start {
            first += 1;
        }
        if points[last].t >= range_end {
            last = last.saturating_sub(1);
        }
        let inner = if first <= last && last < points.len() {
            &points[first..=last]
        } else {
            &[][..]
        };
        let mut prev = left;
        for p in inner {
            if p.f < prev {
                result += prev;
            }
            prev = p.f;
        }
        if right < prev {
            result += prev;
        }
    }
    if is_rate {
        result /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result)
}

/// The points `changes` and `resets` look at in an anchored window: from the last point at or
/// before `range_start` on. None when no point lies after `range_start`.
pub fn anchored_points(points: &[FPoint], range_start: i64) -> Option<&[FPoint]> {
    let after = points.partition_point(|p| p.t <= range_start);
    if after >= points.len() {
        return None;
    }
    Some(&points[after.saturating_sub(1)..])
}

/// A `smoothed` instant selector at `t`, given the sample the lookback found (`prev`, at or
/// before `t`) and the next one within a lookback after `t`: the line between them at `t`, or
/// `prev` carried forward when there is no next sample.
pub fn smoothed_value(prev: FPoint, next: Option<FPoint>, t: i64) -> f64 {
    match next {
        Some(next) if prev.t < t && next.t > t => interpolate(prev, next, t, false),
        _ => prev.f,
    }
}

/// A range selector with a modifier returned as a range vector: the points inside the window
/// with a synthetic point at each edge (the anchor's or the interpolated value).
pub fn edge_points(
    points: &[FPoint],
    range_start: i64,
    range_end: i64,
    smoothed: bool,
) -> Vec<FPoint> {
    if points.is_empty() {
        return Vec::new();
    }
    let mut first = anchor_index(points, range_start);
    let mut last = points.len() - 1;
    if smoothed {
        last = points[..last].partition_point(|p| p.t < range_end);
    }
    if points[last].t <= range_start {
        return Vec::new();
    }
    let left = if smoothed && points[first].t < range_start {
        interpolate(points[first], points[first + 1], range_start, false)
    } else {
        points[first].f
    };
    let right = if smoothed && last > 0 && points[last].t > range_end {
        interpolate(points[last - 1], points[last], range_end, false)
    } else {
        points[last].f
    };
    if points[first].t <= range_start {
        first += 1;
    }
    let mut out = vec![FPoint {
        t: range_start,
        f: left,
    }];
    let end = if points[last].t >= range_end {
        last
    } else {
        last + 1
    };
    if first < end {
        out.extend_from_slice(&points[first..end]);
    }
    out.push(FPoint {
        t: range_end,
        f: right,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(i64, f64)]) -> Vec<FPoint> {
        v.iter().map(|&(t, f)| FPoint { t, f }).collect()
    }

    #[test]
    fn anchored_increase_is_the_difference_from_the_anchor() {
        // 1 2 3 4 5 at 15 s steps: at 50 s over 1 m the anchor is the first sample.
        let p = pts(&[(0, 1.0), (15, 2.0), (30, 3.0), (45, 4.0)]);
        assert_eq!(edge_rate(&p, -10, 50, false, true, false), Some(3.0));
        // Nothing after the start: no output.
        assert_eq!(edge_rate(&p, 45, 105, false, true, false), None);
    }

    #[test]
    fn smoothed_increase_interpolates_both_edges_and_counts_resets() {
        let p = pts(&[(0, 9.0), (60, 8.0), (120, 5.0), (180, 4.0)]);
        // (15, 135]: left on the reset line 0→8 at 15 is 2, right on 0→4 at 135 is 1; the
        // values before the drops at 120 (8) and 180 (5) are added back: 1 - 2 + 8 + 5.
        assert_eq!(edge_rate(&p, 15, 135, true, true, false), Some(12.0));
        assert_eq!(edge_rate(&p, 200, 260, true, true, false), None);
    }

    #[test]
    fn smoothed_value_interpolates_or_carries_forward() {
        let p = pts(&[(10, 2.0), (20, 3.0)]);
        assert_eq!(smoothed_value(p[0], Some(p[1]), 15), 2.5);
        assert_eq!(smoothed_value(p[0], Some(p[1]), 10), 2.0);
        assert_eq!(smoothed_value(p[1], None, 25), 3.0);
    }

    #[test]
    fn anchored_points_start_at_the_anchor() {
        let p = pts(&[(0, 1.0), (60, 2.0), (120, 3.0)]);
        assert_eq!(anchored_points(&p, 60).unwrap(), &p[1..]);
        assert_eq!(anchored_points(&p, 30).unwrap(), &p[0..]);
        assert!(anchored_points(&p, 120).is_none());
    }
}
