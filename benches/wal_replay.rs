//! Start-up speed of one shard.
//!
//! WAL replay: 50,000 series x 250 samples (12.5 M samples) written through
//! `Shard::append`, then the shard reopened as after a crash (no snapshot):
//! - `full`: chunks_head removed, so every sample is decoded from the WAL and appended;
//! - `with_chunks_head`: Prometheus's normal crash restart, where samples already in
//!   chunks_head are skipped and only open chunks are rebuilt.
//!
//! Throughput is WAL samples per second.
//!
//! Snapshot restart: 1,000,000 series with an open chunk each, closed cleanly (snapshot
//! written), then reopened, in one shard or split over two shards opened in parallel on
//! their own cores as the server does: `restart_1M_series_N_shards` is the wall time of
//! every `Shard::open`.

// The server's allocator, so that the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shards::head::{AppendBatch, BatchSample, SeriesKey};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::wal::PageCacheFs;

const SERIES: usize = 50_000;
const SAMPLES: usize = 250;
/// Series of the snapshot restart.
const SNAPSHOT_SERIES: usize = 1_000_000;

fn on_executor<T, F, Fut>(f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn write(dir: &Path) {
    let dir = dir.to_path_buf();
    on_executor(move || async move {
        let (mut shard, _) = Shard::open(&dir, ShardOptions::default(), PageCacheFs, |_| {})
            .await
            .unwrap();
        let first = AppendBatch {
            new_series: (0..SERIES)
                .map(|i| {
                    Labels::from_pairs([
                        ("__name__", "replay_metric"),
                        ("id", &i.to_string()),
                        ("job", "bench"),
                    ])
                    .unwrap()
                })
                .collect(),
            samples: (0..SERIES)
                .map(|i| BatchSample {
                    series: SeriesKey::New(i as u32),
                    t: 0,
                    v: 0.0,
                })
                .collect(),
            start_timestamps: Vec::new(),
        };
        let refs = shard.append(&first).await.unwrap().series_refs;
        for k in 1..SAMPLES as i64 {
            for part in refs.chunks(10_000) {
                let b = AppendBatch {
                    new_series: vec![],
                    samples: part
                        .iter()
                        .map(|&r| BatchSample {
                            series: SeriesKey::Ref(r),
                            t: k * 15_000,
                            v: (k * 3) as f64,
                        })
                        .collect(),
                    start_timestamps: Vec::new(),
                };
                shard.append(&b).await.unwrap();
            }
        }
        shard.sync().await.unwrap();
        std::mem::forget(shard); // as after a crash: no snapshot
    });
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

fn replay_once(src: &Path, keep_chunks_head: bool) -> Duration {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shard");
    copy_dir(src, &dir);
    if !keep_chunks_head {
        std::fs::remove_dir_all(dir.join("chunks_head")).unwrap();
    }
    on_executor(move || async move {
        let start = Instant::now();
        let (shard, report) = Shard::open(&dir, ShardOptions::default(), PageCacheFs, |_| {})
            .await
            .unwrap();
        let d = start.elapsed();
        assert_eq!(shard.head().num_series(), SERIES);
        assert!(report.replay.samples + report.replay.samples_skipped >= (SERIES * SAMPLES) as u64);
        std::mem::forget(shard);
        drop(tmp);
        d
    })
}

fn bench(c: &mut Criterion) {
    let src = tempfile::tempdir().unwrap();
    write(src.path());
    let mut g = c.benchmark_group("wal_replay");
    g.throughput(Throughput::Elements((SERIES * SAMPLES) as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for (name, keep) in [("full", false), ("with_chunks_head", true)] {
        let src = src.path().to_path_buf();
        g.bench_function(name, move |b| {
            b.iter_custom(|iters| (0..iters).map(|_| replay_once(&src, keep)).sum())
        });
    }
    g.finish();
}

/// Writes series `range` into a shard at `dir` and closes it cleanly (snapshot).
fn write_snapshot_shard(dir: &Path, range: std::ops::Range<usize>) {
    let dir = dir.to_path_buf();
    on_executor(move || async move {
        let opts = ShardOptions {
            snapshot_on_shutdown: true,
            ..Default::default()
        };
        let (mut shard, _) = Shard::open(&dir, opts, PageCacheFs, |_| {}).await.unwrap();
        let ids: Vec<usize> = range.collect();
        for part in ids.chunks(100_000) {
            let b = AppendBatch {
                new_series: part
                    .iter()
                    .map(|&i| {
                        Labels::from_pairs([
                            ("__name__", format!("snap_metric_{}", i % 200)),
                            ("instance", format!("host-{}:9100", i / 1000)),
                            ("job", "bench".to_string()),
                            ("id", i.to_string()),
                        ])
                        .unwrap()
                    })
                    .collect(),
                samples: (0..part.len())
                    .map(|i| BatchSample {
                        series: SeriesKey::New(i as u32),
                        t: 1000,
                        v: i as f64,
                    })
                    .collect(),
                start_timestamps: Vec::new(),
            };
            shard.append(&b).await.unwrap();
        }
        shard.close().await.unwrap();
    });
}

/// Opens copies of `shards` on one pinned executor each, in parallel, as the server does at
/// start-up; returns the wall time until the last one is open.
fn restore_parallel(shards: &[std::path::PathBuf]) -> Duration {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = shards
        .iter()
        .enumerate()
        .map(|(i, src)| {
            let dir = tmp.path().join(format!("shard-{i:03}"));
            copy_dir(src, &dir);
            dir
        })
        .collect();
    let start = Instant::now();
    let handles: Vec<_> = dirs
        .into_iter()
        .enumerate()
        .map(|(i, dir)| {
            glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(i))
                .spawn(move || async move {
                    let opts = ShardOptions {
                        snapshot_on_shutdown: true,
                        ..Default::default()
                    };
                    let (shard, report) =
                        Shard::open(&dir, opts, PageCacheFs, |_| {}).await.unwrap();
                    assert!(report.snapshot.is_some());
                    let n = shard.head().num_series();
                    std::mem::forget(shard);
                    n
                })
                .unwrap()
        })
        .collect();
    let series: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let d = start.elapsed();
    assert_eq!(series, SNAPSHOT_SERIES);
    d
}

fn bench_snapshot(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for shards in [1, cores.min(2)] {
        let src = tempfile::tempdir().unwrap();
        let per = SNAPSHOT_SERIES / shards;
        let dirs: Vec<_> = (0..shards)
            .map(|i| {
                let d = src.path().join(format!("src-{i}"));
                write_snapshot_shard(&d, i * per..(i + 1) * per);
                d
            })
            .collect();
        g.bench_function(format!("restart_1M_series_{shards}_shards"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| restore_parallel(&dirs)).sum())
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_snapshot);
criterion_main!(benches);
