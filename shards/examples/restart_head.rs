//! Start-up time of one shard holding what `loadgen bench` leaves in each of promcore's two
//! shards: 100,000 series of scrape-shaped labels with a few minutes of samples, reopened
//! after a clean close (head snapshot) and after a crash (WAL replay over chunks_head).
//!
//! `cargo run --release -p shards --example restart_head [series] [samples] [clean|crash] [reopens]` prints the
//! duration of each `Shard::open`; `restart_head dir PATH [reopens]` reopens an existing shard
//! directory instead (a copy: a crash restart's repairs change it), as `perf stat` of one
//! shard's rebuild without the other shard or the server around it. It is a measurement, not a test: it checks only that the
//! reopened head holds every series.

use std::path::Path;
use std::time::{Duration, Instant};

use shards::head::{AppendBatch, BatchSample, SeriesKey};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::wal::PageCacheFs;

fn on_executor<T, F, Fut>(f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(f)
        .expect("executor")
        .join()
        .expect("executor ran")
}

fn options() -> ShardOptions {
    ShardOptions {
        snapshot_on_shutdown: true,
        ..Default::default()
    }
}

/// Labels shaped like a scraped exporter's: a few hundred metric names, one instance per
/// 1,000 series, and a bucket or id label that tells series of one metric apart.
fn labels(i: usize) -> Labels {
    let target = i / 1000;
    let k = i % 1000;
    Labels::from_pairs([
        ("__name__", format!("loadgen_metric_{}_total", k / 10)),
        (
            "instance",
            format!("127.0.{}.{}:9100", target / 250, target % 250),
        ),
        ("job", "loadgen".to_string()),
        ("le", format!("{}", k % 10)),
    ])
    .expect("valid labels")
}

/// Writes `series` x `samples` (15 s apart) and stops cleanly (`clean`) or as a crash would.
fn write(dir: &Path, series: usize, samples: usize, clean: bool) {
    let dir = dir.to_path_buf();
    on_executor(move || async move {
        let (mut shard, _) = Shard::open(&dir, options(), PageCacheFs, |_| {})
            .await
            .expect("open");
        let mut refs = Vec::with_capacity(series);
        let ids: Vec<usize> = (0..series).collect();
        for part in ids.chunks(1000) {
            let b = AppendBatch {
                new_series: part.iter().map(|&i| labels(i)).collect(),
                samples: (0..part.len())
                    .map(|j| BatchSample {
                        series: SeriesKey::New(j as u32),
                        t: 0,
                        v: 0.0,
                    })
                    .collect(),
                start_timestamps: Vec::new(),
            };
            refs.extend(shard.append(&b).await.expect("append").series_refs);
        }
        for k in 1..samples as i64 {
            for part in refs.chunks(1000) {
                let b = AppendBatch {
                    new_series: vec![],
                    samples: part
                        .iter()
                        .map(|&r| BatchSample {
                            series: SeriesKey::Ref(r),
                            t: k * 15_000,
                            v: (k * 3 + r as i64 % 7) as f64,
                        })
                        .collect(),
                    start_timestamps: Vec::new(),
                };
                shard.append(&b).await.expect("append");
            }
        }
        if clean {
            shard.close().await.expect("close");
        } else {
            shard.sync().await.expect("sync");
            std::mem::forget(shard);
        }
    });
}

fn reopen(dir: &Path, series: usize) -> Duration {
    let dir = dir.to_path_buf();
    on_executor(move || async move {
        let start = Instant::now();
        let (shard, report) = Shard::open(&dir, options(), PageCacheFs, |_| {})
            .await
            .expect("reopen");
        let d = start.elapsed();
        assert_eq!(shard.head().num_series(), series);
        eprintln!(
            "  snapshot={} wal_samples={} skipped={} mmapped_chunks={}",
            report.snapshot.is_some(),
            report.replay.samples,
            report.replay.samples_skipped,
            report.replay.mmapped_chunks
        );
        std::mem::forget(shard);
        d
    })
}

/// Opens the shard in `dir` `reopens` times, dropping it each time without a close.
fn reopen_dir(dir: &Path, reopens: usize) {
    for _ in 0..reopens {
        let dir = dir.to_path_buf();
        let (d, series) = on_executor(move || async move {
            let start = Instant::now();
            let (shard, _) = Shard::open(&dir, options(), PageCacheFs, |_| {})
                .await
                .expect("reopen");
            let d = start.elapsed();
            let series = shard.head().num_series();
            std::mem::forget(shard);
            (d, series)
        });
        println!("{series} series, open {d:?}");
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    if std::env::args().nth(1).as_deref() == Some("dir") {
        let dir = std::env::args()
            .nth(2)
            .expect("usage: restart_head dir PATH [reopens]");
        let reopens = args.nth(2).and_then(|a| a.parse().ok()).unwrap_or(3);
        reopen_dir(Path::new(&dir), reopens);
        return;
    }
    let series: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let samples: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let only = args.next();
    let reopens: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    for (name, clean) in [("clean", true), ("crash", false)] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        write(tmp.path(), series, samples, clean);
        let runs: Vec<Duration> = (0..reopens).map(|_| reopen(tmp.path(), series)).collect();
        println!("{name}: {series} series x {samples} samples: open {runs:?}");
    }
}
