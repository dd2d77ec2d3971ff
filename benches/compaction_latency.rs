//! Append-batch latency during head compaction versus outside it (issue 4's target: p99
//! during compaction ≤ 2× outside). A shard with a 10-minute block range takes batches of
//! 10,000 samples for 100,000 series at 15 s intervals through `Shard::append`, WAL
//! included; compaction runs in its 2 ms steps after each batch, as in the server. Each
//! batch's latency is filed under "compacting" when a compaction was under way when it
//! started or ended. Prints p50/p99/max for both and the ratio of the p99s.
//!
//! `cargo bench --bench compaction_latency`

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use shards::head::{AppendBatch, BatchSample, HeadOptions, SeriesKey};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::wal::PageCacheFs;

const SERIES: usize = 100_000;
const BATCH: usize = 10_000;
const RANGE: i64 = 10 * 60 * 1000;
const STEPS: i64 = 200; // 50 minutes at 15 s: several compactions

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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let opts = ShardOptions {
                head: HeadOptions {
                    chunk_range: RANGE,
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
            let (mut quiet, mut busy) = (Vec::new(), Vec::new());
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
                    let before = shard.is_compacting();
                    let started = Instant::now();
                    shard.append(&b).await.unwrap();
                    let took = started.elapsed();
                    if before || shard.is_compacting() {
                        busy.push(took);
                    } else {
                        quiet.push(took);
                    }
                }
            }
            let stats = shard.compaction_stats().clone();
            shard.close().await.unwrap();
            let (q99, b99) = (pct(&mut quiet, 0.99), pct(&mut busy, 0.99));
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
