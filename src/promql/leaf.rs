//! Evaluation of a planned leaf (see `plan`) over one shard's series, and the router's merge of
//! the shards' answers. It is the engine's own evaluator run on a subset of the series, so a
//! leaf's answer is exactly the part of the router-only answer those series make.
//!
//! It owns the request a shard gets (everything evaluation needs, owned so it crosses threads)
//! and the merge; it never reads storage (the shard's service hands the series in) and never
//! waits.

use std::collections::HashMap;
use std::time::Instant;

use promql_parser::parser::{Expr, LabelModifier};
use shards::labels::Labels;

use super::error::QueryError;
use super::eval::aggregate::group_of;
use super::eval::{prefetch, Evaluator, PushedLeaf, Shared};
use super::plan::Combine;
use super::source::RawSeries;
use super::value::{Annotations, FPoint, Matrix, Series};

/// One leaf to evaluate on a shard, with the query's settings.
#[derive(Debug, Clone)]
pub struct LeafQuery {
    pub expr: Expr,
    /// How the router combines the shards' answers.
    pub combine: Combine,
    /// The whole query's text: annotations quote positions in it.
    pub query: String,
    /// The step grid the router evaluates the leaf's node on.
    pub start: i64,
    pub end: i64,
    pub interval: i64,
    /// The query's own range and step (`@ start()`, `@ end()`, `step()`).
    pub query_start: i64,
    pub query_end: i64,
    pub query_step: i64,
    pub lookback: i64,
    pub default_subquery_step: i64,
    pub max_samples: usize,
    pub deadline: Option<Instant>,
}

/// A leaf's series and the annotations evaluating it produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeafResult {
    pub series: Matrix,
    pub annotations: Annotations,
    /// For an aggregation's groups, each group's first input series (its place in the
    /// router-only order); empty for per-series answers, which are ordered by their labels.
    pub order: Vec<Labels>,
}

impl LeafQuery {
    /// The selections the leaf reads, keyed by node addresses inside `self.expr`.
    pub fn selections(&self) -> Result<Vec<prefetch::SelectRequest>, QueryError> {
        prefetch::collect(
            &self.expr,
            &prefetch::Plan {
                start: self.query_start,
                end: self.query_end,
                lookback: self.lookback,
            },
        )
    }

    /// The per-series part of the leaf: the aggregation's argument, or the whole leaf.
    pub fn per_series_part(&self) -> &Expr {
        match &self.expr {
            Expr::Aggregate(a) => &a.expr,
            e => e,
        }
    }

    /// Evaluates the per-series part over `data` (series per selection node): over any subset
    /// of the series, giving that subset's part of the answer. `held` samples are already held
    /// by earlier parts; the total held after is returned with the answer.
    pub fn evaluate(
        &self,
        data: &HashMap<usize, Vec<RawSeries>>,
        held: usize,
    ) -> Result<(LeafResult, usize), QueryError> {
        self.run(self.per_series_part(), data, HashMap::new(), held)
    }

    /// The leaf's answer from its per-series part's answer over all the shard's series: the
    /// partial aggregation when the leaf is one, with each group's first input series.
    pub fn finish(&self, part: LeafResult, held: usize) -> Result<LeafResult, QueryError> {
        let Expr::Aggregate(a) = &self.expr else {
            return Ok(part);
        };
        let (without, mut grouping) = match &a.modifier {
            Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
            None => (false, Vec::new()),
        };
        grouping.sort();
        let mut first: HashMap<Labels, Labels> = HashMap::new();
        for s in &part.series {
            let (_, group) = group_of(&s.labels, without, &grouping);
            first.entry(group).or_insert_with(|| s.labels.clone());
        }
        let pushed = HashMap::from([(
            &*a.expr as *const Expr as usize,
            PushedLeaf {
                start: self.start,
                end: self.end,
                interval: self.interval,
                series: part.series,
            },
        )]);
        let (mut out, _) = self.run(&self.expr, &HashMap::new(), pushed, held)?;
        out.order = out
            .series
            .iter()
            .map(|s| {
                first
                    .get(&s.labels)
                    .cloned()
                    .unwrap_or_else(|| s.labels.clone())
            })
            .collect();
        let mut annotations = part.annotations;
        annotations.merge(out.annotations);
        out.annotations = annotations;
        Ok(out)
    }

    fn run(
        &self,
        expr: &Expr,
        data: &HashMap<usize, Vec<RawSeries>>,
        pushed: HashMap<usize, PushedLeaf>,
        held: usize,
    ) -> Result<(LeafResult, usize), QueryError> {
        let mut shared = Shared {
            data,
            pushed,
            max_samples: self.max_samples,
            current_samples: held,
            deadline: self.deadline,
            annotations: Annotations::default(),
            query_start: self.query_start,
            query_end: self.query_end,
            query_step: self.query_step,
            lookback: self.lookback,
            default_subquery_step: self.default_subquery_step,
            query: &self.query,
        };
        let series = Evaluator {
            sh: &mut shared,
            start: self.start,
            end: self.end,
            interval: self.interval,
        }
        .eval_vector(expr)?;
        let held = shared.current_samples;
        Ok((
            LeafResult {
                series,
                annotations: shared.annotations,
                order: Vec::new(),
            },
            held,
        ))
    }

    /// Evaluates the leaf over every series of `data` at once: for sources that hold their
    /// series in memory.
    pub fn evaluate_all(
        &self,
        data: &HashMap<usize, Vec<RawSeries>>,
    ) -> Result<LeafResult, QueryError> {
        let (part, held) = self.evaluate(data, 0)?;
        self.finish(part, held)
    }
}

/// The shards' answers (in shard order) as one. The first shard's error wins.
///
/// Per-series answers: a series lives on one shard and keeps its input's labels and order, so
/// ordering by labels gives the router-only order. Partial aggregations: a group's parts are
/// combined point by point, and groups are ordered by their first input series over all
/// shards, which is where the router-only evaluation meets each group first.
pub fn merge(
    parts: Vec<Result<LeafResult, QueryError>>,
    combine: Combine,
) -> Result<LeafResult, QueryError> {
    let mut out = LeafResult::default();
    if combine == Combine::Concat {
        for p in parts {
            let p = p?;
            out.series.extend(p.series);
            out.annotations.merge(p.annotations);
        }
        out.series.sort_by(|a, b| a.labels.cmp(&b.labels));
        return Ok(out);
    }
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Series)> = Vec::new();
    for p in parts {
        let p = p?;
        out.annotations.merge(p.annotations);
        for (i, s) in p.series.into_iter().enumerate() {
            let key = p.order.get(i).cloned().unwrap_or_else(|| s.labels.clone());
            match index.get(&s.labels) {
                Some(&g) => {
                    let (first, have) = &mut groups[g];
                    if key < *first {
                        *first = key;
                    }
                    have.points = combine_points(&have.points, &s.points, combine);
                }
                None => {
                    index.insert(s.labels.clone(), groups.len());
                    groups.push((key, s));
                }
            }
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    out.order = groups.iter().map(|(k, _)| k.clone()).collect();
    out.series = groups.into_iter().map(|(_, s)| s).collect();
    Ok(out)
}

/// Two parts of one group's answer, both ordered by time, as one.
fn combine_points(a: &[FPoint], b: &[FPoint], combine: Combine) -> Vec<FPoint> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(p), Some(q)) if p.t == q.t => {
                let f = match combine {
                    Combine::SumCounts => p.f + q.f,
                    Combine::Group | Combine::Concat => p.f,
                };
                out.push(FPoint { t: p.t, f });
                i += 1;
                j += 1;
            }
            (Some(p), Some(q)) if p.t < q.t => {
                out.push(*p);
                i += 1;
            }
            (Some(p), None) => {
                out.push(*p);
                i += 1;
            }
            (_, Some(q)) => {
                out.push(*q);
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(pairs: &[(&str, &str)], points: &[(i64, f64)]) -> Series {
        Series {
            labels: Labels::from_pairs(pairs.iter().copied()).unwrap(),
            points: points.iter().map(|&(t, f)| FPoint { t, f }).collect(),
            drop_name: false,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn partial_counts_add_up_and_groups_keep_the_router_only_order() {
        // Group b's first input series ("x", i=1) comes before group a's ("x", i=2).
        let shard0 = LeafResult {
            series: vec![series(&[("g", "a")], &[(0, 2.0), (60, 1.0)])],
            order: vec![labels(&[("i", "2")])],
            ..LeafResult::default()
        };
        let shard1 = LeafResult {
            series: vec![
                series(&[("g", "a")], &[(60, 3.0), (120, 1.0)]),
                series(&[("g", "b")], &[(0, 1.0)]),
            ],
            order: vec![labels(&[("i", "3")]), labels(&[("i", "1")])],
            ..LeafResult::default()
        };
        let m = merge(vec![Ok(shard0), Ok(shard1)], Combine::SumCounts).unwrap();
        assert_eq!(m.series[0], series(&[("g", "b")], &[(0, 1.0)]));
        assert_eq!(
            m.series[1],
            series(&[("g", "a")], &[(0, 2.0), (60, 4.0), (120, 1.0)])
        );
    }

    #[test]
    fn per_series_answers_are_ordered_by_labels_and_the_first_error_wins() {
        let a = LeafResult {
            series: vec![series(&[("i", "2")], &[(0, 1.0)])],
            ..LeafResult::default()
        };
        let b = LeafResult {
            series: vec![series(&[("i", "1")], &[(0, 1.0)])],
            ..LeafResult::default()
        };
        let m = merge(vec![Ok(a.clone()), Ok(b)], Combine::Concat).unwrap();
        assert_eq!(m.series[0].labels, labels(&[("i", "1")]));
        let err = merge(
            vec![Ok(a), Err(QueryError::TooManySamples("query execution"))],
            Combine::Concat,
        )
        .unwrap_err();
        assert_eq!(err, QueryError::TooManySamples("query execution"));
    }
}
