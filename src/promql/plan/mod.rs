//! The query planner: which parts of an expression run on the shards and which on the router.
//!
//! A leaf is the largest sub-expression a shard can answer over its own series alone (see
//! `per_series`); every shard evaluates it and the router merges the answers before it
//! evaluates the rest of the expression over them. The plan is pure: it reads the AST and never
//! evaluates, fetches or sends anything.
//!
//! Leaves are only looked for outside subqueries and outside `info()`/`timestamp()` arguments:
//! a subquery evaluates its inner expression on a step grid of its own, and those two functions
//! read their selector arguments directly rather than through evaluation.

pub mod combine;
pub mod per_series;

use promql_parser::parser::Expr;

pub use combine::Combine;

/// A sub-expression every shard evaluates, keyed by the address of its AST node (stable while
/// the query runs, as the prefetcher's keys are).
#[derive(Debug, Clone, Copy)]
pub struct Leaf<'e> {
    pub node: usize,
    pub expr: &'e Expr,
    /// How the router makes one answer of the shards' answers.
    pub combine: Combine,
}

/// The address that keys `e` in a plan.
pub fn node_of(e: &Expr) -> usize {
    e as *const Expr as usize
}

/// Every leaf of `expr` that the shards evaluate, outermost first.
pub fn leaves(expr: &Expr) -> Vec<Leaf<'_>> {
    let mut out = Vec::new();
    walk(expr, &mut out);
    out
}

fn walk<'e>(e: &'e Expr, out: &mut Vec<Leaf<'e>>) {
    if per_series::is_per_series(e) {
        out.push(Leaf {
            node: node_of(e),
            expr: e,
            combine: Combine::Concat,
        });
        return;
    }
    if let Expr::Aggregate(a) = e {
        if let Some(combine) = combine::of_aggregation(a) {
            out.push(Leaf {
                node: node_of(e),
                expr: e,
                combine,
            });
            return;
        }
    }
    match e {
        Expr::Paren(p) => walk(&p.expr, out),
        Expr::Unary(u) => walk(&u.expr, out),
        Expr::Binary(b) => {
            walk(&b.lhs, out);
            walk(&b.rhs, out);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, out);
            }
            walk(&a.expr, out);
        }
        Expr::Call(c) => {
            if c.func.name == "info" || c.func.name == "timestamp" {
                return;
            }
            for a in &c.args.args {
                walk(a, out);
            }
        }
        Expr::Subquery(_)
        | Expr::MatrixSelector(_)
        | Expr::VectorSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::eval::agg_state::AggOp;

    fn plan(q: &str) -> Vec<String> {
        let e = crate::promql::engine::parse(q).unwrap();
        leaves(&e).iter().map(|l| l.expr.to_string()).collect()
    }

    #[test]
    fn selectors_and_per_series_functions_go_to_the_shards() {
        assert_eq!(plan("x"), vec!["x"]);
        assert_eq!(plan("rate(x[5m] offset 1m)"), vec!["rate(x[5m] offset 1m)"]);
        assert_eq!(
            plan("abs(-rate(x{a=~\"b.*\"}[5m] @ 100))"),
            vec!["abs(-rate(x{a=~\"b.*\"}[5m] @ 100.000))"]
        );
        assert_eq!(
            plan("quantile_over_time(0.9, x[5m])"),
            vec!["quantile_over_time(0.9, x[5m])"]
        );
        assert_eq!(plan("round(x, 5)"), vec!["round(x, 5)"]);
    }

    #[test]
    fn what_needs_several_series_stays_on_the_router() {
        assert_eq!(plan("x / on(a) y"), vec!["x", "y"]);
        assert_eq!(
            plan("label_replace(x, \"a\", \"b\", \"c\", \"d\")"),
            vec!["x"]
        );
        assert_eq!(
            plan("histogram_quantile(0.9, rate(h[5m]))"),
            vec!["rate(h[5m])"]
        );
    }

    fn combines(q: &str) -> Vec<Combine> {
        let e = crate::promql::engine::parse(q).unwrap();
        leaves(&e).iter().map(|l| l.combine).collect()
    }

    #[test]
    fn decomposable_aggregations_run_on_the_shards_and_merge() {
        assert_eq!(
            plan("count by (job) (rate(x[5m])) / 2"),
            vec!["count by (job) (rate(x[5m]))"]
        );
        assert_eq!(
            plan("sum by (job) (rate(x[5m]))"),
            vec!["sum by (job) (rate(x[5m]))"]
        );
        for (q, op) in [
            ("sum by (job) (rate(x[5m]))", AggOp::Sum),
            ("avg without (i) (x)", AggOp::Avg),
            ("min(x)", AggOp::Min),
            ("max by (a) (abs(x))", AggOp::Max),
            ("count by (job) (rate(x[5m]))", AggOp::Count),
            ("group without (a) (x)", AggOp::Group),
            ("stddev(x)", AggOp::Stddev),
            ("stdvar by (a) (x)", AggOp::Stdvar),
        ] {
            assert_eq!(combines(q), vec![Combine::Merge(op)], "{q}");
        }
        assert_eq!(combines("abs(x)"), vec![Combine::Concat]);
        // Over something that is not per series, only the per-series parts go.
        assert_eq!(plan("sum(x * y)"), vec!["x", "y"]);
        assert_eq!(plan("count(count(x))"), vec!["count(x)"]);
        assert_eq!(
            plan("sum(rate(x[5m])) + max(y)"),
            vec!["sum(rate(x[5m]))", "max(y)"]
        );
    }

    #[test]
    fn selecting_aggregations_pick_on_the_shards_and_again_on_the_router() {
        for q in [
            "topk(10, rate(x[5m]))",
            "bottomk by (a) (3, x)",
            "limitk(2, x)",
            "limit_ratio(0.5, x)",
        ] {
            assert_eq!(plan(q), vec![q.to_string()]);
            assert_eq!(combines(q), vec![Combine::Reselect], "{q}");
        }
        // A parameter the router computes keeps the aggregation there.
        assert_eq!(plan("topk(scalar(y), x)"), vec!["y", "x"]);
    }

    #[test]
    fn aggregations_needing_every_value_stay_on_the_router() {
        assert_eq!(plan("quantile(0.9, rate(x[5m]))"), vec!["rate(x[5m])"]);
        assert_eq!(plan("count_values(\"v\", x)"), vec!["x"]);
    }

    #[test]
    fn subqueries_and_direct_readers_are_not_split() {
        assert!(plan("max_over_time(rate(x[5m])[1h:1m])").is_empty());
        assert!(plan("timestamp(x)").is_empty());
        assert!(plan("info(x)").is_empty());
        assert!(plan("absent_over_time(x[5m])").is_empty());
        assert!(plan("x[5m]").is_empty());
        // A parameter that is not a literal is evaluated on the router.
        assert_eq!(plan("clamp_max(x, scalar(y))"), vec!["x", "y"]);
        assert_eq!(plan("predict_linear(x[5m], time())"), Vec::<String>::new());
        // Date functions without an argument read the step's time, not a series.
        assert!(plan("hour()").is_empty());
    }
}
