//! Aggregation operators across series: `sum avg min max count group stddev stdvar quantile`
//! (one output series per group), `topk bottomk limitk limit_ratio` (a subset of the input
//! series with their own labels) and `count_values`.
//!
//! Groups are computed once per input series; each step then walks the series' points, as
//! Prometheus's `rangeEvalAgg` does, so no per-step vectors are built.

use std::collections::HashMap;

use promql_parser::label::METRIC_NAME;
use promql_parser::parser::token::{
    T_BOTTOMK, T_COUNT_VALUES, T_LIMITK, T_LIMIT_RATIO, T_QUANTILE, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};
use shards::labels::Labels;

use super::agg_state::{AggOp, AggState};
use super::group_fold::{GroupFold, GroupKeys};
use super::{unparen, Evaluated, Evaluator, Result};
use crate::promql::annotations;
use crate::promql::error::QueryError;
use crate::promql::functions::quantile::quantile;
use crate::promql::labelset::{signature, LabelsBuilder};
use crate::promql::value::{FPoint, Matrix, Sample, Series};

/// The largest and smallest floats convertible to an int64 (Prometheus's bounds for `k`).
const MAX_INT64: f64 = 9_223_372_036_854_774_784.0;
const MIN_INT64: f64 = -9_223_372_036_854_775_808.0;

/// Input series folded between two deadline checks.
const FOLD_PART: usize = 4096;

/// Labels and key of the group a series falls in.
pub(crate) fn group_of(labels: &Labels, without: bool, grouping: &[String]) -> (String, Labels) {
    if without {
        let mut names = grouping.to_vec();
        names.push(METRIC_NAME.to_string());
        let key = signature(labels, false, &names);
        let mut b = LabelsBuilder::new(labels);
        for n in &names {
            b.del(n);
        }
        (key, b.build())
    } else if grouping.is_empty() {
        (String::new(), Labels::empty())
    } else {
        let key = signature(labels, true, grouping);
        let mut b = LabelsBuilder::new(labels);
        b.keep(grouping);
        (key, b.build())
    }
}

/// The groups of an aggregation's input: each series' group, numbered in the order of their
/// first series, and that first series of each group (whose labels give the group's).
pub(crate) struct Groups {
    pub of_series: Vec<usize>,
    pub first_series: Vec<usize>,
}

impl Groups {
    pub(crate) fn of(input: &Matrix, without: bool, grouping: &[String]) -> Groups {
        let mut keys = GroupKeys::new(without, grouping);
        let mut of_series = Vec::with_capacity(input.len());
        let mut first_series = Vec::new();
        for (si, s) in input.iter().enumerate() {
            let (gi, new) = keys.group(&s.labels);
            if new {
                first_series.push(si);
            }
            of_series.push(gi);
        }
        Groups {
            of_series,
            first_series,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.first_series.len()
    }
}

/// One group of an aggregation with mergeable state: its labels and, per step it has samples
/// at, the state merged over the shards' partitions.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStates {
    pub labels: Labels,
    /// The group's first input series (where the router-only evaluation meets it first).
    pub first_input: Labels,
    pub drop_name: bool,
    pub points: Vec<(i64, AggState)>,
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, never an exponent.
pub fn format_float_f(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        // Rust's Display prints the shortest round-trip digits without an exponent.
        format!("{f}")
    }
}

impl Evaluator<'_, '_> {
    pub fn aggregate(&mut self, a: &AggregateExpr) -> Result<Evaluated> {
        let op = a.op.id();
        let (without, mut grouping) = match &a.modifier {
            Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
            None => (false, Vec::new()),
        };
        grouping.sort();
        if op == T_COUNT_VALUES {
            return self.count_values(a, without, grouping);
        }
        let param = match &a.param {
            Some(p) => Some(self.eval_scalar(p)?),
            None => None,
        };
        let input = self.eval_vector(&a.expr)?;
        let out = match op {
            T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO => {
                self.aggregate_k(a, op, without, &grouping, &input, param.as_deref())?
            }
            T_QUANTILE => {
                self.aggregate_quantile(a, without, &grouping, &input, param.as_deref())?
            }
            _ => {
                let Some(agg) = AggOp::of_token(op) else {
                    return Err(QueryError::BadData(format!(
                        "unsupported aggregation operator {}",
                        a.op
                    )));
                };
                let groups = self.aggregate_states(agg, without, &grouping, &input)?;
                groups
                    .into_iter()
                    .map(|g| Series {
                        labels: g.labels,
                        points: g
                            .points
                            .iter()
                            .map(|&(t, st)| FPoint {
                                t,
                                f: st.finish(agg),
                            })
                            .collect(),
                        drop_name: g.drop_name,
                    })
                    .collect()
            }
        };
        Ok(Evaluated::Vector(out))
    }

    /// The merged state of every group at every step: the input is partitioned by the shard
    /// each series lives on (its label hash), each partition folded in input order, and the
    /// partitions merged in shard order, which is what the router does with the states the
    /// shards send when the aggregation is pushed down (see `agg_state`, `group_fold`).
    /// Groups come in the order of their first input series; the output's samples are
    /// charged.
    pub fn aggregate_states(
        &mut self,
        op: AggOp,
        without: bool,
        grouping: &[String],
        input: &Matrix,
    ) -> Result<Vec<GroupStates>> {
        let mut fold = GroupFold::new(op, without, grouping, self.sh.shards);
        for part in input.chunks(FOLD_PART) {
            self.sh.check_deadline()?;
            fold.add(part);
        }
        let result = fold.finish();
        let n: usize = result.iter().map(|g| g.points.len()).sum();
        self.sh.charge(n)?;
        Ok(result)
    }

    fn aggregate_quantile(
        &mut self,
        a: &AggregateExpr,
        without: bool,
        grouping: &[String],
        input: &Matrix,
        param: Option<&[f64]>,
    ) -> Result<Matrix> {
        let groups = Groups::of(input, without, grouping);
        let mut result: Matrix = groups
            .first_series
            .iter()
            .map(|&si| Series {
                labels: group_of(&input[si].labels, without, grouping).1,
                points: Vec::new(),
                drop_name: false,
            })
            .collect();
        let series_group = groups.of_series;
        if let Some(q) = param {
            for &q in q {
                if q.is_nan() || !(0.0..=1.0).contains(&q) {
                    let pos = self.position_of(a.param.as_deref());
                    self.sh
                        .annotations
                        .warn(annotations::invalid_quantile(q, pos));
                    break;
                }
            }
        }
        // Per group: the step's values, and whether a series with a delayed name removal
        // contributed.
        let mut groups: Vec<(Vec<f64>, bool)> = vec![(Vec::new(), false); result.len()];
        let mut cursors = vec![0usize; input.len()];
        for step in 0..self.steps() {
            let ts = self.start + step as i64 * self.interval;
            self.sh.check_deadline()?;
            groups.iter_mut().for_each(|g| g.0.clear());
            for (si, s) in input.iter().enumerate() {
                let Some(p) = s.points.get(cursors[si]) else {
                    continue;
                };
                if p.t != ts {
                    continue;
                }
                cursors[si] += 1;
                let g = &mut groups[series_group[si]];
                g.0.push(p.f);
                g.1 |= s.drop_name;
            }
            for (gi, g) in groups.iter_mut().enumerate() {
                if g.0.is_empty() {
                    continue;
                }
                let q = param.map_or(f64::NAN, |p| p[step]);
                let out = &mut result[gi];
                out.points.push(FPoint {
                    t: ts,
                    f: quantile(q, &mut g.0),
                });
                out.drop_name |= g.1;
            }
        }
        result.retain(|s| !s.points.is_empty());
        let n: usize = result.iter().map(|s| s.points.len()).sum();
        self.sh.charge(n)?;
        Ok(result)
    }

    fn aggregate_k(
        &mut self,
        a: &AggregateExpr,
        op: u16,
        without: bool,
        grouping: &[String],
        input: &Matrix,
        param: Option<&[f64]>,
    ) -> Result<Matrix> {
        let groups = Groups::of(input, without, grouping);
        let ngroups = groups.len();
        let series_group = groups.of_series;
        let mut cursors = vec![0usize; input.len()];
        let mut out: Matrix = Vec::new();
        let mut index: HashMap<usize, usize> = HashMap::new();
        let mut members: Vec<Vec<(usize, f64)>> = vec![Vec::new(); ngroups];
        let mut warned = false;
        for step in 0..self.steps() {
            let ts = self.start + step as i64 * self.interval;
            self.sh.check_deadline()?;
            let p = param.map_or(f64::NAN, |p| p[step]);
            let mut k = 0usize;
            let mut ratio = 0.0;
            match op {
                T_LIMIT_RATIO => {
                    if p.is_nan() {
                        return Err(QueryError::exec("Ratio value is NaN"));
                    }
                    ratio = p;
                    if !(-1.0..=1.0).contains(&p) {
                        ratio = p.clamp(-1.0, 1.0);
                        if !warned {
                            warned = true;
                            let pos = self.position_of(a.param.as_deref());
                            self.sh
                                .annotations
                                .warn(annotations::invalid_ratio(p, ratio, pos));
                        }
                    }
                }
                _ => {
                    if p.is_nan() {
                        return Err(QueryError::exec("Parameter value is NaN"));
                    }
                    if !(MIN_INT64..=MAX_INT64).contains(&p) {
                        return Err(QueryError::exec(format!(
                            "Scalar value {} overflows int64",
                            crate::promql::annotations::go_float(p)
                        )));
                    }
                    let ki = p as i64;
                    k = ki.clamp(0, input.len() as i64) as usize;
                }
            }
            members.iter_mut().for_each(|m| m.clear());
            for (si, s) in input.iter().enumerate() {
                let Some(pt) = s.points.get(cursors[si]) else {
                    continue;
                };
                if pt.t != ts {
                    continue;
                }
                cursors[si] += 1;
                members[series_group[si]].push((si, pt.f));
            }
            if op != T_LIMIT_RATIO && k < 1 {
                continue;
            }
            if op == T_LIMIT_RATIO && ratio == 0.0 {
                continue;
            }
            for m in &mut members {
                let chosen: Vec<(usize, f64)> = match op {
                    // NaN counts as the smallest; ties keep input order.
                    T_TOPK => first_k(m, k, cmp_desc_nan_last),
                    T_BOTTOMK => first_k(m, k, cmp_asc_nan_last),
                    T_LIMITK => m.iter().take(k).copied().collect(),
                    _ => m
                        .iter()
                        .filter(|(si, _)| ratio_selects(ratio, &input[*si].labels))
                        .copied()
                        .collect(),
                };
                for (si, f) in chosen {
                    let s = &input[si];
                    if self.is_instant() {
                        out.push(Series {
                            labels: s.labels.clone(),
                            points: vec![FPoint { t: ts, f }],
                            drop_name: s.drop_name,
                        });
                    } else {
                        let next = out.len();
                        let i = *index.entry(si).or_insert(next);
                        if i == next {
                            out.push(Series {
                                labels: s.labels.clone(),
                                points: Vec::new(),
                                drop_name: s.drop_name,
                            });
                        }
                        out[i].points.push(FPoint { t: ts, f });
                    }
                }
            }
        }
        let n: usize = out.iter().map(|s| s.points.len()).sum();
        self.sh.charge(n)?;
        Ok(out)
    }

    fn count_values(
        &mut self,
        a: &AggregateExpr,
        without: bool,
        mut grouping: Vec<String>,
    ) -> Result<Evaluated> {
        let label = match a.param.as_deref().map(unparen) {
            Some(Expr::StringLiteral(s)) => s.val.clone(),
            _ => {
                return Err(QueryError::BadData(
                    "count_values needs a string parameter".into(),
                ))
            }
        };
        if label.is_empty() {
            let mut q = String::new();
            let _ = shards::index::matcher::write_go_quoted(&mut q, &label);
            return Err(QueryError::exec(format!("invalid label name {q}")));
        }
        if !without {
            grouping.push(label.clone());
            grouping.sort();
        }
        let input = self.eval_vector(&a.expr)?;
        let out = self.range_eval(&[&input], |_, _, ts, v| {
            let mut counts: HashMap<String, (Labels, usize)> = HashMap::new();
            let mut order = Vec::new();
            for e in &v[0] {
                let mut b = LabelsBuilder::new(&input[e.series].labels);
                b.set(&label, &format_float_f(e.f));
                let metric = b.build();
                let (key, labels) = group_of(&metric, without, &grouping);
                match counts.get_mut(&key) {
                    Some(c) => c.1 += 1,
                    None => {
                        order.push(key.clone());
                        counts.insert(key, (labels, 1));
                    }
                }
            }
            Ok(order
                .into_iter()
                .filter_map(|k| counts.remove(&k))
                .map(|(labels, n)| Sample {
                    labels,
                    t: ts,
                    f: n as f64,
                    drop_name: false,
                })
                .collect())
        })?;
        Ok(Evaluated::Vector(out))
    }
}

/// The first `k` of `members` (series index, value; in input order) as a stable sort by
/// `cmp` would order them. Only those are sorted: the rest is partitioned off in linear time,
/// which for `topk(10, ...)` over many series is most of the work. Ties are broken by the
/// series index, which is the input order, so the answer is the stable sort's.
fn first_k(
    members: &mut [(usize, f64)],
    k: usize,
    cmp: fn(f64, f64) -> std::cmp::Ordering,
) -> Vec<(usize, f64)> {
    let by = |a: &(usize, f64), b: &(usize, f64)| cmp(a.1, b.1).then(a.0.cmp(&b.0));
    let k = k.min(members.len());
    if k == 0 {
        return Vec::new();
    }
    if k < members.len() {
        members.select_nth_unstable_by(k - 1, by);
    }
    let chosen = &mut members[..k];
    chosen.sort_unstable_by(by);
    chosen.to_vec()
}

fn cmp_desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

fn cmp_asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Prometheus's hash-based sampling: a series is in if its label hash, scaled to [0, 1], is
/// below the ratio (or, for a negative ratio, at or above 1 + ratio).
fn ratio_selects(ratio: f64, labels: &Labels) -> bool {
    let offset = labels.hash() as f64 / u64::MAX as f64;
    (ratio >= 0.0 && offset < ratio) || (ratio < 0.0 && offset >= 1.0 + ratio)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `first_k` picks what a stable sort's first k are, NaNs and ties included.
        #[test]
        fn first_k_is_the_stable_sorts_prefix(
            values in proptest::collection::vec(
                prop_oneof![Just(f64::NAN), Just(1.0), Just(-0.0), Just(0.0), -3.0..3.0f64],
                0..40,
            ),
            k in 0usize..45,
            desc in any::<bool>(),
        ) {
            let cmp = if desc { cmp_desc_nan_last } else { cmp_asc_nan_last };
            let mut members: Vec<(usize, f64)> = values.iter().copied().enumerate().collect();
            let mut sorted = members.clone();
            sorted.sort_by(|a, b| cmp(a.1, b.1));
            let want: Vec<usize> = sorted.iter().take(k).map(|m| m.0).collect();
            let got: Vec<usize> = first_k(&mut members, k, cmp).iter().map(|m| m.0).collect();
            prop_assert_eq!(got, want);
        }
    }
}
