//! Evaluation of a planned leaf (see `plan`) over one shard's series, and the router's merge of
//! the shards' answers. It is the engine's own evaluator run on a subset of the series, so a
//! leaf's answer is exactly the part of the router-only answer those series make.
//!
//! It owns the request a shard gets (everything evaluation needs, owned so it crosses threads)
//! and the merge; it never reads storage (the shard's service hands the series in) and never
//! waits.

use std::collections::HashMap;
use std::time::Instant;

use promql_parser::parser::Expr;

use super::error::QueryError;
use super::eval::{prefetch, Evaluator, Shared};
use super::source::RawSeries;
use super::value::{Annotations, Matrix};

/// One leaf to evaluate on a shard, with the query's settings.
#[derive(Debug, Clone)]
pub struct LeafQuery {
    pub expr: Expr,
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

/// A leaf's series (in label order) and the annotations evaluating it produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeafResult {
    pub series: Matrix,
    pub annotations: Annotations,
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

    /// Evaluates the leaf over `data` (series per selection node). `held` samples are already
    /// held by earlier parts of the same leaf; the total held after is returned with the answer.
    pub fn evaluate(
        &self,
        data: &HashMap<usize, Vec<RawSeries>>,
        held: usize,
    ) -> Result<(LeafResult, usize), QueryError> {
        let mut shared = Shared {
            data,
            pushed: HashMap::new(),
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
        .eval_vector(&self.expr)?;
        let held = shared.current_samples;
        Ok((
            LeafResult {
                series,
                annotations: shared.annotations,
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
        self.evaluate(data, 0).map(|(r, _)| r)
    }
}

/// The shards' answers (in shard order) as one: a series lives on one shard and a leaf keeps its
/// input's labels and order, so ordering by labels gives the order of the router-only answer.
/// The first shard's error wins.
pub fn merge(parts: Vec<Result<LeafResult, QueryError>>) -> Result<LeafResult, QueryError> {
    let mut out = LeafResult::default();
    for p in parts {
        let p = p?;
        out.series.extend(p.series);
        out.annotations.merge(p.annotations);
    }
    out.series.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}
