//! A PromQL leaf (see `promql::plan`) evaluated on the shard that owns its series. The
//! selection is listed first (labels and where each series' samples are), then read and
//! evaluated a batch of series at a time: the points decoded for a batch are still in cache
//! when the evaluator reads them, and the query holds one batch of raw points rather than
//! the whole selection's; a partial aggregation folds each batch's answer at once and a
//! selecting one picks from it early (`LeafParts`). Batches are independent and their answers concatenate in label order, so
//! the result is the one of evaluating every series at once.
//!
//! It reads storage and runs the engine's leaf evaluation; it never parses PromQL and never
//! decides what runs where.

use std::collections::HashMap;

use shards::head::Head;
use shards::index::matcher::Matcher;
use shards::labels::Labels;
use shards::querier::{Querier, QuerySeries};
use shards::shard::Shard;

use crate::promql::error::QueryError;
use crate::promql::leaf::{LeafQuery, LeafResult};
use crate::promql::source::RawSeries;
use crate::promql::value::FPoint;

/// Series a leaf is evaluated over between two yields: evaluation is synchronous, so the
/// shard's appends wait at most this many series' worth of it.
const LEAF_BATCH: usize = 256;

/// Series read between two yields at most: decoding chunks is most of reading.
const READ_YIELD_SERIES: usize = 32;

/// Series listed between two yields at most.
const LIST_YIELD_SERIES: usize = 1024;

/// A PromQL leaf over this shard's series; see the module doc. A leaf reading several
/// selections (rare: the planner pushes per-series work over one selector) reads them whole
/// and is evaluated in one piece.
pub async fn eval_leaf(shard: &Shard, q: &LeafQuery) -> Result<LeafResult, QueryError> {
    let selections = q.selections()?;
    let mut data = HashMap::with_capacity(selections.len());
    let mut buffers = Buffers::default();
    if let [only] = selections.as_slice() {
        let mut pending = Pending::list(shard, &only.matchers, only.mint, only.maxt).await?;
        let mut parts = q.parts();
        let mut held = 0;
        loop {
            let batch = pending.read(LEAF_BATCH, &mut buffers).await?;
            if batch.is_empty() {
                break;
            }
            data.insert(only.node, batch);
            let (batch_part, now_held) = q.evaluate(&data, held)?;
            held = now_held;
            parts.add(q, batch_part)?;
            glommio::executor().yield_if_needed().await;
        }
        return q.finish_parts(parts, held);
    }
    for r in &selections {
        let mut pending = Pending::list(shard, &r.matchers, r.mint, r.maxt).await?;
        data.insert(r.node, pending.read(usize::MAX, &mut buffers).await?);
    }
    q.evaluate_all(&data)
}

/// Whether every block ends before `t` (block max times are exclusive), so a read from `t`
/// on needs the head alone: the common case, which keeps the head's cheaper paths.
pub fn head_alone_from(shard: &Shard, t: i64) -> bool {
    shard.blocks().iter().all(|b| b.meta().max_time <= t)
}

/// Reused between series: each series' points are decoded here and then copied out at their
/// exact size, one allocation per series.
#[derive(Default)]
struct Buffers {
    points: Vec<FPoint>,
    starts: Vec<i64>,
}

impl Buffers {
    /// The decoded series as the evaluator takes it; `None` without points.
    fn take(&mut self, labels: Labels) -> Option<RawSeries> {
        if self.points.is_empty() {
            return None;
        }
        let start_timestamps = if self.starts.iter().any(|&st| st != 0) {
            self.starts.clone()
        } else {
            Vec::new()
        };
        Some(RawSeries {
            labels,
            points: self.points.as_slice().to_vec(),
            start_timestamps,
        })
    }

    fn clear(&mut self) {
        self.points.clear();
        self.starts.clear();
    }

    fn push(&mut self, t: i64, f: f64, st: i64) {
        self.points.push(FPoint { t, f });
        self.starts.push(st);
    }
}

/// The series of one selection with samples in its range, in label order, not read yet.
enum Pending<'s> {
    /// Every block ends before the range: the head alone.
    Head {
        head: &'s Head,
        series: std::vec::IntoIter<(Labels, u64)>,
        mint: i64,
        maxt: i64,
    },
    /// Head and blocks, merged by the querier.
    Merged {
        querier: Querier<'s>,
        series: std::vec::IntoIter<QuerySeries>,
    },
}

impl<'s> Pending<'s> {
    async fn list(
        shard: &'s Shard,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Pending<'s>, QueryError> {
        if !head_alone_from(shard, mint) {
            let querier = shard.querier(mint, maxt);
            let series = querier
                .select(matchers)
                .map_err(|e| QueryError::Storage(e.to_string()))?;
            return Ok(Pending::Merged {
                querier,
                series: series.into_iter(),
            });
        }
        let head = shard.head();
        let refs = head.select(matchers);
        let mut series = Vec::with_capacity(refs.len());
        for (i, r) in refs.into_iter().enumerate() {
            if i % LIST_YIELD_SERIES == LIST_YIELD_SERIES - 1 {
                glommio::executor().yield_if_needed().await;
            }
            if !head.series(r).is_some_and(|s| s.overlaps(mint, maxt)) {
                continue;
            }
            if let Some(labels) = head.series_labels(r) {
                series.push((labels, r));
            }
        }
        series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(Pending::Head {
            head,
            series: series.into_iter(),
            mint,
            maxt,
        })
    }

    /// Up to `n` more series with their points, skipping those without any in range; empty
    /// once every listed series was read.
    async fn read(
        &mut self,
        n: usize,
        buffers: &mut Buffers,
    ) -> Result<Vec<RawSeries>, QueryError> {
        let mut out = Vec::with_capacity(n.min(LEAF_BATCH));
        let mut since_yield = 0;
        while out.len() < n {
            if since_yield == READ_YIELD_SERIES {
                glommio::executor().yield_if_needed().await;
                since_yield = 0;
            }
            since_yield += 1;
            buffers.clear();
            let labels = match self {
                Pending::Head {
                    head,
                    series,
                    mint,
                    maxt,
                } => {
                    let Some((labels, r)) = series.next() else {
                        break;
                    };
                    let mut it = head.samples(r, *mint, *maxt).map_err(storage)?;
                    while let Some((t, f)) = it.next_checked().map_err(storage)? {
                        buffers.push(t, f, it.start_timestamp());
                    }
                    labels
                }
                Pending::Merged { querier, series } => {
                    let Some(s) = series.next() else {
                        break;
                    };
                    querier
                        .for_each_sample(&s, |t, f, st| buffers.push(t, f, st))
                        .map_err(storage)?;
                    s.labels
                }
            };
            if let Some(s) = buffers.take(labels) {
                out.push(s);
            }
        }
        Ok(out)
    }
}

fn storage(e: impl std::fmt::Display) -> QueryError {
    QueryError::Storage(e.to_string())
}
