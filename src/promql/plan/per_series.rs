//! Which expressions a shard can evaluate alone because every output series comes from exactly
//! one input series: a selector, a range function over a range selector, an element-wise
//! function or a negation over such an expression, with literal parameters only.
//!
//! It owns that decision and nothing else; it never evaluates. A function is listed here only
//! if its kernel keeps the input's series order and labels (names are dropped late, by a flag),
//! so that the router merging the shards' answers by labels gets exactly what evaluating
//! everything on the router gives.

use promql_parser::parser::Expr;

/// Range-vector functions computed per series from the window alone. `absent_over_time` is
/// not one: its answer depends on whether any series exists at all.
const RANGE_FUNCTIONS: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "mad_over_time",
    "quantile_over_time",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "changes",
    "resets",
    "deriv",
    "predict_linear",
    "double_exponential_smoothing",
    "holt_winters",
];

/// Instant-vector functions applied to each sample's value alone. `timestamp` is left out: it
/// reads its selector argument directly instead of evaluating it.
const ELEMENT_FUNCTIONS: &[&str] = &[
    "abs",
    "ceil",
    "floor",
    "exp",
    "sqrt",
    "ln",
    "log2",
    "log10",
    "sgn",
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "cos",
    "cosh",
    "sin",
    "sinh",
    "tan",
    "tanh",
    "deg",
    "rad",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "hour",
    "minute",
    "month",
    "year",
];

fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

pub fn is_literal(e: &Expr) -> bool {
    matches!(unparen(e), Expr::NumberLiteral(_))
}

/// Whether `e` is an instant-vector expression a shard can evaluate over its own series alone.
pub fn is_per_series(e: &Expr) -> bool {
    match e {
        Expr::Paren(p) => is_per_series(&p.expr),
        Expr::VectorSelector(_) => true,
        Expr::Unary(u) => is_per_series(&u.expr),
        Expr::Call(c) => {
            let name = c.func.name;
            let args = &c.args.args;
            if RANGE_FUNCTIONS.contains(&name) {
                let ranges = args
                    .iter()
                    .filter(|a| matches!(unparen(a), Expr::MatrixSelector(_)))
                    .count();
                ranges == 1
                    && args
                        .iter()
                        .all(|a| matches!(unparen(a), Expr::MatrixSelector(_)) || is_literal(a))
            } else if ELEMENT_FUNCTIONS.contains(&name) {
                // With no argument the date functions read the evaluation time: no series.
                !args.is_empty()
                    && is_per_series(&args[0])
                    && args[1..].iter().all(|a| is_literal(a))
            } else {
                false
            }
        }
        _ => false,
    }
}
