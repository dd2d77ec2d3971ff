//! Test data in real shards: each shard on its own glommio executor with its own directory,
//! reached through the router exactly as the server reaches them. `load` goes through the
//! router's append path; `clear` closes the shards and starts new, empty ones.
//!
//! Everything here runs on the router executor; `run_files` starts that executor, so the
//! caller needs no glommio of its own.

use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use glommio::channels::shared_channel;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder};
use shards::head::{AppendBatch, BatchSample, HeadOptions, SeriesKey};
use shards::label_generation::LabelGeneration;
use shards::shard::{Shard, ShardOptions};
use shards::wal::PageCacheFs;

use super::runner::{run_script, FileResults, LoadedSeries, TestStorage};
use crate::promql::engine::Engine;
use crate::router::protocol::{Envelope, Reply};
use crate::router::shard_link::ShardLink;
use crate::router::shard_service::ShardService;
use crate::router::Router;

/// Polls `f` again every few milliseconds as well as on its own wake-ups. Connecting the two
/// ends of a glommio shared channel sometimes misses the wake-up from the other executor
/// (observed here: one connect in a few hundred never returned while its peer had
/// connected); re-polling finds the connection made.
async fn keep_awake<T>(f: impl std::future::Future<Output = T>) -> T {
    futures_lite::future::or(f, async {
        loop {
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Requests queued per link.
const QUEUE: usize = 16;

/// Running shards and the router in front of them.
struct Cluster {
    _dir: tempfile::TempDir,
    router: Rc<Router>,
}

pub struct ShardStorage {
    shards: usize,
    cluster: Option<Cluster>,
    /// Shard executors, joined once the router executor is done.
    threads: Vec<ExecutorJoinHandle<()>>,
}

impl ShardStorage {
    pub fn new(shards: usize) -> Self {
        ShardStorage {
            shards,
            cluster: None,
            threads: Vec::new(),
        }
    }

    async fn start(&mut self) -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let mut ends = Vec::new();
        for i in 0..self.shards {
            let (req_tx, req_rx) = shared_channel::new_bounded::<Envelope>(QUEUE);
            let (rep_tx, rep_rx) = shared_channel::new_bounded::<Reply>(QUEUE);
            // Set by the shard before it connects, read by the router once connected.
            let labels = Arc::new(OnceLock::new());
            ends.push((req_tx, rep_rx, labels.clone()));
            let path = dir.path().join(format!("shard-{i:03}"));
            let opts = ShardOptions {
                // Test files give start timestamps (`@st` lines); the shards keep them as
                // Prometheus's test storage does, with start-timestamp storage on.
                head: HeadOptions {
                    reject_out_of_bounds: false,
                    store_start_timestamps: true,
                    ..HeadOptions::default()
                },
                snapshot_on_shutdown: false,
                ..ShardOptions::default()
            };
            // Test files load hours of data out of time order between load blocks; like
            // Prometheus's test storage, the shards keep it all in the head.
            let mut opts = opts;
            opts.compaction.enabled = false;
            let handle = LocalExecutorBuilder::default()
                .name(&format!("test-shard-{i}"))
                .spawn(move || async move {
                    if std::env::var_os("PROMQLTEST_TRACE").is_some() {
                        eprintln!("promqltest: shard {i} executor running");
                    }
                    let shard = match Shard::open(&path, opts, PageCacheFs, |_| {}).await {
                        Ok((shard, _)) => shard,
                        Err(e) => {
                            eprintln!("promqltest: shard {i}: {e}");
                            return;
                        }
                    };
                    let trace = std::env::var_os("PROMQLTEST_TRACE").is_some();
                    if trace {
                        eprintln!("promqltest: shard {i} open");
                    }
                    let _ = labels.set(shard.label_generation());
                    let requests = keep_awake(req_rx.connect()).await;
                    if trace {
                        eprintln!("promqltest: shard {i} requests connected");
                    }
                    let replies = keep_awake(rep_tx.connect()).await;
                    if trace {
                        eprintln!("promqltest: shard {i} serving");
                    }
                    let shard = ShardService::new(shard).serve(requests, replies).await;
                    if let Err(e) = shard.close().await {
                        eprintln!("promqltest: closing shard {i}: {e}");
                    }
                })
                .map_err(|e| format!("starting shard executor: {e}"))?;
            self.threads.push(handle);
        }
        let trace = std::env::var_os("PROMQLTEST_TRACE").is_some();
        let mut links = Vec::new();
        for (i, (req_tx, rep_rx, labels)) in ends.into_iter().enumerate() {
            if trace {
                eprintln!("promqltest: connecting shard {i}");
            }
            let requests = keep_awake(req_tx.connect()).await;
            if trace {
                eprintln!("promqltest: connected requests of shard {i}");
            }
            let replies = keep_awake(rep_rx.connect()).await;
            let labels = labels.get().cloned().unwrap_or_else(LabelGeneration::new);
            links.push(ShardLink::start(i, requests, replies, labels));
        }
        self.cluster = Some(Cluster {
            _dir: dir,
            router: Rc::new(Router::new(links)),
        });
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(c) = self.cluster.take() {
            c.router.close();
        }
    }

    /// Closes the shards and hands back their executors to join.
    pub fn shutdown(mut self) -> Vec<ExecutorJoinHandle<()>> {
        self.stop();
        std::mem::take(&mut self.threads)
    }
}

impl TestStorage for ShardStorage {
    type Source = Router;

    /// Start timestamps go with their samples into the shards.
    async fn load(&mut self, series: Vec<LoadedSeries>) -> Result<(), String> {
        if self.cluster.is_none() {
            self.start().await?;
        }
        let Some(c) = &self.cluster else {
            return Err("no shards".into());
        };
        let router = &c.router;
        let mut batches: Vec<AppendBatch> =
            (0..router.shards()).map(|_| Default::default()).collect();
        let mut samples: Vec<Vec<(BatchSample, i64)>> = vec![Vec::new(); router.shards()];
        for (labels, points, start_timestamps) in series {
            let shard = router.shard_of(labels.hash());
            let b = &mut batches[shard];
            b.new_series.push(labels);
            let key = SeriesKey::New(b.new_series.len() as u32 - 1);
            for (k, p) in points.into_iter().enumerate() {
                samples[shard].push((
                    BatchSample {
                        series: key,
                        t: p.t,
                        v: p.f,
                    },
                    start_timestamps.get(k).copied().unwrap_or(0),
                ));
            }
        }
        let mut pending = Vec::new();
        for (shard, (mut b, mut s)) in batches.into_iter().zip(samples).enumerate() {
            if b.new_series.is_empty() {
                continue;
            }
            // In time order across series, as a scrape would write them.
            s.sort_by_key(|(s, _)| s.t);
            if s.iter().any(|(_, st)| *st != 0) {
                b.start_timestamps = s.iter().map(|(_, st)| *st).collect();
            }
            b.samples = s.into_iter().map(|(s, _)| s).collect();
            let expected = b.samples.len();
            pending.push((
                shard,
                expected,
                router
                    .send_append(shard, b)
                    .await
                    .map_err(|e| e.to_string())?,
            ));
        }
        for (shard, expected, p) in pending {
            let out = Router::appended(shard, p)
                .await
                .map_err(|e| e.to_string())?;
            let taken = out.appended as usize + out.duplicates_ignored as usize;
            if taken != expected {
                return Err(format!(
                    "shard {shard} refused samples: {} out of order, {} out of bounds, {} duplicate timestamps",
                    out.out_of_order, out.out_of_bounds, out.duplicate_timestamp
                ));
            }
        }
        Ok(())
    }

    async fn clear(&mut self) -> Result<(), String> {
        self.stop();
        self.start().await
    }

    fn source(&self) -> &Router {
        match &self.cluster {
            Some(c) => &c.router,
            None => unreachable!("the runner clears (starts) the storage before any query"),
        }
    }
}

/// Runs `files` (name, text) on `shards` real shards, one router executor for all.
pub fn run_files(
    files: Vec<(String, String)>,
    shards: usize,
    engine: Engine,
    reference: Option<Engine>,
) -> Result<FileResults, String> {
    let handle = LocalExecutorBuilder::default()
        .name("test-router")
        .spawn(move || async move {
            let mut storage = ShardStorage::new(shards);
            let mut results = Vec::new();
            for (name, text) in files {
                let r = run_script(&text, &mut storage, &engine, reference.as_ref()).await;
                results.push((name, r));
            }
            (results, storage.shutdown())
        })
        .map_err(|e| format!("starting router executor: {e}"))?;
    let (results, threads) = handle.join().map_err(|e| format!("router executor: {e}"))?;
    for t in threads {
        t.join().map_err(|e| format!("shard executor: {e}"))?;
    }
    Ok(results)
}
