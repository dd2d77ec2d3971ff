//! Binary operators: arithmetic, comparisons (filtering or `bool`), `atan2`, the set operators
//! `and`/`or`/`unless`, and vector matching with `on`/`ignoring`, `group_left`/`group_right`
//! and the experimental `fill`/`fill_left`/`fill_right` modifiers.

use std::collections::HashMap;

use promql_parser::label::METRIC_NAME;
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB,
};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};
use shards::labels::Labels;

use super::{Evaluated, Evaluator, Result, StepSample};
use crate::promql::error::QueryError;
use crate::promql::labelset::{
    labels_string, match_labels, signature, LabelsBuilder, RESERVED_WITH_NAME,
};
use crate::promql::value::{Sample, Vector};

pub fn is_comparison(op: u16) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Arithmetic drops the metric name; comparisons keep it.
pub fn drops_name(op: u16) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_POW | T_MOD | T_ATAN2)
}

pub fn scalar_binop(op: u16, l: f64, r: f64) -> f64 {
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    match op {
        T_ADD => l + r,
        T_SUB => l - r,
        T_MUL => l * r,
        T_DIV => l / r,
        T_POW => l.powf(r),
        T_MOD => l % r,
        T_EQLC => b(l == r),
        T_NEQ => b(l != r),
        T_GTR => b(l > r),
        T_LSS => b(l < r),
        T_GTE => b(l >= r),
        T_LTE => b(l <= r),
        T_ATAN2 => l.atan2(r),
        _ => f64::NAN,
    }
}

/// The value of `l op r` between vector elements and whether the element is kept.
pub fn elem_binop(op: u16, l: f64, r: f64) -> (f64, bool) {
    match op {
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => (scalar_binop(op, l, r), true),
    }
}

/// `on` and its labels, from the matching modifier (`ignoring()` when absent).
fn matching(m: &BinModifier) -> (bool, Vec<String>) {
    match &m.matching {
        Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
        None => (false, Vec::new()),
    }
}

impl Evaluator<'_, '_> {
    pub fn binary(&mut self, b: &BinaryExpr) -> Result<Evaluated> {
        let op = b.op.id();
        let modifier = b.modifier.clone().unwrap_or_default();
        let return_bool = modifier.return_bool;
        let (lt, rt) = (b.lhs.value_type(), b.rhs.value_type());
        match (lt, rt) {
            (ValueType::Scalar, ValueType::Scalar) => {
                let l = self.eval_scalar(&b.lhs)?;
                let r = self.eval_scalar(&b.rhs)?;
                Ok(Evaluated::Scalar(
                    l.iter()
                        .zip(&r)
                        .map(|(&l, &r)| scalar_binop(op, l, r))
                        .collect(),
                ))
            }
            (ValueType::Vector, ValueType::Scalar) | (ValueType::Scalar, ValueType::Vector) => {
                let swap = lt == ValueType::Scalar;
                let (vexpr, sexpr) = if swap {
                    (&b.rhs, &b.lhs)
                } else {
                    (&b.lhs, &b.rhs)
                };
                // Prometheus evaluates the left operand first.
                let (m, s) = if swap {
                    let s = self.eval_scalar(sexpr)?;
                    (self.eval_vector(vexpr)?, s)
                } else {
                    let m = self.eval_vector(vexpr)?;
                    (m, self.eval_scalar(sexpr)?)
                };
                let out = self.range_eval(&[&m], |_, step, ts, v| {
                    let sv = s[step];
                    let mut out = Vec::with_capacity(v[0].len());
                    for e in &v[0] {
                        let (lf, rf) = if swap { (sv, e.f) } else { (e.f, sv) };
                        let (mut val, mut keep) = elem_binop(op, lf, rf);
                        if is_comparison(op) && swap {
                            val = rf;
                        }
                        if return_bool {
                            val = if keep { 1.0 } else { 0.0 };
                            keep = true;
                        }
                        if keep {
                            let series = &m[e.series];
                            out.push(Sample {
                                labels: series.labels.clone(),
                                t: ts,
                                f: val,
                                drop_name: series.drop_name || drops_name(op) || return_bool,
                            });
                        }
                    }
                    Ok(out)
                })?;
                Ok(Evaluated::Vector(out))
            }
            (ValueType::Vector, ValueType::Vector) => {
                let l = self.eval_vector(&b.lhs)?;
                let r = self.eval_vector(&b.rhs)?;
                let (on, names) = matching(&modifier);
                let mut sig_names = names.clone();
                if !on {
                    sig_names.push(METRIC_NAME.to_string());
                }
                let lsig: Vec<String> = l
                    .iter()
                    .map(|s| signature(&s.labels, on, &sig_names))
                    .collect();
                let rsig: Vec<String> = r
                    .iter()
                    .map(|s| signature(&s.labels, on, &sig_names))
                    .collect();
                let out = match op {
                    T_LAND | T_LOR | T_LUNLESS => self.range_eval(&[&l, &r], |_, _, ts, v| {
                        Ok(set_op(op, &v[0], &v[1], &lsig, &rsig, ts, &l, &r))
                    })?,
                    _ => {
                        let mut job = VectorBinop {
                            op,
                            modifier: &modifier,
                            on,
                            names: &names,
                            result_cache: HashMap::new(),
                        };
                        self.range_eval(&[&l, &r], |_, _, ts, v| {
                            job.step(&l, &r, &v[0], &v[1], &lsig, &rsig, ts)
                        })?
                    }
                };
                Ok(Evaluated::Vector(out))
            }
            _ => Err(QueryError::BadData(format!(
                "binary expression must contain only scalar and instant vector types, got {lt} and {rt}"
            ))),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn set_op(
    op: u16,
    lhs: &[StepSample],
    rhs: &[StepSample],
    lsig: &[String],
    rsig: &[String],
    ts: i64,
    l: &crate::promql::value::Matrix,
    r: &crate::promql::value::Matrix,
) -> Vector {
    let sample = |m: &crate::promql::value::Matrix, e: &StepSample| Sample {
        labels: m[e.series].labels.clone(),
        t: ts,
        f: e.f,
        drop_name: m[e.series].drop_name,
    };
    match op {
        T_LAND => {
            if lhs.is_empty() || rhs.is_empty() {
                return Vec::new();
            }
            let right: std::collections::HashSet<&str> =
                rhs.iter().map(|e| rsig[e.series].as_str()).collect();
            lhs.iter()
                .filter(|e| right.contains(lsig[e.series].as_str()))
                .map(|e| sample(l, e))
                .collect()
        }
        T_LOR => {
            let left: std::collections::HashSet<&str> =
                lhs.iter().map(|e| lsig[e.series].as_str()).collect();
            let mut out: Vector = lhs.iter().map(|e| sample(l, e)).collect();
            out.extend(
                rhs.iter()
                    .filter(|e| !left.contains(rsig[e.series].as_str()))
                    .map(|e| sample(r, e)),
            );
            out
        }
        _ => {
            let right: std::collections::HashSet<&str> =
                rhs.iter().map(|e| rsig[e.series].as_str()).collect();
            lhs.iter()
                .filter(|e| !right.contains(lsig[e.series].as_str()))
                .map(|e| sample(l, e))
                .collect()
        }
    }
}

/// One vector-vector arithmetic or comparison, evaluated step by step; result label sets are
/// cached per pair of input series across steps.
struct VectorBinop<'m> {
    op: u16,
    modifier: &'m BinModifier,
    on: bool,
    names: &'m [String],
    result_cache: HashMap<(usize, usize), Labels>,
}

/// The "one" side of a pair: a real element, or a fill value standing in for a missing one.
#[derive(Clone, Copy)]
enum Side {
    Real(usize, f64),
    Fill(f64),
}

impl VectorBinop<'_> {
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        l: &crate::promql::value::Matrix,
        r: &crate::promql::value::Matrix,
        lhs: &[StepSample],
        rhs: &[StepSample],
        lsig: &[String],
        rsig: &[String],
        ts: i64,
    ) -> Result<Vector> {
        let card = &self.modifier.card;
        let fill = &self.modifier.fill_values;
        let return_bool = self.modifier.return_bool;
        let op = self.op;
        if (lhs.is_empty() && fill.lhs.is_none()) || (rhs.is_empty() && fill.rhs.is_none()) {
            return Ok(Vec::new());
        }
        if lhs.is_empty() && rhs.is_empty() {
            return Ok(Vec::new());
        }
        // "many" is the side whose labels the result keeps; "one" must be unique per group.
        let one_to_many = matches!(card, VectorMatchCardinality::OneToMany(_));
        let (many, one, msig, osig, mm, om) = if one_to_many {
            (rhs, lhs, rsig, lsig, r, l)
        } else {
            (lhs, rhs, lsig, rsig, l, r)
        };
        // Fill values, after the swap of sides that group_right implies (as Prometheus).
        let (fill_many, fill_one) = (fill.lhs, fill.rhs);
        let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);

        let mut one_sigs: HashMap<&str, &StepSample> = HashMap::with_capacity(one.len());
        for e in one {
            let sig = osig[e.series].as_str();
            if let Some(dup) = one_sigs.get(sig) {
                let side = if one_to_many { "left" } else { "right" };
                let mut ml = self.names.to_vec();
                if !self.on {
                    ml.push(METRIC_NAME.to_string());
                }
                let matched = match_labels(&om[e.series].labels, self.on, &ml);
                return Err(QueryError::exec(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    labels_string(&matched),
                    side,
                    labels_string(&om[dup.series].labels),
                    labels_string(&om[e.series].labels),
                )));
            }
            one_sigs.insert(sig, e);
        }

        let mut out = Vec::new();
        let mut matched: HashMap<String, Option<std::collections::HashSet<Labels>>> =
            HashMap::new();
        let ctx = EmitCtx {
            ts,
            mm,
            om,
            one_to_many,
            one_to_one,
        };
        let mut one_used: std::collections::HashSet<&str> = Default::default();
        for e in many {
            let sig = msig[e.series].as_str();
            match one_sigs.get(sig) {
                Some(o) => {
                    one_used.insert(sig);
                    self.emit(
                        &ctx,
                        Side::Real(e.series, e.f),
                        Side::Real(o.series, o.f),
                        sig,
                        &mut out,
                        &mut matched,
                    )?;
                }
                None => {
                    if let Some(fv) = fill_one {
                        self.emit(
                            &ctx,
                            Side::Real(e.series, e.f),
                            Side::Fill(fv),
                            sig,
                            &mut out,
                            &mut matched,
                        )?;
                    }
                }
            }
        }
        if let Some(fv) = fill_many {
            for e in one {
                let sig = osig[e.series].as_str();
                if one_used.contains(sig) {
                    continue;
                }
                // A filled "many" element carries the match group's labels.
                let (mf, of) = (fv, e.f);
                let (fl, fr) = if one_to_many { (of, mf) } else { (mf, of) };
                let (mut val, keep) = elem_binop(op, fl, fr);
                if return_bool {
                    val = if keep { 1.0 } else { 0.0 };
                } else if !keep {
                    continue;
                }
                let mut ml = self.names.to_vec();
                if !self.on {
                    ml.push(METRIC_NAME.to_string());
                }
                let labels = match_labels(&om[e.series].labels, self.on, &ml);
                out.push(Sample {
                    labels,
                    t: ts,
                    f: val,
                    drop_name: return_bool,
                });
            }
        }
        Ok(out)
    }

    /// Computes one matched pair and appends it, checking the matching's uniqueness rules.
    fn emit(
        &mut self,
        ctx: &EmitCtx<'_>,
        many_side: Side,
        one_side: Side,
        sig: &str,
        out: &mut Vector,
        matched: &mut HashMap<String, Option<std::collections::HashSet<Labels>>>,
    ) -> Result<()> {
        let (mf, of) = (side_value(many_side), side_value(one_side));
        let (fl, fr) = if ctx.one_to_many { (of, mf) } else { (mf, of) };
        let (mut val, keep) = elem_binop(self.op, fl, fr);
        let return_bool = self.modifier.return_bool;
        let (labels, drop) = self.result_labels(many_side, one_side, ctx.mm, ctx.om);
        // Matching rules are checked before comparisons filter anything, so an ambiguous
        // match is an error whatever the values.
        if ctx.one_to_one {
            if matched.contains_key(sig) {
                return Err(QueryError::exec(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                ));
            }
            matched.insert(sig.to_string(), None);
        } else {
            let set = matched
                .entry(sig.to_string())
                .or_insert_with(|| Some(Default::default()));
            if let Some(set) = set {
                if !set.insert(labels.clone()) {
                    return Err(QueryError::exec(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
            }
        }
        if return_bool {
            val = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            return Ok(());
        }
        out.push(Sample {
            labels,
            t: ctx.ts,
            f: val,
            drop_name: return_bool || drop,
        });
        Ok(())
    }

    /// Prometheus's `resultMetric`: the "many" side's labels, minus the name for arithmetic,
    /// reduced to the matching labels for one-to-one, plus `group_x` labels from the "one"
    /// side. Also whether the name is to be dropped later.
    fn result_labels(
        &mut self,
        many_side: Side,
        one_side: Side,
        mm: &crate::promql::value::Matrix,
        om: &crate::promql::value::Matrix,
    ) -> (Labels, bool) {
        let Side::Real(mi, _) = many_side else {
            // Only the one side can be filled here (see `step`).
            return (Labels::empty(), false);
        };
        let drop = mm[mi].drop_name;
        let oi = match one_side {
            Side::Real(oi, _) => Some(oi),
            Side::Fill(_) => None,
        };
        if let Some(oi) = oi {
            if let Some(l) = self.result_cache.get(&(mi, oi)) {
                return (l.clone(), drop);
            }
        }
        let mut b = LabelsBuilder::new(&mm[mi].labels);
        if drops_name(self.op) {
            for n in RESERVED_WITH_NAME {
                b.del(n);
            }
        }
        if matches!(self.modifier.card, VectorMatchCardinality::OneToOne) {
            if self.on {
                b.keep(self.names);
            } else {
                for n in self.names {
                    b.del(n);
                }
            }
        }
        if let VectorMatchCardinality::ManyToOne(ls) | VectorMatchCardinality::OneToMany(ls) =
            &self.modifier.card
        {
            for n in &ls.labels {
                let v = oi.and_then(|oi| om[oi].labels.get(n)).unwrap_or("");
                if v.is_empty() {
                    b.del(n);
                } else {
                    b.set(n, v);
                }
            }
        }
        let labels = b.build();
        if let Some(oi) = oi {
            self.result_cache.insert((mi, oi), labels.clone());
        }
        (labels, drop)
    }
}

struct EmitCtx<'m> {
    ts: i64,
    mm: &'m crate::promql::value::Matrix,
    om: &'m crate::promql::value::Matrix,
    one_to_many: bool,
    one_to_one: bool,
}

fn side_value(s: Side) -> f64 {
    match s {
        Side::Real(_, f) | Side::Fill(f) => f,
    }
}
