//! `RuleStorage` on the server: queries through the PromQL engine over the router, appends
//! through the router's normal append path (one batch per shard, as a scrape sends them), so
//! recorded series and `ALERTS` land in the shards' heads and WALs like scraped ones.
//!
//! It keeps no cache of series refs: rules write few series, and sending their labels with
//! each batch keeps this free of the stale-ref handling a cache would need.

use std::cell::RefCell;
use std::rc::Rc;

use shards::head::{AppendBatch, BatchSample, SeriesKey};
use shards::labels::Labels;

use crate::promql::engine::Engine;
use crate::promql::value::Sample;
use crate::router::Router;

use super::alerting::LabelMap;
use super::storage::{engine_query, newest_sample, RuleStorage};

pub struct RouterStorage {
    pub router: Rc<Router>,
    /// Replaced on reload (the evaluation interval is the default subquery step).
    pub engine: RefCell<Engine>,
}

impl RuleStorage for RouterStorage {
    async fn query(&self, expr: &str, t: i64) -> Result<Vec<Sample>, String> {
        let engine = self.engine.borrow().clone();
        engine_query(&engine, &*self.router, expr, t).await
    }

    async fn last_sample(
        &self,
        labels: &LabelMap,
        mint: i64,
        maxt: i64,
    ) -> Result<Option<(i64, f64)>, String> {
        newest_sample(&*self.router, labels, mint, maxt).await
    }

    async fn append(&self, samples: Vec<(Labels, i64, f64)>) -> Result<(), String> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut batches: Vec<AppendBatch> = vec![AppendBatch::default(); self.router.shards()];
        for (labels, t, v) in samples {
            let b = &mut batches[self.router.shard_of(labels.hash())];
            b.samples.push(BatchSample {
                series: SeriesKey::New(b.new_series.len() as u32),
                t,
                v,
            });
            b.new_series.push(labels);
        }
        let mut pending = Vec::new();
        for (shard, batch) in batches.into_iter().enumerate() {
            if batch.samples.is_empty() {
                continue;
            }
            pending.push((
                shard,
                self.router
                    .send_append(shard, batch)
                    .await
                    .map_err(|e| e.to_string())?,
            ));
        }
        for (shard, p) in pending {
            Router::appended(shard, p)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
