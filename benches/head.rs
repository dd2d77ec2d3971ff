//! Appending to the head, without and with the WAL:
//! - `head/append_existing`: one scrape-like batch of 10,000 samples to existing series,
//!   through `prepare` + `commit` (validation, WAL record encoding, XOR append, chunk cuts
//!   written to chunks_head) — the per-core work of ingestion minus the WAL write;
//! - `shard/append_existing`: the same through `Shard::append` on a glommio executor,
//!   with the WAL write (through the page cache) of every batch;
//! - `head/append_new_series`: batches that create 10,000 series each.

// The server's allocator, so that the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::cell::Cell;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shards::head::{AppendBatch, BatchSample, Head, HeadOptions, Prepared, SeriesKey};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::wal::PageCacheFs;

const SERIES: usize = 10_000;

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("metric_{}", i % 100)),
        ("instance", format!("host-{}:9100", i / 100)),
        ("job", "node".to_string()),
        ("cpu", (i % 8).to_string()),
    ])
    .unwrap()
}

fn batch_for(refs: &[u64], t: i64) -> AppendBatch {
    AppendBatch {
        new_series: vec![],
        samples: refs
            .iter()
            .enumerate()
            .map(|(i, &r)| BatchSample {
                series: SeriesKey::Ref(r),
                t,
                v: (t / 1000) as f64 + i as f64,
            })
            .collect(),
        start_timestamps: Vec::new(),
    }
}

/// The batch that creates the `SERIES` series, one sample each at t = 0.
fn first_batch() -> AppendBatch {
    AppendBatch {
        new_series: (0..SERIES).map(labels).collect(),
        samples: (0..SERIES)
            .map(|i| BatchSample {
                series: SeriesKey::New(i as u32),
                t: 0,
                v: 0.0,
            })
            .collect(),
        start_timestamps: Vec::new(),
    }
}

fn seeded_head(dir: &std::path::Path) -> (Head, Vec<u64>) {
    let (mut head, _) = Head::open(dir, HeadOptions::default()).unwrap();
    let out = head.append_unlogged(&first_batch()).unwrap();
    (head, out.series_refs)
}

fn bench_head(c: &mut Criterion) {
    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Elements(SERIES as u64));
    let dir = tempfile::tempdir().unwrap();
    let (mut head, refs) = seeded_head(dir.path());
    let mut t = 0i64;
    let mut batch = batch_for(&refs, 0);
    let mut p = Prepared::default();
    g.bench_function("append_existing", |b| {
        b.iter(|| {
            t += 15_000;
            for s in &mut batch.samples {
                s.t = t;
                s.v += 1.0;
            }
            head.prepare(&batch, &mut p).unwrap();
            std::hint::black_box(head.commit(&mut p).unwrap());
        })
    });
    let dir2 = tempfile::tempdir().unwrap();
    let (mut head2, _) = Head::open(dir2.path(), HeadOptions::default()).unwrap();
    let mut next = 0usize;
    g.bench_function("append_new_series", |b| {
        b.iter_batched(
            || {
                let start = next;
                next += SERIES;
                AppendBatch {
                    new_series: (start..start + SERIES)
                        .map(|i| {
                            Labels::from_pairs([("__name__", "churn"), ("id", &i.to_string())])
                                .unwrap()
                        })
                        .collect(),
                    samples: (0..SERIES)
                        .map(|i| BatchSample {
                            series: SeriesKey::New(i as u32),
                            t: 1000,
                            v: 1.0,
                        })
                        .collect(),
                    start_timestamps: Vec::new(),
                }
            },
            |batch| std::hint::black_box(head2.append_unlogged(&batch).unwrap()),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench_shard(c: &mut Criterion) {
    let mut g = c.benchmark_group("shard");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.sample_size(20);
    g.bench_function("append_existing", |b| {
        b.iter_custom(|iters| {
            glommio::LocalExecutorBuilder::default()
                .spawn(move || async move {
                    let dir = tempfile::tempdir().unwrap();
                    let (mut shard, _) =
                        Shard::open(dir.path(), ShardOptions::default(), PageCacheFs, |_| {})
                            .await
                            .unwrap();
                    let refs = shard.append(&first_batch()).await.unwrap().series_refs;
                    let t = Cell::new(0i64);
                    let mut batch = batch_for(&refs, 0);
                    let start = Instant::now();
                    for _ in 0..iters {
                        t.set(t.get() + 15_000);
                        for s in &mut batch.samples {
                            s.t = t.get();
                        }
                        std::hint::black_box(shard.append(&batch).await.unwrap());
                    }
                    let d: Duration = start.elapsed();
                    shard.close().await.unwrap();
                    d
                })
                .unwrap()
                .join()
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_head, bench_shard);
criterion_main!(benches);
