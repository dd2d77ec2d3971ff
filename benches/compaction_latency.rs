//! Append-batch latency during head compaction versus outside it (issue 4's target: p99
//! during compaction ≤ 2× outside). A shard with a 10-minute block range holds 100,000
//! series; batches of 10,000 samples (15 s apart in sample time) arrive on a fixed wall-clock
//! schedule, one every `INTERVAL`, as scrapes do, and go through `Shard::append_many`, WAL
//! included. Compaction runs as in the server: in the shard's low-share compaction queue
//! (`shards::compaction_queue`), the shard behind the same `RwLock` as the server's request
//! loop. A batch's latency is measured from its scheduled arrival to its acknowledgement, so
//! a stall also counts against the batches queued behind it; it is filed under "compacting"
//! when a head compaction was under way when it arrived or when it was acknowledged. The
//! run spans `COMPACTIONS` (10) head compactions, about three minutes, so that the p99 of
//! the batches during compaction rests on more than a hundred of them. Block merges are
//! off (maximum block duration = the block range), as they never happened in the two
//! compactions the bench used to span: their stalls would land among the batches outside
//! head compaction and flatter the ratio.
//!
//! `--merges` turns block merges on (Prometheus's default maximum block duration): the
//! 10-minute blocks of 100,000 series are merged three at a time into 30-minute blocks,
//! and three of those into a 90-minute block, while batches keep arriving. "During" then
//! means during a head compaction or a block merge (the removal of its parents included),
//! and the batches during merges alone are also reported apart.
//!
//! `--inline` runs the old way instead, a compaction step after each append batch (no
//! queue), for comparison on the same schedule.
//!
//! `cargo bench --bench compaction_latency [-- --inline] [-- --merges]`

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::sync::RwLock;
use shards::compact::CompactionOptions;
use shards::compaction_queue::CompactionQueue;
use shards::head::{AppendBatch, BatchSample, HeadOptions, SeriesKey};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::wal::PageCacheFs;

const SERIES: usize = 100_000;
const BATCH: usize = 10_000;
const RANGE: i64 = 10 * 60 * 1000;
/// Samples are 15 s apart: a block range is this many batches of every series.
const STEPS_PER_RANGE: i64 = RANGE / 15_000;
/// Head compactions in a run, so that the "during" class holds well over 100 batches (with
/// two compactions it held about 20 and its p99 was its maximum).
const COMPACTIONS: i64 = 10;
/// The first compaction starts once the head spans 1.5 ranges, then one per range; the
/// last is given half a range to finish.
const STEPS: i64 =
    STEPS_PER_RANGE * 3 / 2 + 1 + STEPS_PER_RANGE * (COMPACTIONS - 1) + STEPS_PER_RANGE / 2;
/// One batch arrives this often: 250,000 samples/s, within what one shard appends on a loaded
/// machine (a schedule it cannot keep makes every latency grow without bound).
const INTERVAL: Duration = Duration::from_millis(40);

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("metric_{}", i % 100)),
        ("instance", format!("host-{}:9100", i / 100)),
        ("job", "node".to_string()),
    ])
    .unwrap()
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let inline = std::env::args().any(|a| a == "--inline");
    let merges = std::env::args().any(|a| a == "--merges");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let opts = ShardOptions {
                head: HeadOptions {
                    chunk_range: RANGE,
                    ..Default::default()
                },
                compaction: CompactionOptions {
                    max_block_duration: if merges {
                        CompactionOptions::default().max_block_duration
                    } else {
                        RANGE
                    },
                    ..Default::default()
                },
                ..Default::default()
            };
            let (mut shard, _) = Shard::open(&path, opts, PageCacheFs, |_| {}).await.unwrap();
            let mut refs = vec![0u64; SERIES];
            for start in (0..SERIES).step_by(BATCH) {
                let b = AppendBatch {
                    new_series: (start..start + BATCH).map(labels).collect(),
                    samples: (0..BATCH)
                        .map(|i| BatchSample {
                            series: SeriesKey::New(i as u32),
                            t: 0,
                            v: 0.0,
                        })
                        .collect(),
                    start_timestamps: Vec::new(),
                };
                let out = shard.append(&b).await.unwrap();
                refs[start..start + BATCH].copy_from_slice(&out.series_refs);
            }
            shard.set_compaction_after_appends(inline);
            let shard = Rc::new(RwLock::new(shard));
            let queue = (!inline).then(|| CompactionQueue::spawn(shard.clone()).unwrap());
            let (mut quiet, mut busy, mut merging) = (Vec::new(), Vec::new(), Vec::new());
            let begin = Instant::now();
            let mut n = 0u32;
            for k in 1..STEPS {
                let t = k * 15_000;
                for chunk in refs.chunks(BATCH) {
                    let b = AppendBatch {
                        new_series: vec![],
                        samples: chunk
                            .iter()
                            .map(|&r| BatchSample {
                                series: SeriesKey::Ref(r),
                                t,
                                v: (k as f64) * 1.5 + r as f64,
                            })
                            .collect(),
                        start_timestamps: Vec::new(),
                    };
                    let arrival = begin + INTERVAL * n;
                    n += 1;
                    if let Some(wait) = arrival.checked_duration_since(Instant::now()) {
                        glommio::timer::sleep(wait).await;
                    }
                    let state =
                        |s: &Shard<PageCacheFs>| (s.is_compacting(), s.is_compacting_or_merging());
                    let before = state(&shard.read().await.unwrap());
                    let mut s = shard.write().await.unwrap();
                    s.append(&b).await.unwrap();
                    let took = arrival.elapsed();
                    let after = state(&s);
                    let (head, any) = (before.0 || after.0, before.1 || after.1);
                    if head || any {
                        busy.push(took);
                        if !head {
                            merging.push(took);
                        }
                    } else {
                        quiet.push(took);
                    }
                }
            }
            if let Some(q) = queue {
                q.stop().await;
            }
            let Ok(shard) = Rc::try_unwrap(shard) else {
                panic!("the compaction queue has stopped")
            };
            let shard = shard.into_inner().unwrap();
            let stats = shard.compaction_stats().clone();
            let merged = shard.block_compaction_stats().clone();
            shard.close().await.unwrap();
            let (q99, b99) = (pct(&mut quiet, 0.99), pct(&mut busy, 0.99));
            println!(
                "mode: {}, merges {}, one batch of {BATCH} samples every {INTERVAL:?}",
                if inline {
                    "inline (a step after each append)"
                } else {
                    "compaction queue"
                },
                if merges { "on" } else { "off" }
            );
            println!(
                "batches outside compaction: {} (p50 {:?}, p99 {q99:?}, max {:?})",
                quiet.len(),
                pct(&mut quiet, 0.5),
                quiet.last().copied().unwrap_or_default()
            );
            println!(
                "batches during compaction:  {} (p50 {:?}, p99 {b99:?}, max {:?})",
                busy.len(),
                pct(&mut busy, 0.5),
                busy.last().copied().unwrap_or_default()
            );
            if merges {
                let m99 = pct(&mut merging, 0.99);
                println!(
                    "  of which during merges alone: {} (p50 {:?}, p99 {m99:?}, max {:?}); \
                     merges {}, parents deleted {}, merge failures {}, merging took {:.1} s in all",
                    merging.len(),
                    pct(&mut merging, 0.5),
                    merging.last().copied().unwrap_or_default(),
                    merged.compactions,
                    merged.parents_deleted,
                    merged.failures,
                    merged.durations.sum_seconds,
                );
            }
            println!(
                "p99 ratio during/outside: {:.2}; blocks written {}, checkpoints {}, failures {}",
                b99.as_secs_f64() / q99.as_secs_f64().max(1e-9),
                stats.blocks_written,
                stats.checkpoints,
                stats.failures
            );
        })
        .unwrap()
        .join()
        .unwrap();
}
