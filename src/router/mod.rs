//! The router's view of the shards: which shard owns a series, and fan-out/merge of requests
//! over every shard.
//!
//! It owns the links to the shards (one per shard, see `shard_link`) and the label answers and
//! shard lists it keeps while the shards are unchanged (`label_cache`, `label_partials`),
//! nothing else: no storage, no parsing.
//! Every exchange is one of the messages in `protocol`. Fan-outs send to every shard first and
//! then collect, so shards work on one query in parallel.

pub mod append_outbox;
pub mod label_cache;
pub mod label_partials;
pub mod protocol;
pub mod shard_admin;
pub mod shard_leaf;
pub mod shard_link;
pub mod shard_service;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use shards::head::{AppendBatch, AppendOutcome};
use shards::index::matcher::Matcher;
use shards::label_generation::{LabelGeneration, LabelScope, LabelSources};
use shards::labels::{shard_for, Labels};
use shards::string_list::StringList;
use thiserror::Error;

use append_outbox::{AppendOutbox, PendingAppend, APPEND_WINDOW};
use label_cache::LabelAnswerCache;
use label_partials::LabelListCache;
use protocol::{LatestSample, SelectedSeries, ShardRequest, ShardResponse, ShardStats, TsdbStatus};
use shard_link::{LinkError, ShardLink};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RouterError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("shard {shard}: {reason}")]
    Storage { shard: usize, reason: String },
    #[error("shard {0} answered a different request")]
    Protocol(usize),
}

/// The lists answering `request` over every series in `[mint, maxt]` from the tables each
/// shard published (`LabelGeneration::names_over`, `values_over`; one list per source, every
/// shard's in shard order), and each shard's sources they were read from; `None` when a shard
/// has not published what the request needs. Pure: the router and the listeners of the other
/// cores (`api::front`) answer from the same lists.
pub fn published_label_lists<'a>(
    generations: impl Iterator<Item = &'a LabelGeneration>,
    request: LabelRequest<'_>,
    mint: i64,
    maxt: i64,
) -> Option<(Vec<LabelSources>, Vec<Arc<StringList>>)> {
    let mut read = Vec::new();
    let mut lists = Vec::new();
    for g in generations {
        let (sources, tables) = match request {
            LabelRequest::Names => g.names_over(mint, maxt),
            LabelRequest::Values(name) => g.values_over(name, mint, maxt),
        }?;
        read.push(sources);
        lists.extend(tables);
    }
    Some((read, lists))
}

pub struct Router {
    links: Vec<Rc<ShardLink>>,
    outboxes: Vec<Rc<AppendOutbox>>,
    label_answers: RefCell<LabelAnswerCache>,
    label_lists: RefCell<LabelListCache>,
}

/// What a label request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelRequest<'a> {
    Names,
    Values(&'a str),
}

impl Router {
    /// Must run on the router's executor: it starts each shard's append flusher there.
    pub fn new(links: Vec<Rc<ShardLink>>) -> Self {
        let outboxes = links
            .iter()
            .map(|l| AppendOutbox::start(l.clone(), APPEND_WINDOW))
            .collect();
        Router {
            links,
            outboxes,
            label_answers: RefCell::new(LabelAnswerCache::default()),
            label_lists: RefCell::new(LabelListCache::default()),
        }
    }

    pub fn shards(&self) -> usize {
        self.links.len()
    }

    pub fn links(&self) -> &[Rc<ShardLink>] {
        &self.links
    }

    /// The shard that owns the series with this `series_hash`.
    pub fn shard_of(&self, hash: u64) -> usize {
        shard_for(hash, self.links.len())
    }

    /// Queues one batch for `shard` (it goes with the others of its window, see
    /// `append_outbox`); the returned append resolves once the shard acknowledged it.
    pub async fn send_append(
        &self,
        shard: usize,
        batch: AppendBatch,
    ) -> Result<PendingAppend, RouterError> {
        Ok(self.outboxes[shard].push(batch))
    }

    /// Waits for an append sent with `send_append`.
    pub async fn appended(
        _shard: usize,
        pending: PendingAppend,
    ) -> Result<AppendOutcome, RouterError> {
        pending.wait().await
    }

    /// Sends `make(shard)` to every shard, then collects the replies in shard order.
    async fn fan_out(
        &self,
        mut make: impl FnMut() -> ShardRequest,
    ) -> Result<Vec<ShardResponse>, RouterError> {
        let mut pending = Vec::with_capacity(self.links.len());
        for link in &self.links {
            pending.push(link.send(make()).await?);
        }
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(p.wait().await?);
        }
        Ok(out)
    }

    /// Label sets of the series matching `matchers` with samples in `[mint, maxt]`, sorted.
    pub async fn series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>, RouterError> {
        let replies = self
            .fan_out(|| ShardRequest::Series {
                matchers: matchers.to_vec(),
                mint,
                maxt,
            })
            .await?;
        let mut out = collect_results(replies, |r| match r {
            ShardResponse::Series(result) => Some(result),
            _ => None,
        })?;
        // A series lives on exactly one shard, so there is nothing to deduplicate. A shard
        // that read blocks answers sorted: the stable sort finds those runs and merges them
        // (one comparison per series for two shards, where a pattern-defeating quicksort
        // made ~17 per series, a third of a 50k-series request's CPU); a head-only answer,
        // in series-ref order, is sorted as before.
        out.sort();
        Ok(out)
    }

    /// The answer to a label request over the series matching any of `selectors` (one empty
    /// selector: every series) in the sources overlapping `[mint, maxt]`: `encode` turns
    /// the shards' lists (per selector, per shard; each sorted) into the answer's bytes.
    /// `key` names everything besides `request` and the range that those bytes depend on
    /// (the selectors' text, a limit).
    ///
    /// While every shard's published sources for the range are those a kept answer was
    /// read from, that answer is given without asking the shards (see `label_cache`).
    /// Label names over every series come from the name tables the shards publish (see
    /// `shards::label_generation`), and so do the values of a name with few values in every
    /// source: no shard is asked, even right after a change.
    /// Otherwise each shard is asked only for the selectors whose list it has not kept for
    /// its current sources (`label_partials`): a request differing from a kept one only in
    /// its limit, or in a range that reads the same sources, wakes no shard, and the first
    /// request after one shard changed wakes that shard alone.
    pub async fn label_answer(
        &self,
        request: LabelRequest<'_>,
        selectors: &[Vec<Matcher>],
        (mint, maxt): (i64, i64),
        key: &str,
        encode: impl FnOnce(&[&StringList]) -> Vec<u8>,
    ) -> Result<Arc<crate::http::SharedBody>, RouterError> {
        let whole_key = match request {
            LabelRequest::Names => format!("names\0{key}"),
            LabelRequest::Values(name) => format!("values\0{name}\0{key}"),
        };
        // Over every series (no `match[]`), an answer reads only the sources' name set or one
        // name's value set, and stays valid while those are unchanged.
        let every_series = matches!(selectors, [only] if only.is_empty());
        let scope = match request {
            LabelRequest::Names => LabelScope::of(None, every_series),
            LabelRequest::Values(name) => LabelScope::of(Some(name), every_series),
        };
        let current: Vec<_> = self
            .links
            .iter()
            .map(|l| l.label_sources(scope, mint, maxt))
            .collect();
        if let Some(answer) = self.label_answers.borrow_mut().get(&whole_key, &current) {
            return Ok(answer);
        }
        if every_series {
            // The shards' published name tables, or small value sets, answer it without
            // waking any shard.
            let generations = self.links.iter().map(|l| l.label_generation());
            if let Some((read, tables)) = published_label_lists(generations, request, mint, maxt) {
                let lists: Vec<&StringList> = tables.iter().map(|t| &**t).collect();
                let answer = Arc::new(crate::http::SharedBody::new(encode(&lists)));
                self.label_answers
                    .borrow_mut()
                    .insert(&whole_key, read, answer.clone());
                return Ok(answer);
            }
        }
        let shards = self.links.len();
        // Per selector, per shard: the list, and the sources it was read from.
        let mut lists: Vec<Option<(Rc<StringList>, LabelSources)>> =
            vec![None; selectors.len() * shards];
        let list_keys: Vec<String> = selectors
            .iter()
            .map(|m| label_partials::list_key(request, m))
            .collect();
        let mut asked = Vec::new();
        for (i, matchers) in selectors.iter().enumerate() {
            for (shard, link) in self.links.iter().enumerate() {
                let kept = self.label_lists.borrow_mut().get(
                    &label_partials::shard_key(&list_keys[i], shard),
                    std::slice::from_ref(&current[shard]),
                );
                if let Some(list) = kept {
                    lists[i * shards + shard] = Some((list, current[shard].clone()));
                    continue;
                }
                let message = match request {
                    LabelRequest::Names => ShardRequest::LabelNames {
                        matchers: matchers.clone(),
                        mint,
                        maxt,
                    },
                    LabelRequest::Values(name) => ShardRequest::LabelValues {
                        name: name.to_string(),
                        matchers: matchers.clone(),
                        mint,
                        maxt,
                    },
                };
                asked.push((i * shards + shard, link.send(message).await?));
            }
        }
        // Every request is sent before any reply is awaited: the shards work in parallel.
        for (slot, pending) in asked {
            let shard = slot % shards;
            let reply = match pending.wait().await? {
                ShardResponse::LabelNames(r) | ShardResponse::LabelValues(r) => r,
                _ => return Err(RouterError::Protocol(shard)),
            };
            let reply = reply.map_err(|reason| RouterError::Storage { shard, reason })?;
            let list = Rc::new(reply.list);
            self.label_lists.borrow_mut().insert(
                &label_partials::shard_key(&list_keys[slot / shards], shard),
                vec![reply.sources.clone()],
                list.clone(),
            );
            lists[slot] = Some((list, reply.sources));
        }
        // Each shard's sources, while all its lists agree (a change between two lists'
        // reads leaves the answer uncached).
        let mut read: Vec<Option<LabelSources>> = vec![None; shards];
        let mut agree = true;
        let mut merged = Vec::with_capacity(lists.len());
        for (slot, entry) in lists.into_iter().enumerate() {
            let Some((list, sources)) = entry else {
                return Err(RouterError::Protocol(slot % shards));
            };
            match &read[slot % shards] {
                Some(s) => agree &= *s == sources,
                None => read[slot % shards] = Some(sources),
            }
            merged.push(list);
        }
        let merged: Vec<&StringList> = merged.iter().map(|l| &**l).collect();
        let answer = Arc::new(crate::http::SharedBody::new(encode(&merged)));
        let read: Option<Vec<_>> = read.into_iter().collect();
        if let Some(read) = read.filter(|_| agree) {
            self.label_answers
                .borrow_mut()
                .insert(&whole_key, read, answer.clone());
        }
        Ok(answer)
    }

    /// Label answers given from the cache and computed so far, and those kept now.
    pub fn label_answer_stats(&self) -> label_cache::LabelAnswerStats {
        self.label_answers.borrow().stats()
    }

    /// Shard lists given from those kept (`label_partials`) and asked of the shards so far,
    /// and those kept now.
    pub fn label_list_stats(&self) -> label_cache::LabelAnswerStats {
        self.label_lists.borrow().stats()
    }

    /// The newest non-stale sample in `(at - lookback, at]` of each matching series, sorted by
    /// labels.
    pub async fn latest(
        &self,
        matchers: &[Matcher],
        at: i64,
        lookback: i64,
    ) -> Result<Vec<LatestSample>, RouterError> {
        let replies = self
            .fan_out(|| ShardRequest::Latest {
                matchers: matchers.to_vec(),
                at,
                lookback,
            })
            .await?;
        let mut out = collect_results(replies, |r| match r {
            ShardResponse::Latest(result) => Some(result),
            _ => None,
        })?;
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Every sample in `[mint, maxt]` of each matching series, staleness markers included,
    /// series sorted by labels; series without a sample in the range are left out.
    pub async fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SelectedSeries>, RouterError> {
        let replies = self
            .fan_out(|| ShardRequest::Select {
                matchers: matchers.to_vec(),
                mint,
                maxt,
            })
            .await?;
        let mut out = collect_results(replies, |r| match r {
            ShardResponse::Select(result) => Some(result),
            _ => None,
        })?;
        // A series lives on exactly one shard: sorting is the whole merge.
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Every shard's counters, in shard order.
    pub async fn stats(&self) -> Result<Vec<ShardStats>, RouterError> {
        let replies = self.fan_out(|| ShardRequest::Stats).await?;
        replies
            .into_iter()
            .enumerate()
            .map(|(shard, r)| match r {
                ShardResponse::Stats(s) => Ok(*s),
                _ => Err(RouterError::Protocol(shard)),
            })
            .collect()
    }

    /// Every shard's head cardinality, in shard order.
    pub async fn tsdb_status(&self) -> Result<Vec<TsdbStatus>, RouterError> {
        let replies = self.fan_out(|| ShardRequest::TsdbStatus).await?;
        replies
            .into_iter()
            .enumerate()
            .map(|(shard, r)| match r {
                ShardResponse::TsdbStatus(s) => Ok(*s),
                _ => Err(RouterError::Protocol(shard)),
            })
            .collect()
    }

    /// Sends an admin request (`DeleteSeries`, `CleanTombstones`, `Snapshot`) to every
    /// shard and waits for all; the first shard's failure is the answer. Appends still in an
    /// outbox go first, so a delete or a snapshot covers every batch pushed before it.
    pub async fn admin(&self, make: impl FnMut() -> ShardRequest) -> Result<(), RouterError> {
        for outbox in &self.outboxes {
            outbox.flush().await;
        }
        let replies = self.fan_out(make).await?;
        for (shard, r) in replies.into_iter().enumerate() {
            match r {
                ShardResponse::Admin(Ok(())) => {}
                ShardResponse::Admin(Err(reason)) => {
                    return Err(RouterError::Storage { shard, reason })
                }
                _ => return Err(RouterError::Protocol(shard)),
            }
        }
        Ok(())
    }

    /// No more requests: each shard finishes what it has queued, then closes. Call it once
    /// every append was answered (scrape loops stopped): appends still in an outbox are
    /// refused, never half sent.
    pub fn close(&self) {
        for outbox in &self.outboxes {
            outbox.close();
        }
        for link in &self.links {
            link.close();
        }
    }
}

/// The PromQL engine reads series through the router: one select fanned out to every shard.
impl crate::promql::source::SeriesSource for Router {
    async fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<crate::promql::source::RawSeries>, String> {
        Ok(Router::select(self, matchers, mint, maxt)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|s| crate::promql::source::RawSeries {
                labels: s.labels,
                points: s.points,
                start_timestamps: s.start_timestamps,
            })
            .collect())
    }

    fn shard_count(&self) -> usize {
        self.links.len()
    }

    async fn eval_leaf(
        &self,
        query: &crate::promql::leaf::LeafQuery,
    ) -> Result<crate::promql::leaf::LeafResult, crate::promql::QueryError> {
        let replies = self
            .fan_out(|| ShardRequest::EvalLeaf(Box::new(query.clone())))
            .await
            .map_err(|e| crate::promql::QueryError::Storage(e.to_string()))?;
        let parts = replies
            .into_iter()
            .enumerate()
            .map(|(shard, r)| match r {
                ShardResponse::EvalLeaf(result) => result,
                _ => Err(crate::promql::QueryError::Storage(
                    RouterError::Protocol(shard).to_string(),
                )),
            })
            .collect();
        crate::promql::leaf::merge(parts, query)
    }
}

/// Every shard's items in shard order, or the first shard's storage error; `take` gives a
/// reply's result, `None` for a reply of another kind.
fn collect_results<T>(
    replies: Vec<ShardResponse>,
    take: impl Fn(ShardResponse) -> Option<Result<Vec<T>, String>>,
) -> Result<Vec<T>, RouterError> {
    let mut out = Vec::new();
    for (shard, r) in replies.into_iter().enumerate() {
        match take(r) {
            Some(Ok(items)) => out.extend(items),
            Some(Err(reason)) => return Err(RouterError::Storage { shard, reason }),
            None => return Err(RouterError::Protocol(shard)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
