//! Evaluation of a planned leaf (see `plan`) over one shard's series, and the router's merge of
//! the shards' answers. It is the engine's own evaluator run on a subset of the series, so a
//! leaf's answer is exactly the part of the router-only answer those series make.
//!
//! It owns the request a shard gets (everything evaluation needs, owned so it crosses threads)
//! and the merge; it never reads storage (the shard's service hands the series in) and never
//! waits.

use std::collections::HashMap;
use std::time::Instant;

use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};
use shards::labels::Labels;

use super::error::QueryError;
use super::eval::agg_state::{AggOp, AggState};
use super::eval::aggregate::GroupStates;
use super::eval::group_fold::GroupFold;
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
    /// For `Combine::Merge`, each series' partial states, point by point (each point's value
    /// is its state finished, the answer when this part is the only one).
    pub states: Vec<Vec<AggState>>,
    /// Samples held evaluating the leaf's sub-expressions, besides the answer: the evaluator
    /// charges per series and per step, so the shards' counts add up to what the router-only
    /// evaluation charges for them (see `PushedLeaf`).
    pub held_below: usize,
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
        let e = self.per_series_part();
        let (series, annotations, held) =
            self.run(data, HashMap::new(), held, |ev| ev.eval_vector(e))?;
        Ok((
            LeafResult {
                series,
                annotations,
                ..LeafResult::default()
            },
            held,
        ))
    }

    /// The leaf's answer from its per-series part's answer over all the shard's series: for an
    /// aggregation, the groups' partial states (with each group's first input series) or the
    /// shard's picks.
    pub fn finish(&self, part: LeafResult, held: usize) -> Result<LeafResult, QueryError> {
        let part_points: usize = part.series.iter().map(|s| s.points.len()).sum();
        let Expr::Aggregate(a) = &self.expr else {
            let mut part = part;
            part.held_below = held.saturating_sub(part_points);
            return Ok(part);
        };
        // Taking the part's answer charges it again: start from what was held below it.
        let held_below = held.saturating_sub(part_points);
        let pushed = |series: Matrix| {
            HashMap::from([(
                &*a.expr as *const Expr as usize,
                PushedLeaf {
                    start: self.start,
                    end: self.end,
                    interval: self.interval,
                    series,
                    held_below: 0,
                },
            )])
        };
        let Combine::Merge(op) = self.combine else {
            let (series, annotations, _) =
                self.run(&HashMap::new(), pushed(part.series), held_below, |ev| {
                    ev.eval_vector(&self.expr)
                })?;
            let mut out = LeafResult {
                series,
                annotations: part.annotations,
                held_below: held,
                ..LeafResult::default()
            };
            out.annotations.merge(annotations);
            return Ok(out);
        };
        let (without, grouping) = grouping_of(a);
        let (groups, annotations, _) =
            self.run(&HashMap::new(), pushed(part.series), held_below, |ev| {
                let input = ev.eval_vector(&a.expr)?;
                ev.aggregate_states(op, without, &grouping, &input)
            })?;
        let mut annotations_all = part.annotations;
        annotations_all.merge(annotations);
        Ok(partial_states(op, groups, annotations_all, held))
    }

    /// Where the answers of the per-series part go batch by batch (see `LeafParts`).
    pub fn parts(&self) -> LeafParts {
        let fold = match (&self.expr, self.combine) {
            (Expr::Aggregate(a), Combine::Merge(op)) => {
                let (without, grouping) = grouping_of(a);
                Some((op, GroupFold::new(op, without, &grouping, 1)))
            }
            _ => None,
        };
        LeafParts {
            fold,
            reselect: self.combine == Combine::Reselect,
            part: LeafResult::default(),
        }
    }

    /// The leaf's answer from all its batches' answers, `held` samples held in all: what
    /// `finish` gives for the batches' answers concatenated.
    pub fn finish_parts(&self, parts: LeafParts, held: usize) -> Result<LeafResult, QueryError> {
        let Some((op, fold)) = parts.fold else {
            return self.finish(parts.part, held);
        };
        let groups = fold.finish();
        let n: usize = groups.iter().map(|g| g.points.len()).sum();
        // Charged as `finish` charges the groups, over what the batches held.
        self.run(&HashMap::new(), HashMap::new(), held, |ev| {
            ev.sh.check_deadline()?;
            ev.sh.charge(n)
        })?;
        Ok(partial_states(op, groups, parts.part.annotations, held))
    }
}

/// Series kept for a selecting aggregation (`topk`, ...) before they are picked from.
const RESELECT_AT: usize = 2048;

/// A leaf's answers over batches of series in label order, as they come: a partial
/// aggregation's states are folded at once (the batch's series are dropped); a selecting
/// aggregation picks from what it holds whenever that grows past `RESELECT_AT` series and
/// keeps only the picks; anything else is kept whole for `finish`.
///
/// Picking early gives the same picks: what a subset of the series does not pick at a step is
/// not picked from the whole either (more series only add competitors for `topk`/`bottomk`,
/// and `limitk`/`limit_ratio` pick by input order or by each series alone), and the picks
/// taken again in label order before the next batch's series keep the input order that
/// breaks ties. Each pick is charged no more than picking once from everything charges.
pub struct LeafParts {
    fold: Option<(AggOp, GroupFold)>,
    reselect: bool,
    part: LeafResult,
}

impl LeafParts {
    /// The answer of the per-series part of `q` over the next batch.
    pub fn add(&mut self, q: &LeafQuery, part: LeafResult) -> Result<(), QueryError> {
        self.part.annotations.merge(part.annotations);
        match &mut self.fold {
            Some((_, fold)) => fold.add(&part.series),
            None => self.part.series.extend(part.series),
        }
        if self.reselect && self.part.series.len() > RESELECT_AT {
            let (mut picks, annotations) = q.reselect(std::mem::take(&mut self.part.series))?;
            picks.sort_by(|a, b| a.labels.cmp(&b.labels));
            self.part.series = picks;
            self.part.annotations.merge(annotations);
        }
        Ok(())
    }
}

/// A partial aggregation's answer: each group's states, with each state finished as the
/// group's value where this part is the only one.
fn partial_states(
    op: AggOp,
    groups: Vec<GroupStates>,
    annotations: Annotations,
    held: usize,
) -> LeafResult {
    let mut out = LeafResult {
        annotations,
        held_below: held,
        ..LeafResult::default()
    };
    for g in groups {
        out.order.push(g.first_input);
        out.states.push(g.points.iter().map(|p| p.1).collect());
        out.series.push(Series {
            points: g
                .points
                .iter()
                .map(|&(t, st)| FPoint {
                    t,
                    f: st.finish(op),
                })
                .collect(),
            labels: g.labels,
            drop_name: g.drop_name,
        });
    }
    out
}

impl LeafQuery {
    /// The leaf's aggregation over the shards' picks (in label order, the router-only input
    /// order): the router's half of `Combine::Reselect`.
    fn reselect(&self, picks: Matrix) -> Result<(Matrix, Annotations), QueryError> {
        let Expr::Aggregate(a) = &self.expr else {
            return Ok((picks, Annotations::default()));
        };
        let pushed = HashMap::from([(
            &*a.expr as *const Expr as usize,
            PushedLeaf {
                start: self.start,
                end: self.end,
                interval: self.interval,
                series: picks,
                held_below: 0,
            },
        )]);
        let (m, annotations, _) =
            self.run(&HashMap::new(), pushed, 0, |ev| ev.eval_vector(&self.expr))?;
        Ok((m, annotations))
    }

    /// Runs `f` with an evaluator over `data` and `pushed` on the leaf's grid; returns its
    /// value, the annotations and the samples held after.
    fn run<T>(
        &self,
        data: &HashMap<usize, Vec<RawSeries>>,
        pushed: HashMap<usize, PushedLeaf>,
        held: usize,
        f: impl FnOnce(&mut Evaluator<'_, '_>) -> Result<T, QueryError>,
    ) -> Result<(T, Annotations, usize), QueryError> {
        let mut shared = Shared {
            data,
            pushed,
            // A shard's series are one partition of every aggregation.
            shards: 1,
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
        let value = f(&mut Evaluator {
            sh: &mut shared,
            start: self.start,
            end: self.end,
            interval: self.interval,
        })?;
        Ok((value, shared.annotations, shared.current_samples))
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

/// `a`'s grouping: whether it is `without`, and the label names sorted.
fn grouping_of(a: &AggregateExpr) -> (bool, Vec<String>) {
    let (without, mut grouping) = match &a.modifier {
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
        None => (false, Vec::new()),
    };
    grouping.sort();
    (without, grouping)
}

/// The shards' answers to `query` (in shard order) as one. The first shard's error wins.
///
/// Per-series answers: a series lives on one shard and keeps its input's labels and order, so
/// ordering by labels gives the router-only order. Partial aggregations: a group's states are
/// merged point by point in shard order, and groups are ordered by their first input series
/// over all shards, which is where the router-only evaluation meets each group first. Picks:
/// ordered by labels and picked from again.
pub fn merge(
    parts: Vec<Result<LeafResult, QueryError>>,
    query: &LeafQuery,
) -> Result<LeafResult, QueryError> {
    let mut out = LeafResult::default();
    let op = match query.combine {
        Combine::Merge(op) => op,
        Combine::Concat | Combine::Reselect => {
            for p in parts {
                let p = p?;
                out.held_below += p.held_below;
                out.series.extend(p.series);
                out.annotations.merge(p.annotations);
            }
            out.series.sort_by(|a, b| a.labels.cmp(&b.labels));
            if query.combine == Combine::Reselect {
                let (series, annotations) = query.reselect(std::mem::take(&mut out.series))?;
                out.series = series;
                out.annotations.merge(annotations);
            }
            return Ok(out);
        }
    };
    let mut index: HashMap<Labels, usize> = HashMap::new();
    // Per group: its first input series, labels, drop flag and states.
    let mut groups: Vec<(Labels, Series, Vec<AggState>)> = Vec::new();
    for p in parts {
        let p = p?;
        out.held_below += p.held_below;
        out.annotations.merge(p.annotations);
        let mut states = p.states.into_iter();
        for (i, s) in p.series.into_iter().enumerate() {
            let key = p.order.get(i).cloned().unwrap_or_else(|| s.labels.clone());
            let st = states.next().unwrap_or_default();
            if st.len() != s.points.len() {
                return Err(QueryError::exec(
                    "internal: a shard's partial aggregation has no state for a point",
                ));
            }
            match index.get(&s.labels) {
                Some(&g) => {
                    let (first, have, have_states) = &mut groups[g];
                    if key < *first {
                        *first = key;
                    }
                    have.drop_name |= s.drop_name;
                    (have.points, *have_states) =
                        merge_states(op, &have.points, have_states, &s.points, &st);
                }
                None => {
                    index.insert(s.labels.clone(), groups.len());
                    groups.push((key, s, st));
                }
            }
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    for (first, mut s, states) in groups {
        for (p, st) in s.points.iter_mut().zip(&states) {
            p.f = st.finish(op);
        }
        out.order.push(first);
        out.states.push(states);
        out.series.push(s);
    }
    Ok(out)
}

/// Two parts of one group's answer, both ordered by time, as one: states at the same time are
/// merged, the earlier part's first.
fn merge_states(
    op: AggOp,
    a: &[FPoint],
    sa: &[AggState],
    b: &[FPoint],
    sb: &[AggState],
) -> (Vec<FPoint>, Vec<AggState>) {
    let mut points = Vec::with_capacity(a.len().max(b.len()));
    let mut states = Vec::with_capacity(points.capacity());
    let (mut i, mut j) = (0, 0);
    loop {
        let take_a = match (a.get(i), b.get(j)) {
            (Some(p), Some(q)) if p.t == q.t => {
                let mut st = sa[i];
                st.merge(op, &sb[j]);
                points.push(*p);
                states.push(st);
                i += 1;
                j += 1;
                continue;
            }
            (Some(p), Some(q)) => p.t < q.t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_a {
            points.push(a[i]);
            states.push(sa[i]);
            i += 1;
        } else {
            points.push(b[j]);
            states.push(sb[j]);
            j += 1;
        }
    }
    (points, states)
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

    fn query(q: &str, start: i64, end: i64, interval: i64) -> LeafQuery {
        let expr = crate::promql::engine::parse(q).unwrap();
        let leaf = crate::promql::plan::leaves(&expr)[0];
        LeafQuery {
            expr: leaf.expr.clone(),
            combine: leaf.combine,
            query: q.to_string(),
            start,
            end,
            interval,
            query_start: start,
            query_end: end,
            query_step: interval,
            lookback: 300_000,
            default_subquery_step: 60_000,
            max_samples: 1_000_000,
            deadline: None,
        }
    }

    /// A leaf evaluated over the series `[(labels, points)]` one shard holds.
    fn on_shard(q: &LeafQuery, held: &[Series]) -> LeafResult {
        let node = q.selections().unwrap()[0].node;
        q.evaluate_all(&HashMap::from([(node, raw(held))])).unwrap()
    }

    fn raw(held: &[Series]) -> Vec<RawSeries> {
        held.iter()
            .map(|s| RawSeries {
                labels: s.labels.clone(),
                points: s.points.clone(),
                start_timestamps: Vec::new(),
            })
            .collect()
    }

    fn count_state(n: f64) -> AggState {
        AggState {
            value: n,
            kahan_c: 0.0,
            mean: n,
            count: n,
            incremental_mean: false,
        }
    }

    #[test]
    fn partial_counts_add_up_and_groups_keep_the_router_only_order() {
        let q = query("count by (g) (x)", 0, 120, 60);
        // Group b's first input series ("x", i=1) comes before group a's ("x", i=2).
        let shard0 = LeafResult {
            series: vec![series(&[("g", "a")], &[(0, 2.0), (60, 1.0)])],
            order: vec![labels(&[("i", "2")])],
            states: vec![vec![count_state(2.0), count_state(1.0)]],
            ..LeafResult::default()
        };
        let shard1 = LeafResult {
            series: vec![
                series(&[("g", "a")], &[(60, 3.0), (120, 1.0)]),
                series(&[("g", "b")], &[(0, 1.0)]),
            ],
            order: vec![labels(&[("i", "3")]), labels(&[("i", "1")])],
            states: vec![
                vec![count_state(3.0), count_state(1.0)],
                vec![count_state(1.0)],
            ],
            ..LeafResult::default()
        };
        let m = merge(vec![Ok(shard0), Ok(shard1)], &q).unwrap();
        assert_eq!(m.series[0], series(&[("g", "b")], &[(0, 1.0)]));
        assert_eq!(
            m.series[1],
            series(&[("g", "a")], &[(0, 2.0), (60, 4.0), (120, 1.0)])
        );
    }

    #[test]
    fn shards_send_states_that_merge_into_the_sum() {
        let q = query("sum by (g) (x)", 0, 0, 1);
        assert_eq!(q.combine, Combine::Merge(AggOp::Sum));
        let a = on_shard(
            &q,
            &[
                series(&[("__name__", "x"), ("g", "a"), ("i", "1")], &[(0, 1.0)]),
                series(&[("__name__", "x"), ("g", "a"), ("i", "2")], &[(0, 1e100)]),
            ],
        );
        let b = on_shard(
            &q,
            &[
                series(&[("__name__", "x"), ("g", "a"), ("i", "3")], &[(0, 1.0)]),
                series(&[("__name__", "x"), ("g", "a"), ("i", "4")], &[(0, -1e100)]),
            ],
        );
        assert_eq!(a.states[0][0].value, 1e100);
        let m = merge(vec![Ok(a), Ok(b)], &q).unwrap();
        // The compensation travels with the state: plain partial sums would give 0.
        assert_eq!(m.series, vec![series(&[("g", "a")], &[(0, 2.0)])]);
    }

    #[test]
    fn the_router_picks_again_among_the_shards_picks() {
        let q = query("topk(2, x)", 0, 0, 1);
        assert_eq!(q.combine, Combine::Reselect);
        let a = on_shard(
            &q,
            &[
                series(&[("__name__", "x"), ("i", "1")], &[(0, 5.0)]),
                series(&[("__name__", "x"), ("i", "3")], &[(0, 7.0)]),
                series(&[("__name__", "x"), ("i", "5")], &[(0, 1.0)]),
            ],
        );
        let b = on_shard(
            &q,
            &[
                series(&[("__name__", "x"), ("i", "2")], &[(0, 7.0)]),
                series(&[("__name__", "x"), ("i", "4")], &[(0, 9.0)]),
            ],
        );
        assert_eq!(a.series.len(), 2);
        let m = merge(vec![Ok(a), Ok(b)], &q).unwrap();
        // 9, then of the two 7s the one first in label order.
        let got: Vec<(&str, f64)> = m
            .series
            .iter()
            .map(|s| (s.labels.get("i").unwrap(), s.points[0].f))
            .collect();
        assert_eq!(got, vec![("4", 9.0), ("2", 7.0)]);
    }

    /// The leaf over `held` in batches of the given sizes, as a shard's service feeds it.
    fn on_shard_in_batches(q: &LeafQuery, held: &[Series], sizes: &[usize]) -> LeafResult {
        let node = q.selections().unwrap()[0].node;
        let mut parts = q.parts();
        let mut total = 0;
        let mut rest = held;
        for &n in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (batch, after) = rest.split_at(n.clamp(1, rest.len()));
            rest = after;
            let (part, now) = q
                .evaluate(&HashMap::from([(node, raw(batch))]), total)
                .unwrap();
            total = now;
            parts.add(q, part).unwrap();
        }
        q.finish_parts(parts, total).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
        /// Picking early (whenever more than `RESELECT_AT` series are held) picks what picking
        /// once from every series picks, ties included: values come from a small set, so at
        /// every step a later series ties with earlier picks, and a pick of one step competes
        /// with the picks of the others in label order.
        #[test]
        fn early_picks_are_the_picks_of_all_series(
            values in proptest::collection::vec(0u8..4, (RESELECT_AT + 200) * 3..(RESELECT_AT * 2 + 500) * 3),
            sizes in proptest::collection::vec(1usize..1500, 1..6),
            which in 0usize..3,
        ) {
            let text = ["topk(3, x)", "bottomk(2, x)", "topk by (g) (2, x)"][which];
            let q = query(text, 0, 120, 60);
            let mut held: Vec<Series> = values
                .chunks_exact(3)
                .enumerate()
                .map(|(i, v)| {
                    let (i, g) = (format!("{i:05}"), format!("{}", i % 3));
                    let points: Vec<(i64, f64)> =
                        v.iter().enumerate().map(|(t, &f)| (t as i64 * 60, f64::from(f))).collect();
                    series(&[("__name__", "x"), ("g", g.as_str()), ("i", i.as_str())], &points)
                })
                .collect();
            held.sort_by(|a, b| a.labels.cmp(&b.labels));
            let want = on_shard(&q, &held);
            let got = on_shard_in_batches(&q, &held, &sizes);
            proptest::prop_assert_eq!(got.series, want.series);
        }
    }

    #[test]
    fn per_series_answers_are_ordered_by_labels_and_the_first_error_wins() {
        let q = query("abs(x)", 0, 0, 1);
        let a = LeafResult {
            series: vec![series(&[("i", "2")], &[(0, 1.0)])],
            ..LeafResult::default()
        };
        let b = LeafResult {
            series: vec![series(&[("i", "1")], &[(0, 1.0)])],
            ..LeafResult::default()
        };
        let m = merge(vec![Ok(a.clone()), Ok(b)], &q).unwrap();
        assert_eq!(m.series[0].labels, labels(&[("i", "1")]));
        let err = merge(
            vec![Ok(a), Err(QueryError::TooManySamples("query execution"))],
            &q,
        )
        .unwrap_err();
        assert_eq!(err, QueryError::TooManySamples("query execution"));
    }
}
