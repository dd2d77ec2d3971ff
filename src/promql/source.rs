//! Where the evaluator's data comes from: every series matching a selector with its raw
//! points (staleness markers included) in a time range. The evaluator fetches everything a
//! query needs through this trait before it evaluates (`engine`), so evaluation itself is
//! synchronous and never waits on I/O.
//!
//! `MemorySource` holds series in memory, for unit tests; the router implements the trait by
//! fanning a select out to every shard.

use std::future::Future;

use shards::index::matcher::Matcher;
use shards::labels::Labels;

use super::error::QueryError;
use super::leaf::{LeafQuery, LeafResult};
use super::value::FPoint;

/// One selected series: labels and raw points, oldest first, stale markers included.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSeries {
    pub labels: Labels,
    pub points: Vec<FPoint>,
    /// Each point's start timestamp (ms; 0 = unknown), aligned with `points`, or empty when
    /// the storage keeps none (shards keep them only with start-timestamp storage on).
    pub start_timestamps: Vec<i64>,
}

pub trait SeriesSource {
    /// Every series matching all `matchers` with its points in `[mint, maxt]`; series without
    /// points in the range may be left out. Sorted by labels.
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> impl Future<Output = Result<Vec<RawSeries>, String>>;

    /// How many shards the series are spread over by label hash (`shards::labels::shard_for`):
    /// aggregations partition their input the same way, so that evaluating them here gives
    /// what merging the shards' partial aggregations gives (see `eval::agg_state`).
    fn shard_count(&self) -> usize {
        1
    }

    /// A planned leaf evaluated over every series the source holds, merged (see `leaf`).
    fn eval_leaf(&self, query: &LeafQuery) -> impl Future<Output = Result<LeafResult, QueryError>>;
}

/// Series held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    pub series: Vec<RawSeries>,
}

impl MemorySource {
    pub fn new(mut series: Vec<RawSeries>) -> Self {
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        MemorySource { series }
    }

    /// The same selection as `select`, synchronously.
    pub fn select_now(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<RawSeries> {
        self.series
            .iter()
            .filter(|s| {
                matchers
                    .iter()
                    .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            })
            .filter_map(|s| {
                let lo = s.points.partition_point(|p| p.t < mint);
                let hi = s.points.partition_point(|p| p.t <= maxt);
                (lo < hi).then(|| RawSeries {
                    labels: s.labels.clone(),
                    points: s.points[lo..hi].to_vec(),
                    start_timestamps: s.start_timestamps.get(lo..hi).unwrap_or(&[]).to_vec(),
                })
            })
            .collect()
    }
}

impl SeriesSource for MemorySource {
    async fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<RawSeries>, String> {
        Ok(self.select_now(matchers, mint, maxt))
    }

    async fn eval_leaf(&self, query: &LeafQuery) -> Result<LeafResult, QueryError> {
        let mut data = std::collections::HashMap::new();
        for r in query.selections()? {
            data.insert(r.node, self.select_now(&r.matchers, r.mint, r.maxt));
        }
        query.evaluate_all(&data)
    }
}
