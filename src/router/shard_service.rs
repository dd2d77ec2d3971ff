//! The shard's side of the protocol: the loop a shard executor runs once its head is rebuilt,
//! answering the router's requests against the shard it owns.
//!
//! Appends that queued up while the previous WAL write was in flight are taken together and
//! written with one WAL write (group commit), so a busy shard does fewer, larger writes; the
//! router already sends the scrapes of a short window as one `AppendGroup`.
//! Reads run between appends on the same executor. Compaction, block compaction and
//! retention run beside this loop in the shard's low-share compaction queue
//! (`shards::compaction_queue`), which is why the shard sits behind a local `RwLock`: each
//! request and each compaction slice takes it in turn; nothing crosses executors. Admin
//! requests run in a task queue of their own (`shard_admin`), so the loop keeps serving
//! while one is under way; those that arrived before them are done first. It never parses
//! PromQL or HTTP: requests arrive as plain data.

use futures_lite::future::poll_once;
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use glommio::sync::RwLock;
use shards::compaction_queue::CompactionQueue;
use shards::head::{AppendBatch, Head};
use shards::index::matcher::Matcher;
use shards::label_generation::LabelScope;
use shards::labels::Labels;
use shards::shard::Shard;
use shards::value::is_stale_nan;

use super::protocol::{
    Envelope, LabelList, LatestSample, Reply, SelectedSeries, ShardRequest, ShardResponse,
    ShardStats, TsdbStatus,
};
use super::shard_admin;
use super::shard_leaf::{eval_leaf, head_alone_from};
use crate::flags::LogLevel;
use crate::log::log;
use crate::promql::value::FPoint;
use std::rc::Rc;

/// Batches taken from the queue for one WAL write at most (more when one message holds
/// more): bounds the latency of the first.
const MAX_GROUP: usize = 64;

/// Who gets the outcomes of a message's batches.
enum Asker {
    One(u64),
    Group(u64, usize),
}

impl Asker {
    fn batches(&self) -> usize {
        match self {
            Asker::One(_) => 1,
            Asker::Group(_, n) => *n,
        }
    }
}

/// Splits an append request into its batches and who asked; gives other requests back.
fn take_appends(
    env: Envelope,
    askers: &mut Vec<Asker>,
    batches: &mut Vec<AppendBatch>,
) -> Option<Envelope> {
    match env.request {
        ShardRequest::Append(b) => {
            askers.push(Asker::One(env.id));
            batches.push(b);
            None
        }
        ShardRequest::AppendGroup(group) => {
            askers.push(Asker::Group(env.id, group.len()));
            batches.extend(group);
            None
        }
        _ => Some(env),
    }
}

/// The admin queue's shares against the default queue's 1000 (the compaction queue has
/// 10): an admin request waits for an answer, so it gets more than compaction, but
/// appends and queries keep most of the core.
const ADMIN_SHARES: usize = 100;

/// Long read loops yield to the executor this often (series), so appends are not starved.
const YIELD_EVERY: usize = 1024;

/// `select` decodes whole chunks per series, so it yields far more often: every this many
/// series, or sooner once this many samples were decoded since the last yield.
const SELECT_YIELD_SERIES: usize = 32;
const SELECT_YIELD_SAMPLES: usize = 16 * 1024;

pub struct ShardService {
    shard: Rc<RwLock<Shard>>,
    /// Admin operations under way (each in its own task) and the one permit that runs them
    /// one at a time.
    admin_running: Rc<std::cell::Cell<usize>>,
    admin_turn: Rc<glommio::sync::Semaphore>,
    stats: ShardStats,
    /// Compaction and retention failures already logged.
    logged_failures: (u64, u64, u64),
}

/// The lock is never closed while the service owns the shard.
pub(super) const LOCK_OPEN: &str = "the shard lock is never closed";

impl ShardService {
    pub fn new(shard: Shard) -> Self {
        ShardService {
            shard: Rc::new(RwLock::new(shard)),
            admin_running: Rc::new(std::cell::Cell::new(0)),
            admin_turn: Rc::new(glommio::sync::Semaphore::new(1)),
            stats: ShardStats::default(),
            logged_failures: (0, 0, 0),
        }
    }

    /// Serves until the router closes its sender, then stops the compaction queue (after
    /// its step under way) and hands the shard back for closing, which finishes a
    /// compaction left half-way.
    pub async fn serve(
        mut self,
        requests: ConnectedReceiver<Envelope>,
        replies: ConnectedSender<Reply>,
    ) -> Shard {
        let queue = match CompactionQueue::spawn(self.shard.clone()) {
            Ok(q) => {
                let mut shard = self.shard.write().await.expect(LOCK_OPEN);
                shard.set_compaction_after_appends(false);
                Some(q)
            }
            Err(e) => {
                log(
                    LogLevel::Error,
                    "tsdb",
                    "cannot start the compaction queue; compacting after appends instead",
                    &[("err", &e)],
                );
                None
            }
        };
        let driven = queue.is_some();
        self.serve_requests(requests, replies, driven).await;
        // Admin operations under way finish (their replies may no longer be delivered).
        while self.admin_running.get() > 0 {
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
        if let Some(q) = queue {
            q.stop().await;
        }
        match Rc::try_unwrap(self.shard) {
            Ok(lock) => lock.into_inner().expect(LOCK_OPEN),
            Err(_) => unreachable!("the compaction queue has stopped and dropped its handle"),
        }
    }

    async fn serve_requests(
        &mut self,
        requests: ConnectedReceiver<Envelope>,
        replies: ConnectedSender<Reply>,
        driven: bool,
    ) {
        let replies = Rc::new(replies);
        let admin_queue = glommio::executor().create_task_queue(
            glommio::Shares::Static(ADMIN_SHARES),
            glommio::Latency::NotImportant,
            "admin",
        );
        let mut next = None;
        let mut askers = Vec::with_capacity(MAX_GROUP);
        let mut batches: Vec<AppendBatch> = Vec::with_capacity(MAX_GROUP);
        loop {
            let env = match next.take() {
                Some(env) => env,
                None => match requests.recv().await {
                    Some(env) => env,
                    None => break,
                },
            };
            if let Some(Envelope { id, request }) = take_appends(env, &mut askers, &mut batches) {
                if shard_admin::is_admin(&request) {
                    self.spawn_admin(id, request, driven, &replies, admin_queue);
                    continue;
                }
                let response = self.answer(request).await;
                if replies.send(Reply { id, response }).await.is_err() {
                    break;
                }
                continue;
            }
            while batches.len() < MAX_GROUP {
                match poll_once(requests.recv()).await {
                    Some(Some(env)) => {
                        if let Some(other) = take_appends(env, &mut askers, &mut batches) {
                            next = Some(other);
                            break;
                        }
                    }
                    Some(None) | None => break,
                }
            }
            let lock = self.shard.clone();
            let mut shard = lock.write().await.expect(LOCK_OPEN);
            let outcomes = shard.append_many(&batches).await;
            self.log_storage_failures(&shard);
            drop(shard);
            self.stats.wal_writes += 1;
            self.stats.batches_appended += batches.len() as u64;
            let mut closed = false;
            match outcomes {
                Ok(outcomes) => {
                    let mut outcomes = outcomes.into_iter();
                    for asker in askers.drain(..) {
                        let (id, response) = match asker {
                            Asker::One(id) => {
                                let o = outcomes.next().unwrap_or_default();
                                (id, ShardResponse::Appended(Ok(o)))
                            }
                            Asker::Group(id, n) => {
                                let group = outcomes.by_ref().take(n).collect();
                                (id, ShardResponse::AppendedGroup(Ok(group)))
                            }
                        };
                        closed |= replies.send(Reply { id, response }).await.is_err();
                    }
                }
                Err(e) => {
                    self.stats.append_errors +=
                        askers.iter().map(Asker::batches).sum::<usize>() as u64;
                    let text = e.to_string();
                    for asker in askers.drain(..) {
                        let (id, response) = match asker {
                            Asker::One(id) => (id, ShardResponse::Appended(Err(text.clone()))),
                            Asker::Group(id, _) => {
                                (id, ShardResponse::AppendedGroup(Err(text.clone())))
                            }
                        };
                        closed |= replies.send(Reply { id, response }).await.is_err();
                    }
                }
            }
            askers.clear();
            batches.clear();
            if closed {
                break;
            }
        }
    }

    /// Runs an admin request in its own task; its reply is sent when it is done.
    fn spawn_admin(
        &self,
        id: u64,
        request: ShardRequest,
        driven: bool,
        replies: &Rc<ConnectedSender<Reply>>,
        queue: glommio::TaskQueueHandle,
    ) {
        let (shard, replies) = (self.shard.clone(), replies.clone());
        let (running, turn) = (self.admin_running.clone(), self.admin_turn.clone());
        running.set(running.get() + 1);
        let task = async move {
            // The semaphore is never closed.
            if let Ok(_turn) = turn.acquire_permit(1).await {
                let response = shard_admin::run(&shard, request, driven).await;
                // A closed channel: the router is gone, nobody waits for the answer.
                let _ = replies.send(Reply { id, response }).await;
            }
            running.set(running.get() - 1);
        };
        match glommio::spawn_local_into(task, queue) {
            Ok(t) => {
                t.detach();
            }
            // The queue was made by this executor: it exists as long as the loop runs.
            Err(_) => unreachable!("the admin queue belongs to this executor"),
        }
    }

    /// Compaction and retention run after appends and never fail them (a full disk leaves
    /// the data as it was and is retried): each new failure is logged here, once.
    fn log_storage_failures(&mut self, shard: &Shard) {
        let (c, r) = (shard.compaction_stats(), shard.retention_stats());
        let dir = shard.dir().display().to_string();
        if c.failures > self.logged_failures.0 {
            let err = c.last_error.as_deref().unwrap_or("");
            log(
                LogLevel::Error,
                "tsdb",
                "compaction failed",
                &[("dir", &dir), ("err", &err)],
            );
        }
        if r.failures > self.logged_failures.1 {
            let err = r.last_error.as_deref().unwrap_or("");
            log(
                LogLevel::Error,
                "tsdb",
                "deleting blocks beyond retention failed",
                &[("dir", &dir), ("err", &err)],
            );
        }
        self.logged_failures.0 = c.failures;
        self.logged_failures.1 = r.failures;
    }

    async fn answer(&mut self, request: ShardRequest) -> ShardResponse {
        let lock = self.shard.clone();
        let shard = lock.read().await.expect(LOCK_OPEN);
        let shard = &*shard;
        let head = shard.head();
        match request {
            ShardRequest::Append(_) | ShardRequest::AppendGroup(_) => {
                unreachable!("appends are grouped by the serve loop")
            }
            ShardRequest::Series {
                matchers,
                mint,
                maxt,
            } => ShardResponse::Series(if head_alone_from(shard, mint) {
                Ok(series(head, &matchers, mint, maxt).await)
            } else {
                merged_series(shard, &matchers, mint, maxt)
            }),
            ShardRequest::LabelNames {
                matchers,
                mint,
                maxt,
            } => ShardResponse::LabelNames(
                shard
                    .querier(mint, maxt)
                    .label_names(&matchers)
                    .map(|list| LabelList {
                        list,
                        sources: shard.label_sources(
                            LabelScope::of(None, matchers.is_empty()),
                            mint,
                            maxt,
                        ),
                    })
                    .map_err(|e| e.to_string()),
            ),
            ShardRequest::LabelValues {
                name,
                matchers,
                mint,
                maxt,
            } => ShardResponse::LabelValues(
                shard
                    .querier(mint, maxt)
                    .label_values(&name, &matchers)
                    .map(|list| LabelList {
                        list,
                        sources: shard.label_sources(
                            LabelScope::of(Some(&name), matchers.is_empty()),
                            mint,
                            maxt,
                        ),
                    })
                    .map_err(|e| e.to_string()),
            ),
            ShardRequest::Latest {
                matchers,
                at,
                lookback,
            } => ShardResponse::Latest(if head_alone_from(shard, at - lookback + 1) {
                latest(head, &matchers, at, lookback).await
            } else {
                merged_latest(shard, &matchers, at, lookback).await
            }),
            ShardRequest::Select {
                matchers,
                mint,
                maxt,
            } => ShardResponse::Select(if head_alone_from(shard, mint) {
                select(head, &matchers, mint, maxt).await
            } else {
                merged_select(shard, &matchers, mint, maxt).await
            }),
            ShardRequest::EvalLeaf(q) => ShardResponse::EvalLeaf(eval_leaf(shard, &q).await),
            ShardRequest::Stats => {
                let mut stats = self.stats.clone();
                stats.head = head.stats.clone();
                stats.series = head.num_series() as u64;
                stats.time_range = head.time_range();
                stats.heap_bytes = head.heap_bytes() as u64;
                stats.wal_segment = shard.wal_position().segment;
                stats.wal_failed = shard.is_failed();
                stats.blocks = shard.blocks().len() as u64;
                stats.block_bytes = shard.blocks().iter().map(|b| b.size()).sum();
                stats.compaction = shard.compaction_stats().clone();
                stats.block_compaction = shard.block_compaction_stats().clone();
                stats.retention = shard.retention_stats().clone();
                ShardResponse::Stats(Box::new(stats))
            }
            ShardRequest::TsdbStatus => ShardResponse::TsdbStatus(Box::new(tsdb_status(head))),
            ShardRequest::DeleteSeries { .. }
            | ShardRequest::CleanTombstones
            | ShardRequest::Snapshot { .. } => {
                unreachable!("admin requests run in their own task (shard_admin)")
            }
        }
    }
}

/// Label sets of the matching series in head and blocks with samples in `[mint, maxt]`.
fn merged_series(
    shard: &Shard,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
) -> Result<Vec<Labels>, String> {
    let q = shard.querier(mint, maxt);
    q.select(matchers)
        .map(|v| v.into_iter().map(|s| s.labels).collect())
        .map_err(|e| e.to_string())
}

/// `select` over head and blocks: series merged by labels, overlapping samples once.
async fn merged_select(
    shard: &Shard,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
) -> Result<Vec<SelectedSeries>, String> {
    let q = shard.querier(mint, maxt);
    let selected = q.select(matchers).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(selected.len());
    let mut since_yield = (0usize, 0usize);
    for s in selected {
        if since_yield.0 >= SELECT_YIELD_SERIES || since_yield.1 >= SELECT_YIELD_SAMPLES {
            glommio::executor().yield_if_needed().await;
            since_yield = (0, 0);
        }
        since_yield.0 += 1;
        let samples = q.samples_with_starts(&s).map_err(|e| e.to_string())?;
        let points: Vec<FPoint> = samples.iter().map(|&(t, f, _)| FPoint { t, f }).collect();
        let start_timestamps = if samples.iter().any(|s| s.2 != 0) {
            samples.iter().map(|s| s.2).collect()
        } else {
            Vec::new()
        };
        since_yield.1 += points.len();
        if !points.is_empty() {
            out.push(SelectedSeries {
                labels: s.labels,
                points,
                start_timestamps,
            });
        }
    }
    Ok(out)
}

/// `latest` over head and blocks, for instants whose lookback reaches into compacted data.
async fn merged_latest(
    shard: &Shard,
    matchers: &[Matcher],
    at: i64,
    lookback: i64,
) -> Result<Vec<LatestSample>, String> {
    Ok(merged_select(shard, matchers, at - lookback + 1, at)
        .await?
        .into_iter()
        .filter_map(|s| {
            let p = s.points.last()?;
            (!is_stale_nan(p.f)).then_some(LatestSample {
                labels: s.labels,
                t: p.t,
                v: p.f,
            })
        })
        .collect())
}

fn tsdb_status(head: &Head) -> TsdbStatus {
    let (symbols, postings) = (head.symbols(), head.postings());
    let mut pairs = Vec::new();
    for name in postings.label_names(symbols) {
        let Some(n) = symbols.lookup(name) else {
            continue;
        };
        for value in postings.label_values(symbols, name) {
            if let Some(v) = symbols.lookup(value) {
                let count = postings.postings(n, v).len() as u64;
                pairs.push((name.to_owned(), value.to_owned(), count));
            }
        }
    }
    let chunk_count = head
        .series_refs()
        .filter_map(|r| head.series(r))
        .map(|s| s.mmapped_chunks().len() as u64 + u64::from(s.head_chunk().is_some()))
        .sum();
    TsdbStatus {
        num_series: head.num_series() as u64,
        chunk_count,
        time_range: head.time_range(),
        pairs,
    }
}

async fn series(head: &Head, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
    let refs = head.select(matchers);
    let mut out = Vec::new();
    for (i, r) in refs.into_iter().enumerate() {
        if i % YIELD_EVERY == YIELD_EVERY - 1 {
            glommio::executor().yield_if_needed().await;
        }
        let Some(s) = head.series(r) else { continue };
        let overlaps = match (s.min_time(), s.max_time()) {
            (Some(lo), Some(hi)) => lo <= maxt && hi >= mint,
            _ => false,
        };
        if overlaps {
            if let Some(l) = head.series_labels(r) {
                out.push(l);
            }
        }
    }
    out
}

async fn latest(
    head: &Head,
    matchers: &[Matcher],
    at: i64,
    lookback: i64,
) -> Result<Vec<LatestSample>, String> {
    let refs = head.select(matchers);
    let mut out = Vec::new();
    for (i, r) in refs.into_iter().enumerate() {
        if i % YIELD_EVERY == YIELD_EVERY - 1 {
            glommio::executor().yield_if_needed().await;
        }
        let newest = match head.series(r).and_then(|s| s.last_sample()) {
            // The common case, an up-to-date series: no chunk needs decoding, unless a
            // delete may have hidden its newest sample.
            Some((t, v)) if t <= at && head.series_tombstones(r).is_empty() => Some((t, v)),
            Some(_) => {
                let mut it = head
                    .samples(r, at - lookback + 1, at)
                    .map_err(|e| e.to_string())?;
                let mut last = None;
                while let Some(s) = it.next_checked().map_err(|e| e.to_string())? {
                    last = Some(s);
                }
                last
            }
            None => None,
        };
        let Some((t, v)) = newest else { continue };
        if t <= at - lookback || is_stale_nan(v) {
            continue;
        }
        if let Some(labels) = head.series_labels(r) {
            out.push(LatestSample { labels, t, v });
        }
    }
    Ok(out)
}

async fn select(
    head: &Head,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
) -> Result<Vec<SelectedSeries>, String> {
    let refs = head.select(matchers);
    let mut out = Vec::new();
    let mut since_yield = (0usize, 0usize);
    for r in refs {
        if since_yield.0 >= SELECT_YIELD_SERIES || since_yield.1 >= SELECT_YIELD_SAMPLES {
            glommio::executor().yield_if_needed().await;
            since_yield = (0, 0);
        }
        since_yield.0 += 1;
        if !head.series(r).is_some_and(|s| s.overlaps(mint, maxt)) {
            continue;
        }
        let mut it = head.samples(r, mint, maxt).map_err(|e| e.to_string())?;
        let mut points = Vec::new();
        // Filled only once a start timestamp shows up, then padded for the points before.
        let mut start_timestamps = Vec::new();
        while let Some((t, f)) = it.next_checked().map_err(|e| e.to_string())? {
            let st = it.start_timestamp();
            if st != 0 && start_timestamps.is_empty() {
                start_timestamps.resize(points.len(), 0);
            }
            if st != 0 || !start_timestamps.is_empty() {
                start_timestamps.push(st);
            }
            points.push(FPoint { t, f });
        }
        since_yield.1 += points.len();
        if points.is_empty() {
            continue;
        }
        if let Some(labels) = head.series_labels(r) {
            out.push(SelectedSeries {
                labels,
                points,
                start_timestamps,
            });
        }
    }
    Ok(out)
}
