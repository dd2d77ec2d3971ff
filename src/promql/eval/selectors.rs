//! Selectors and subqueries: instant vector selectors with the lookback window, range
//! selectors and subqueries as windows over points (left-open, right-closed as in
//! Prometheus 3), `offset` and `@`.
//!
//! Staleness markers are seen here and nowhere else: an instant selector whose newest
//! sample is a marker yields nothing, and range windows never contain one.

use std::borrow::Cow;

use promql_parser::parser::{MatrixSelector, SubqueryExpr, VectorSelector};
use shards::labels::Labels;
use shards::value::is_stale_nan;

use super::{duration_ms, offset_ms, Evaluator, Result};
use crate::promql::functions::edge_values;
use crate::promql::range_modifier::{self, RangeModifier};
use crate::promql::value::{FPoint, Matrix, Series};

/// One series of a range-vector argument. A selector's points are borrowed from the fetched
/// data unless staleness markers had to be taken out: copying every series' points would be
/// an allocation per series for nothing in the usual case.
#[derive(Debug, Clone)]
pub struct RangeSeries<'p> {
    pub labels: Labels,
    pub points: Cow<'p, [FPoint]>,
    pub drop_name: bool,
}

/// A range-vector argument: series with their points (no staleness markers) and how to cut
/// the window of a step out of them.
#[derive(Debug, Clone)]
pub struct RangeInput<'p> {
    pub series: Vec<RangeSeries<'p>>,
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
    /// `anchored`/`smoothed` on a range selector (never on a subquery).
    pub modifier: Option<RangeModifier>,
    /// How far beyond the window a modifier may look for its edge samples.
    pub lookback: i64,
    /// Each series' start timestamps aligned with its points (empty when unknown; always
    /// for subqueries, which do not propagate them).
    pub start_timestamps: Vec<Cow<'p, [i64]>>,
}

impl RangeInput<'_> {
    /// The window's end (inclusive) at step `ts`.
    pub fn window_end(&self, ts: i64) -> i64 {
        self.at.unwrap_or(ts) - self.offset
    }

    /// The points of `points` in the window of step `ts`: `(end - range, end]`, widened by a
    /// lookback before it for a modifier and after it for `smoothed`, whose kernels find
    /// their edge samples there.
    pub fn window<'p>(&self, points: &'p [FPoint], ts: i64) -> &'p [FPoint] {
        &points[self.window_bounds(points, ts)]
    }

    /// The start timestamps of series `k` for the window `bounds` of its points; empty
    /// when they are unknown.
    pub fn start_timestamps_of(&self, k: usize, bounds: std::ops::Range<usize>) -> &[i64] {
        self.start_timestamps
            .get(k)
            .and_then(|s| s.get(bounds))
            .unwrap_or(&[])
    }

    /// Indexes of `window`'s points.
    pub fn window_bounds(&self, points: &[FPoint], ts: i64) -> std::ops::Range<usize> {
        let end = self.window_end(ts);
        let (lo_t, hi_t) = match self.modifier {
            None => (end - self.range, end),
            Some(RangeModifier::Anchored) => (end - self.range - self.lookback, end),
            Some(RangeModifier::Smoothed) => {
                (end - self.range - self.lookback, end + self.lookback)
            }
        };
        let lo = points.partition_point(|p| p.t <= lo_t);
        let hi = points.partition_point(|p| p.t <= hi_t);
        lo..hi.max(lo)
    }

    /// The windows at `ts` as a range vector; empty windows are left out. With a modifier
    /// each window is cut back to its range with a synthetic point at both edges.
    pub fn window_matrix(&self, ts: i64) -> Matrix {
        let end = self.window_end(ts);
        self.series
            .iter()
            .filter_map(|s| {
                let w = self.window(&s.points, ts);
                let points = match self.modifier {
                    None => w.to_vec(),
                    Some(m) => edge_values::edge_points(
                        w,
                        end - self.range,
                        end,
                        m == RangeModifier::Smoothed,
                    ),
                };
                (!points.is_empty()).then(|| Series {
                    labels: s.labels.clone(),
                    points,
                    drop_name: s.drop_name,
                })
            })
            .collect()
    }
}

/// The newest sample at or before `reference` within the lookback window, unless it is a
/// staleness marker.
pub fn lookback_sample(points: &[FPoint], reference: i64, lookback: i64) -> Option<FPoint> {
    let idx = points.partition_point(|p| p.t <= reference);
    let p = *points.get(idx.checked_sub(1)?)?;
    (p.t > reference - lookback && !is_stale_nan(p.f)).then_some(p)
}

impl<'a> Evaluator<'_, 'a> {
    /// An instant vector selector at every step. With `raw_timestamps` each value is the
    /// sample's own timestamp in seconds (what `timestamp(selector)` returns).
    pub fn vector_selector(&mut self, vs: &VectorSelector, raw_timestamps: bool) -> Result<Matrix> {
        let data = self.sh.series_of(vs as *const VectorSelector as usize);
        let offset = offset_ms(&vs.offset);
        let at = self.at(&vs.at);
        let lookback = self.sh.lookback;
        let smoothed = range_modifier::of(vs) == Some(RangeModifier::Smoothed);
        let mut out = Vec::new();
        for s in data {
            self.sh.check_deadline()?;
            let mut points = Vec::new();
            for step in 0..self.steps() {
                let ts = self.start + step as i64 * self.interval;
                let reference = at.unwrap_or(ts) - offset;
                if let Some(p) = lookback_sample(&s.points, reference, lookback) {
                    let f = if raw_timestamps {
                        p.t as f64 / 1000.0
                    } else if smoothed {
                        let next = s.points[s.points.partition_point(|q| q.t <= reference)..]
                            .first()
                            .copied()
                            .filter(|q| q.t <= reference + lookback && !is_stale_nan(q.f));
                        edge_values::smoothed_value(p, next, reference)
                    } else {
                        p.f
                    };
                    points.push(FPoint { t: ts, f });
                }
            }
            if !points.is_empty() {
                self.sh.charge(points.len())?;
                out.push(Series {
                    labels: s.labels.clone(),
                    points,
                    drop_name: false,
                });
            }
        }
        Ok(out)
    }

    /// A range selector's series, staleness markers removed.
    pub fn matrix_selector(&mut self, ms: &MatrixSelector) -> Result<RangeInput<'a>> {
        let vs = &ms.vs;
        let data = self.sh.series_of(vs as *const VectorSelector as usize);
        let mut series = Vec::with_capacity(data.len());
        let mut start_timestamps = Vec::with_capacity(data.len());
        for s in data {
            let (points, sts) = if s.points.iter().any(|p| is_stale_nan(p.f)) {
                let mut points = Vec::with_capacity(s.points.len());
                let mut sts = Vec::new();
                for (k, p) in s.points.iter().enumerate() {
                    if is_stale_nan(p.f) {
                        continue;
                    }
                    points.push(*p);
                    if let Some(st) = s.start_timestamps.get(k) {
                        sts.push(*st);
                    }
                }
                (Cow::Owned(points), Cow::Owned(sts))
            } else {
                (
                    Cow::Borrowed(s.points.as_slice()),
                    Cow::Borrowed(s.start_timestamps.as_slice()),
                )
            };
            if !points.is_empty() {
                series.push(RangeSeries {
                    labels: s.labels.clone(),
                    points,
                    drop_name: false,
                });
                start_timestamps.push(sts);
            }
        }
        Ok(RangeInput {
            series,
            range: duration_ms(&ms.range),
            offset: offset_ms(&vs.offset),
            at: self.at(&vs.at),
            modifier: range_modifier::of(vs),
            lookback: self.sh.lookback,
            start_timestamps,
        })
    }

    /// Evaluates a subquery's inner expression over its absolute step grid: steps are the
    /// multiples of the subquery step after `start - offset - range`, up to `end - offset`.
    pub fn subquery(&mut self, sq: &SubqueryExpr) -> Result<RangeInput<'static>> {
        let offset = offset_ms(&sq.offset);
        let range = duration_ms(&sq.range);
        let step = sq
            .step
            .as_ref()
            .map(duration_ms)
            .filter(|s| *s > 0)
            .unwrap_or(self.sh.default_subquery_step);
        let at = self.at(&sq.at);
        let (start, end) = match at {
            Some(t) => (t, t),
            None => (self.start, self.end),
        };
        let sub_end = end - offset;
        let first = start - offset - range;
        let mut sub_start = first.div_euclid(step) * step;
        if sub_start <= first {
            sub_start += step;
        }
        let series = if sub_start > sub_end {
            Vec::new()
        } else {
            self.sub(sub_start, sub_end, step).eval_vector(&sq.expr)?
        };
        Ok(RangeInput {
            series: series
                .into_iter()
                .map(|s| RangeSeries {
                    labels: s.labels,
                    points: Cow::Owned(s.points),
                    drop_name: s.drop_name,
                })
                .collect(),
            range,
            offset,
            at,
            modifier: None,
            lookback: self.sh.lookback,
            start_timestamps: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shards::value::stale_nan;

    fn pts(v: &[(i64, f64)]) -> Vec<FPoint> {
        v.iter().map(|&(t, f)| FPoint { t, f }).collect()
    }

    #[test]
    fn lookback_is_left_open_and_stops_at_stale_markers() {
        let p = pts(&[(0, 1.0), (60, 2.0), (120, stale_nan())]);
        assert_eq!(lookback_sample(&p, 60, 300).map(|p| p.f), Some(2.0));
        assert_eq!(lookback_sample(&p, 360, 300), None);
        assert_eq!(lookback_sample(&p, 359, 300).map(|p| p.f), None);
        assert_eq!(lookback_sample(&p, 100, 40), None);
        assert_eq!(lookback_sample(&p, 100, 41).map(|p| p.f), Some(2.0));
    }

    #[test]
    fn windows_are_left_open_right_closed() {
        let input = RangeInput {
            series: vec![],
            range: 60,
            offset: 0,
            at: None,
            modifier: None,
            lookback: 0,
            start_timestamps: Vec::new(),
        };
        let p = pts(&[(0, 1.0), (60, 2.0), (120, 3.0)]);
        assert_eq!(input.window(&p, 120), &p[2..]);
        assert_eq!(input.window(&p, 119), &p[1..2]);
    }
}
