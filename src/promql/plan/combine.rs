//! How the router makes one answer of the shards' answers to a leaf, and which aggregations a
//! shard can compute part of.
//!
//! Only aggregations whose partial results combine into exactly the router-only result are
//! pushed: `count` (partial counts are whole numbers, summed exactly) and `group`. `sum` and
//! `avg` are not: adding partial sums, even with the Kahan compensation carried, rounds
//! differently from one sum in series order. `min`/`max` are not: which of `+0` and `-0` wins
//! depends on the global order of the series. `topk`/`bottomk`/`limitk`, `quantile`,
//! `stddev`/`stdvar` and `count_values` need every series. Those run on the router over their
//! argument's leaves. This file never evaluates.

use promql_parser::parser::token::{T_COUNT, T_GROUP};
use promql_parser::parser::AggregateExpr;

use super::per_series::is_per_series;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Per-series answers: the shards' series side by side.
    Concat,
    /// Partial counts of the same group are added.
    SumCounts,
    /// A group present on any shard is 1.
    Group,
}

/// How the partial answers of `a` combine, when every shard can compute one.
pub fn of_aggregation(a: &AggregateExpr) -> Option<Combine> {
    if a.param.is_some() || !is_per_series(&a.expr) {
        return None;
    }
    match a.op.id() {
        T_COUNT => Some(Combine::SumCounts),
        T_GROUP => Some(Combine::Group),
        _ => None,
    }
}
