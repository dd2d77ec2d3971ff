//! Head compaction end to end: a shard with a 10-minute block range takes 100 minutes of
//! appends (steady series, series that stop, series that start late), compacting as it
//! goes. Then every sample must be readable exactly once from head + blocks, before and
//! after a restart (clean or crash-like); promtool must list the blocks and dump the whole
//! directory (blocks, chunks_head, checkpoint, WAL) with the same samples; and Prometheus
//! 2.42 itself must open a copy of the directory and serve the same samples.
//!
//! The promtool and Prometheus parts need Debian's `prometheus` package; without it they
//! say so and are skipped.

mod blocks_common;
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{
    free_port, http_get, key, run_local, small_block_options, urlencode, wait_for, Samples,
};
use shards::block::BlockMeta;
use shards::compact::Progress;
use shards::head::{AppendBatch, BatchSample, SeriesKey};
use shards::index::{MatchType, Matcher};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::wal::PageCacheFs;

const RANGE: i64 = 10 * 60 * 1000;
const STEP: i64 = 5_000;
const MINUTES: i64 = 100;

fn options() -> ShardOptions {
    let mut o = small_block_options(RANGE, 64 * 1024);
    // Small steps, so that appends interleave with every phase.
    o.compaction.series_per_step = 7;
    o.compaction.records_per_step = 5;
    o.compaction.step_budget = Duration::ZERO;
    o
}

fn canonical(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// Appends the test data; returns what the shard must hold and what compaction did.
async fn write(dir: &Path, t0: i64) -> (Samples, Vec<BlockMeta>) {
    let (mut shard, _) = Shard::open(dir, options(), PageCacheFs, |_| {})
        .await
        .unwrap();
    let mut series: Vec<(Labels, i64, i64)> = Vec::new(); // labels, from, to (minutes)
    for i in 0..20 {
        let l = Labels::from_pairs([("__name__", "steady"), ("job", "c"), ("i", &i.to_string())]);
        series.push((l.unwrap(), 0, MINUTES));
    }
    for i in 0..10 {
        let l = Labels::from_pairs([("__name__", "churn"), ("job", "c"), ("i", &i.to_string())]);
        series.push((l.unwrap(), 0, 30));
    }
    for i in 0..5 {
        let l = Labels::from_pairs([("__name__", "late"), ("job", "c"), ("i", &i.to_string())]);
        series.push((l.unwrap(), 50, MINUTES));
    }
    let specials = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        1e-310,
        0.1,
    ];
    let mut refs: Vec<Option<u64>> = vec![None; series.len()];
    let mut expected = Samples::new();
    let n = MINUTES * 60_000 / STEP;
    for k in 0..n {
        let t = t0 + k * STEP;
        let minute = k * STEP / 60_000;
        let mut b = AppendBatch::default();
        let mut idx = Vec::new();
        for (i, (l, from, to)) in series.iter().enumerate() {
            if minute < *from || minute >= *to {
                continue;
            }
            let key_ = match refs[i] {
                Some(r) => SeriesKey::Ref(r),
                None => {
                    b.new_series.push(l.clone());
                    idx.push(i);
                    SeriesKey::New(b.new_series.len() as u32 - 1)
                }
            };
            let v = if i == 3 {
                specials[k as usize % specials.len()]
            } else {
                (k * (i as i64 + 1)) as f64 * 0.5
            };
            b.samples.push(BatchSample { series: key_, t, v });
            expected.entry(key(l)).or_default().push((t, canonical(v)));
        }
        let out = shard.append(&b).await.unwrap();
        assert_eq!(out.appended as usize, b.samples.len(), "at k={k}: {out:?}");
        for (j, &i) in idx.iter().enumerate() {
            refs[i] = Some(out.series_refs[j]);
        }
        // Also drive compaction between appends, as an idle shard would; the block files
        // closed on the blocking thread are waited for here, so that compaction keeps up.
        if k % 3 == 0 {
            while shard.compact_step().await.unwrap() == Progress::Waiting {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    let rest = shard.compact().await.unwrap();
    assert!(
        rest.iter()
            .all(|p| !matches!(p, Progress::HeadTruncated { .. })),
        "{rest:?}"
    );
    let stats = shard.compaction_stats().clone();
    assert_eq!(stats.failures, 0, "{stats:?}");
    assert!(stats.blocks_written >= 8, "{stats:?}");
    assert!(stats.checkpoints >= 1, "{stats:?}");
    assert_eq!(stats.series_removed, 10, "{stats:?}");
    // The churned series left the head.
    assert_eq!(shard.head().num_series(), 25);
    check_contents(&shard, &expected);
    let metas = shard.blocks().iter().map(|b| b.meta().clone()).collect();
    shard.close().await.unwrap();
    (expected, metas)
}

/// Every sample of head + blocks, exactly once, equals `want`.
fn check_contents(shard: &Shard, want: &Samples) {
    let mut got = Samples::new();
    let mut last_block_max = i64::MIN;
    for b in shard.blocks() {
        assert!(b.meta().min_time >= last_block_max, "blocks overlap");
        last_block_max = b.meta().max_time;
        for (l, s) in b.dump(i64::MIN, i64::MAX).unwrap() {
            got.entry(key(&l))
                .or_default()
                .extend(s.iter().map(|&(t, v)| (t, canonical(v))));
        }
    }
    let head = shard.head();
    let all = Matcher::new(MatchType::Regex, "__name__", ".+").unwrap();
    for r in head.select(&[all]) {
        let l = head.series_labels(r).unwrap();
        let s = head
            .samples(r, i64::MIN, i64::MAX)
            .unwrap()
            .collect_checked()
            .unwrap();
        assert!(
            s.iter().all(|p| p.0 >= last_block_max),
            "head overlaps blocks"
        );
        got.entry(key(&l))
            .or_default()
            .extend(s.iter().map(|&(t, v)| (t, canonical(v))));
    }
    assert_eq!(got.len(), want.len());
    for (k, w) in want {
        assert_eq!(got.get(k), Some(w), "series {k}");
    }
    // The merged querier sees the same.
    let q = shard.querier(i64::MIN, i64::MAX);
    let all = Matcher::new(MatchType::Equal, "job", "c").unwrap();
    let mut merged = Samples::new();
    for s in q.select(&[all]).unwrap() {
        let pts = q.samples(&s).unwrap();
        merged.insert(
            key(&s.labels),
            pts.iter().map(|&(t, v)| (t, canonical(v))).collect(),
        );
    }
    assert_eq!(&merged, want, "querier over head + blocks");
}

async fn reopen_and_check(dir: &Path, want: &Samples) {
    let (shard, report) = Shard::open(dir, options(), PageCacheFs, |_| {})
        .await
        .unwrap();
    assert!(report.failed_blocks.is_empty(), "{report:?}");
    assert!(report.checkpoint.is_some(), "{report:?}");
    check_contents(&shard, want);
    shard.close().await.unwrap();
}

#[test]
fn compaction_keeps_every_sample_once_and_prometheus_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shard-000");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Recent data (within Prometheus's retention), starting on a block boundary so that
    // series start and stop on range boundaries.
    let t0 = (now - (MINUTES + 10) * 60_000) / RANGE * RANGE;
    let d = dir.clone();
    let (want, metas) = run_local(move || async move { write(&d, t0).await });
    // Full ranges become one chunk per series, as Prometheus cuts them (120 samples).
    for m in &metas {
        assert_eq!(m.max_time - m.min_time, RANGE);
        assert_eq!(m.stats.num_chunks, m.stats.num_series, "{m:?}");
        assert_eq!(m.stats.num_samples, m.stats.num_series * 120, "{m:?}");
    }
    let wal: Vec<String> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(wal.iter().any(|n| n.starts_with("checkpoint.")), "{wal:?}");
    assert!(
        !wal.contains(&"00000000".to_string()),
        "old segments deleted: {wal:?}"
    );
    let head_chunks = std::fs::read_dir(dir.join("chunks_head")).unwrap().count();
    assert!(head_chunks >= 1, "Prometheus must also read chunks_head");

    let d = dir.clone();
    let w = want.clone();
    run_local(move || async move { reopen_and_check(&d, &w).await });

    promtool_agrees(&dir, &want, metas.len());
    prometheus_agrees(&dir, &want, t0);

    // Crash-like: appends, then the process dies without closing; the restart must still
    // hold every sample once.
    let d = dir.clone();
    let w = want.clone();
    run_local(move || async move {
        let (mut shard, _) = Shard::open(&d, options(), PageCacheFs, |_| {})
            .await
            .unwrap();
        shard.compact().await.unwrap();
        check_contents(&shard, &w);
        shard.sync().await.unwrap();
        std::mem::forget(shard);
        reopen_and_check(&d, &w).await;
    });
}

fn promtool_agrees(dir: &Path, want: &Samples, blocks: usize) {
    let Some(promtool) = blocks_common::promtool() else {
        eprintln!("SKIPPED: promtool not found on PATH (install Debian's `prometheus` package)");
        return;
    };
    let list = promtool.run(&["tsdb", "list", dir.to_str().unwrap()]);
    assert_eq!(list.lines().count(), blocks + 1, "{list}");
    let mut got = Samples::new();
    for line in promtool
        .run(&["tsdb", "dump", dir.to_str().unwrap()])
        .lines()
    {
        let (labels, rest) = line.rsplit_once("} ").expect(line);
        let (v, t) = rest.split_once(' ').expect(line);
        got.entry(format!("{labels}}}"))
            .or_default()
            .push((t.parse().unwrap(), canonical(parse_value(v))));
    }
    assert_eq!(
        &got, want,
        "promtool tsdb dump (blocks + chunks_head + checkpoint + WAL)"
    );
}

fn parse_value(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap(),
    }
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

fn prometheus_agrees(dir: &Path, want: &Samples, t0: i64) {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: prometheus not found on PATH (install Debian's `prometheus`)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(dir, &data);
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let log = tmp.path().join("prometheus.log");
    let port = free_port();
    let _p = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
    );
    let ready = wait_for(Duration::from_secs(90), || {
        match http_get(port, "/-/ready") {
            Ok((200, _)) => Some(()),
            _ => None,
        }
    });
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        ready.is_some(),
        "Prometheus did not become ready:\n{}",
        log_text()
    );
    let end = t0 + MINUTES * 60_000;
    let q = urlencode(r#"{job="c"}[3h]"#);
    let (status, body) = http_get(
        port,
        &format!("/api/v1/query?query={q}&time={}", end as f64 / 1000.0),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut got = Samples::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let pairs = s["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()));
        let l = Labels::from_pairs(pairs).unwrap();
        let pts = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                (t, canonical(parse_value(p[1].as_str().unwrap())))
            })
            .collect();
        got.insert(key(&l), pts);
    }
    assert_eq!(&got, want, "Prometheus 2.42 serving the shard directory");
    assert!(!log_text().contains("level=error"), "{}", log_text());
}
