//! How the router makes one answer of the shards' answers to a leaf, and which aggregations a
//! shard can compute part of.
//!
//! An aggregation over a per-series expression is pushed when its shards' parts combine into
//! exactly the router-only answer:
//! - `sum avg min max count group stddev stdvar`: each shard sends its groups' mergeable states
//!   (`eval::agg_state`), merged in shard order. The router evaluating alone partitions the
//!   input by shard and merges the same way, so both paths do the same arithmetic.
//! - `topk bottomk limitk limit_ratio` with a literal parameter: each shard selects among its
//!   own series, and the router selects again among the shards' picks. The order they select
//!   by (value, then the input's label order; for `limitk` the label order; for `limit_ratio`
//!   each series' own hash) is total, so the global picks are always among the shards' picks.
//!
//! `quantile` and `count_values` need every value and stay on the router, as do aggregations
//! whose parameter is not a literal. This file never evaluates.

use promql_parser::parser::token::{T_BOTTOMK, T_LIMITK, T_LIMIT_RATIO, T_TOPK};
use promql_parser::parser::AggregateExpr;

use super::per_series::{is_literal, is_per_series};
use crate::promql::eval::agg_state::AggOp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Per-series answers: the shards' series side by side.
    Concat,
    /// Each group's partial states are merged in shard order, then finished.
    Merge(AggOp),
    /// The shards' picks are picked from again by the same aggregation.
    Reselect,
}

/// How the partial answers of `a` combine, when every shard can compute one.
pub fn of_aggregation(a: &AggregateExpr) -> Option<Combine> {
    if !is_per_series(&a.expr) {
        return None;
    }
    let op = a.op.id();
    match &a.param {
        None => AggOp::of_token(op).map(Combine::Merge),
        Some(p) if is_literal(p) && [T_TOPK, T_BOTTOMK, T_LIMITK, T_LIMIT_RATIO].contains(&op) => {
            Some(Combine::Reselect)
        }
        Some(_) => None,
    }
}
