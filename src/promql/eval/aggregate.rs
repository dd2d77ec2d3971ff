//! Aggregation operators across series: `sum avg min max count group stddev stdvar quantile`
//! (one output series per group), `topk bottomk limitk limit_ratio` (a subset of the input
//! series with their own labels) and `count_values`.
//!
//! Groups are computed once per input series; each step then walks the series' points, as
//! Prometheus's `rangeEvalAgg` does, so no per-step vectors are built.

use std::collections::HashMap;

use promql_parser::label::METRIC_NAME;
use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMITK, T_LIMIT_RATIO, T_MAX, T_MIN,
    T_QUANTILE, T_STDDEV, T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};
use shards::labels::Labels;

use super::{unparen, Evaluated, Evaluator, Result};
use crate::promql::annotations;
use crate::promql::error::QueryError;
use crate::promql::functions::kahan::kahan_sum_inc;
use crate::promql::functions::quantile::quantile;
use crate::promql::labelset::{signature, LabelsBuilder};
use crate::promql::value::{FPoint, Matrix, Sample, Series};

/// The largest and smallest floats convertible to an int64 (Prometheus's bounds for `k`).
const MAX_INT64: f64 = 9_223_372_036_854_774_784.0;
const MIN_INT64: f64 = -9_223_372_036_854_775_808.0;

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

#[derive(Clone, Default)]
struct Group {
    seen: bool,
    value: f64,
    mean: f64,
    kahan_c: f64,
    count: f64,
    incremental_mean: bool,
    values: Vec<f64>,
    drop_name: bool,
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
            _ => self.aggregate_groups(a, op, without, &grouping, &input, param.as_deref())?,
        };
        Ok(Evaluated::Vector(out))
    }

    fn aggregate_groups(
        &mut self,
        a: &AggregateExpr,
        op: u16,
        without: bool,
        grouping: &[String],
        input: &Matrix,
        param: Option<&[f64]>,
    ) -> Result<Matrix> {
        let mut keys: HashMap<String, usize> = HashMap::new();
        let mut result: Matrix = Vec::new();
        let mut series_group = Vec::with_capacity(input.len());
        for s in input {
            let (key, labels) = group_of(&s.labels, without, grouping);
            let next = result.len();
            let gi = *keys.entry(key).or_insert(next);
            if gi == next {
                result.push(Series {
                    labels,
                    points: Vec::new(),
                    drop_name: false,
                });
            }
            series_group.push(gi);
        }
        if op == T_QUANTILE {
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
        }
        let mut groups = vec![Group::default(); result.len()];
        let mut cursors = vec![0usize; input.len()];
        for step in 0..self.steps() {
            let ts = self.start + step as i64 * self.interval;
            self.sh.check_deadline()?;
            groups.iter_mut().for_each(|g| g.seen = false);
            for (si, s) in input.iter().enumerate() {
                let Some(p) = s.points.get(cursors[si]) else {
                    continue;
                };
                if p.t != ts {
                    continue;
                }
                cursors[si] += 1;
                let f = p.f;
                let g = &mut groups[series_group[si]];
                if !g.seen {
                    *g = Group {
                        seen: true,
                        value: f,
                        mean: f,
                        count: 1.0,
                        drop_name: s.drop_name,
                        values: std::mem::take(&mut g.values),
                        ..Default::default()
                    };
                    g.values.clear();
                    match op {
                        T_STDVAR | T_STDDEV => {
                            g.value = if f.is_nan() || f.is_infinite() {
                                f64::NAN
                            } else {
                                0.0
                            }
                        }
                        T_QUANTILE => g.values.push(f),
                        T_GROUP => g.value = 1.0,
                        _ => {}
                    }
                    continue;
                }
                g.drop_name |= s.drop_name;
                match op {
                    T_SUM => (g.value, g.kahan_c) = kahan_sum_inc(f, g.value, g.kahan_c),
                    T_AVG => {
                        g.count += 1.0;
                        if !g.incremental_mean {
                            let (v, c) = kahan_sum_inc(f, g.value, g.kahan_c);
                            if !v.is_infinite() {
                                g.value = v;
                                g.kahan_c = c;
                                continue;
                            }
                            g.incremental_mean = true;
                            g.mean = g.value / (g.count - 1.0);
                            g.kahan_c /= g.count - 1.0;
                        }
                        if g.mean.is_infinite() {
                            if f.is_infinite() && (g.mean > 0.0) == (f > 0.0) {
                                continue;
                            }
                            if !f.is_infinite() && !f.is_nan() {
                                continue;
                            }
                        }
                        let current = g.mean + g.kahan_c;
                        (g.mean, g.kahan_c) =
                            kahan_sum_inc(f / g.count - current / g.count, g.mean, g.kahan_c);
                    }
                    T_GROUP => {}
                    T_MAX => {
                        if g.value < f || g.value.is_nan() {
                            g.value = f
                        }
                    }
                    T_MIN => {
                        if g.value > f || g.value.is_nan() {
                            g.value = f
                        }
                    }
                    T_COUNT => g.count += 1.0,
                    T_STDVAR | T_STDDEV => {
                        g.count += 1.0;
                        let delta = f - g.mean;
                        g.mean += delta / g.count;
                        g.value += delta * (f - g.mean);
                    }
                    T_QUANTILE => g.values.push(f),
                    _ => {
                        return Err(QueryError::BadData(format!(
                            "unsupported aggregation operator {}",
                            a.op
                        )))
                    }
                }
            }
            for (gi, g) in groups.iter_mut().enumerate() {
                if !g.seen {
                    continue;
                }
                let v = match op {
                    T_AVG => {
                        if g.incremental_mean {
                            g.mean + g.kahan_c
                        } else {
                            (g.value + g.kahan_c) / g.count
                        }
                    }
                    T_COUNT => g.count,
                    T_STDVAR => g.value / g.count,
                    T_STDDEV => (g.value / g.count).sqrt(),
                    T_QUANTILE => {
                        let q = param.map_or(f64::NAN, |p| p[step]);
                        quantile(q, &mut g.values)
                    }
                    T_SUM => g.value + g.kahan_c,
                    _ => g.value,
                };
                let out = &mut result[gi];
                out.points.push(FPoint { t: ts, f: v });
                out.drop_name |= g.drop_name;
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
        let mut keys: HashMap<String, usize> = HashMap::new();
        let mut series_group = Vec::with_capacity(input.len());
        for s in input {
            let (key, _) = group_of(&s.labels, without, grouping);
            let next = keys.len();
            series_group.push(*keys.entry(key).or_insert(next));
        }
        let ngroups = keys.len();
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
                    T_TOPK => {
                        // NaN counts as the smallest; ties keep input order.
                        m.sort_by(|a, b| cmp_desc_nan_last(a.1, b.1));
                        m.iter().take(k).copied().collect()
                    }
                    T_BOTTOMK => {
                        m.sort_by(|a, b| cmp_asc_nan_last(a.1, b.1));
                        m.iter().take(k).copied().collect()
                    }
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
