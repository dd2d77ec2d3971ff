//! What a query will read: every selector of the expression with the time range its
//! evaluation needs (offsets, `@`, ranges, lookback and enclosing subqueries included), as
//! Prometheus's `FindMinMaxTime`/`getTimeRangesForSelector` compute it. The engine fetches them
//! all before evaluating; selectors are keyed by the address of their AST node, which stays
//! put while the query runs.

use promql_parser::label::{MatchOp, Matcher as ParserMatcher};
use promql_parser::parser::{Expr, VectorSelector};
use shards::index::matcher::{MatchType, Matcher};

use super::{at_ms, duration_ms, offset_ms};
use crate::promql::error::QueryError;
use crate::promql::range_modifier::{self, RangeModifier};

/// One selector to fetch.
#[derive(Debug, Clone)]
pub struct SelectRequest {
    pub node: usize,
    pub matchers: Vec<Matcher>,
    pub mint: i64,
    pub maxt: i64,
}

/// Offsets, ranges and `@` of the subqueries enclosing a node.
#[derive(Debug, Clone, Copy, Default)]
struct SubqueryPath {
    offset: i64,
    range: i64,
    at: Option<i64>,
}

pub struct Plan {
    pub start: i64,
    pub end: i64,
    pub lookback: i64,
}

/// Every selector of `expr` with its matchers and time range.
pub fn collect(expr: &Expr, plan: &Plan) -> Result<Vec<SelectRequest>, QueryError> {
    let mut out = Vec::new();
    walk(expr, plan, SubqueryPath::default(), 0, &mut out)?;
    Ok(out)
}

fn walk(
    e: &Expr,
    plan: &Plan,
    path: SubqueryPath,
    range: i64,
    out: &mut Vec<SelectRequest>,
) -> Result<(), QueryError> {
    match e {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, plan, path, 0, out)?;
            }
            walk(&a.expr, plan, path, 0, out)
        }
        Expr::Unary(u) => walk(&u.expr, plan, path, 0, out),
        Expr::Binary(b) => {
            walk(&b.lhs, plan, path, 0, out)?;
            walk(&b.rhs, plan, path, 0, out)
        }
        Expr::Paren(p) => walk(&p.expr, plan, path, range, out),
        Expr::Subquery(sq) => {
            let at = at_ms(&sq.at, plan.start, plan.end);
            let (o, r) = (offset_ms(&sq.offset), duration_ms(&sq.range));
            let inner = match at {
                Some(t) => SubqueryPath {
                    offset: o,
                    range: r,
                    at: Some(t),
                },
                None => SubqueryPath {
                    offset: path.offset + o,
                    range: path.range + r,
                    at: path.at,
                },
            };
            walk(&sq.expr, plan, inner, 0, out)
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
        Expr::VectorSelector(vs) => {
            out.push(request(vs, plan, path, range)?);
            Ok(())
        }
        Expr::MatrixSelector(ms) => {
            out.push(request(&ms.vs, plan, path, duration_ms(&ms.range))?);
            Ok(())
        }
        Expr::Call(c) => {
            if c.func.name == "info" {
                out.push(info_request(c, plan, path)?);
            }
            for a in &c.args.args {
                walk(a, plan, path, 0, out)?;
            }
            Ok(())
        }
    }
}

fn request(
    vs: &VectorSelector,
    plan: &Plan,
    path: SubqueryPath,
    range: i64,
) -> Result<SelectRequest, QueryError> {
    let (mut start, mut end) = (plan.start, plan.end);
    if let Some(t) = path.at {
        start = t;
        end = t;
    }
    match at_ms(&vs.at, plan.start, plan.end) {
        Some(t) => {
            start = t;
            end = t;
        }
        None => {
            start -= path.offset + path.range;
            end -= path.offset;
        }
    }
    // Samples exactly a lookback (or range) before the first step are outside the window.
    if range == 0 {
        start -= plan.lookback - 1;
    } else {
        start -= range - 1;
    }
    // `anchored` needs the sample before the window, `smoothed` also the one after it (or
    // after the instant), each at most a lookback away.
    match range_modifier::of(vs) {
        Some(RangeModifier::Anchored) => start -= plan.lookback,
        Some(RangeModifier::Smoothed) => {
            start -= plan.lookback;
            end += plan.lookback;
        }
        None => {}
    }
    let o = offset_ms(&vs.offset);
    Ok(SelectRequest {
        node: vs as *const VectorSelector as usize,
        matchers: matchers(vs)?,
        mint: start - o,
        maxt: end - o,
    })
}

/// The info series `info(v, selector)` may join, keyed by the call's node: every series
/// matching the selector's `__name__` matchers (`target_info` without any), over the time the
/// first argument is evaluated at.
fn info_request(
    c: &promql_parser::parser::Call,
    plan: &Plan,
    path: SubqueryPath,
) -> Result<SelectRequest, QueryError> {
    let matchers = info_name_matchers(c)?;
    let (mut start, mut end) = match path.at {
        Some(t) => (t, t),
        None => (
            plan.start - path.offset - path.range,
            plan.end - path.offset,
        ),
    };
    if let Some(first) = c.args.args.first() {
        let (at, o) = info_time_shift(first, plan.start, plan.end);
        if let Some(t) = at {
            start = t;
            end = t;
        }
        start -= o;
        end -= o;
    }
    Ok(SelectRequest {
        node: c as *const promql_parser::parser::Call as usize,
        matchers,
        mint: start - (plan.lookback - 1),
        maxt: end,
    })
}

/// The `@` and total offset that decide when `info`'s first argument read its samples: those
/// of its selector, through functions, aggregations and subqueries (whose own offsets add up,
/// an inner `@` winning over an outer one). The info series are matched as of that time.
pub fn info_time_shift(e: &Expr, query_start: i64, query_end: i64) -> (Option<i64>, i64) {
    match e {
        Expr::VectorSelector(vs) => (at_ms(&vs.at, query_start, query_end), offset_ms(&vs.offset)),
        Expr::MatrixSelector(ms) => {
            info_time_shift(&Expr::VectorSelector(ms.vs.clone()), query_start, query_end)
        }
        Expr::Paren(p) => info_time_shift(&p.expr, query_start, query_end),
        Expr::Unary(u) => info_time_shift(&u.expr, query_start, query_end),
        Expr::Aggregate(a) => info_time_shift(&a.expr, query_start, query_end),
        Expr::Subquery(sq) => {
            let (inner_at, inner_offset) = info_time_shift(&sq.expr, query_start, query_end);
            match inner_at {
                Some(t) => (Some(t), inner_offset),
                None => (
                    at_ms(&sq.at, query_start, query_end),
                    inner_offset + offset_ms(&sq.offset),
                ),
            }
        }
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .find(|a| {
                !matches!(
                    super::unparen(a),
                    Expr::NumberLiteral(_) | Expr::StringLiteral(_)
                )
            })
            .map_or((None, 0), |a| info_time_shift(a, query_start, query_end)),
        _ => (None, 0),
    }
}

/// The `__name__` matchers of `info`'s second argument, or `__name__="target_info"`.
pub fn info_name_matchers(c: &promql_parser::parser::Call) -> Result<Vec<Matcher>, QueryError> {
    let mut out = Vec::new();
    if let Some(Expr::VectorSelector(vs)) = c.args.args.get(1).map(|a| super::unparen(a)) {
        out = matchers(vs)?
            .into_iter()
            .filter(|m| m.name == "__name__")
            .collect();
    }
    if out.is_empty() {
        out.push(
            Matcher::new(MatchType::Equal, "__name__", "target_info")
                .map_err(|e| QueryError::BadData(e.to_string()))?,
        );
    }
    Ok(out)
}

/// The storage's matchers for a selector: its label matchers plus the metric name.
pub fn matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, QueryError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(QueryError::BadData(
            "parse error: \"or\" is not allowed inside label matchers".into(),
        ));
    }
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        if !vs.matchers.matchers.iter().any(|m| m.name == "__name__") {
            out.push(
                Matcher::new(MatchType::Equal, "__name__", name.as_str())
                    .map_err(|e| QueryError::BadData(e.to_string()))?,
            );
        }
    }
    for m in &vs.matchers.matchers {
        if m.name != range_modifier::SENTINEL {
            out.push(convert(m)?);
        }
    }
    Ok(out)
}

fn convert(m: &ParserMatcher) -> Result<Matcher, QueryError> {
    let kind = match m.op {
        MatchOp::Equal => MatchType::Equal,
        MatchOp::NotEqual => MatchType::NotEqual,
        MatchOp::Re(_) => MatchType::Regex,
        MatchOp::NotRe(_) => MatchType::NotRegex,
    };
    // The storage compiles regexes itself, anchored as `^(?s:re)$` like Prometheus 3.
    Matcher::new(kind, m.name.as_str(), m.value.as_str())
        .map_err(|e| QueryError::BadData(e.to_string()))
}
