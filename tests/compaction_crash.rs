//! SIGKILL around compaction, on the real binary with 10 s blocks
//! (`--storage.tsdb.min-block-duration=10s`): during a block write (chunks written, index
//! and meta.json not), during a WAL checkpoint (its first records written), during
//! retention (a block renamed for deletion, not yet removed), each hit exactly through the
//! `PROMCORE_CRASH_AT` test hook (`shards::crash_point`), and at random moments while
//! compaction, merges and retention run over a few thousand series.
//!
//! A sample is acknowledged once the server shows it (`/federate`); the test records what it
//! sees until the kill. After a restart (without the hook) and a clean stop, `promtool tsdb
//! list` reads every shard directory, no leftover of an interrupted write or deletion is
//! there, blocks do not overlap, and `promtool tsdb dump` holds every recorded sample with
//! its value, each series' samples in strictly increasing time and value (so none is
//! duplicated or out of place). The restarted server answers the same.
//!
//! Needs `promtool` (Debian package `prometheus`); without it the test says so and passes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::backfill::{promtool_ok, walk};
use common::exposition;
use common::http;
use common::server::SHARDS;
use common::{free_port, urlencode, wait_until, Binary, Reply, Server, TestTarget, PATIENCE};
use shards::crash_point;

const JOB: &str = "crash";
/// Longest a crash point may take to be reached: a few blocks of 10 s.
const CRASH_WITHIN: Duration = Duration::from_secs(150);

/// Per series: timestamp (ms) → value.
type Samples = BTreeMap<String, BTreeMap<i64, f64>>;

/// `series` gauges `c{k="i"}`, each scrape serving its request number as the value.
fn target(series: usize) -> TestTarget {
    TestTarget::serve(move |n| {
        let mut page = String::with_capacity(series * 24);
        for k in 0..series {
            page.push_str(&format!("c{{k=\"{k}\"}} {n}\n"));
        }
        Reply::Metrics(page)
    })
}

fn write_config(dir: &Path, t: &TestTarget) -> PathBuf {
    let path = dir.join("prometheus.yml");
    let text = format!(
        "global:\n  scrape_interval: 500ms\n  scrape_timeout: 500ms\nscrape_configs:\n  \
         - job_name: {JOB}\n    static_configs:\n      - targets: ['{}']\n",
        t.address()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The `c` samples the server shows now (latest of each series), added to `seen`; `None`
/// when it does not answer.
fn observe(s: &Server, seen: &mut Samples) -> Option<()> {
    let path = format!("/federate?match[]={}", urlencode("c"));
    let r = http::get(s.port, &path).ok()?;
    if r.status != 200 {
        return None;
    }
    for smp in exposition::parse(&r.text()).ok()? {
        if let Some(t) = smp.timestamp {
            seen.entry(smp.label("k").to_string())
                .or_default()
                .insert(t, smp.value);
        }
    }
    Some(())
}

/// Records what the server shows until it dies (killed by its crash point); panics if it
/// never does.
fn record_until_dead(s: &mut Server, seen: &mut Samples, within: Duration) {
    let died = wait_until(within, || {
        if let Some(status) = s.wait_exit(Duration::ZERO) {
            return Some(status);
        }
        let _ = observe(s, seen);
        None
    });
    let status =
        died.unwrap_or_else(|| panic!("the crash point was never reached\n{}", s.log_tail()));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{}", s.log_tail());
}

fn shard_dirs(data: &Path) -> Vec<PathBuf> {
    (0..SHARDS)
        .map(|i| data.join(format!("shard-{i:03}")))
        .collect()
}

/// `promtool tsdb dump` of every shard's `c` samples (blocks, then the head from the WAL).
fn dump(data: &Path) -> Samples {
    let mut out = Samples::new();
    for d in shard_dirs(data) {
        let list = std::process::Command::new("promtool")
            .args(["tsdb", "list"])
            .arg(&d)
            .output()
            .unwrap();
        assert!(
            list.status.success(),
            "promtool tsdb list {}: {}",
            d.display(),
            String::from_utf8_lossy(&list.stderr)
        );
        let o = std::process::Command::new("promtool")
            .args(["tsdb", "dump", "--min-time=-9223372036854775808"])
            .arg(&d)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let Some((labels, rest)) = line.rsplit_once("} ") else {
                continue;
            };
            if !labels.contains("__name__=\"c\"") {
                continue;
            }
            let k = labels
                .split("k=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap()
                .to_string();
            let (v, t) = rest.split_once(' ').unwrap();
            let (t, v): (i64, f64) = (t.parse().unwrap(), v.parse().unwrap());
            let prev = out.entry(k).or_default().insert(t, v);
            assert!(
                prev.is_none(),
                "sample at {t} read twice from {}",
                d.display()
            );
        }
    }
    out
}

/// What must hold of a stopped server's data directory after crashes and restarts.
fn check_data(data: &Path, acknowledged: &Samples) {
    let leftovers: Vec<PathBuf> = walk(data)
        .into_iter()
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".tmp-for-creation")
                || n.ends_with(".tmp-for-deletion")
                || n.ends_with(".tmp")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "leftovers of interrupted writes: {leftovers:?}"
    );
    for d in shard_dirs(data) {
        let mut ranges = Vec::new();
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = e.path().join("meta.json");
            if !meta.is_file() {
                continue;
            }
            for f in ["index", "tombstones", "chunks/000001"] {
                assert!(
                    e.path().join(f).is_file(),
                    "{} lacks {f}",
                    e.path().display()
                );
            }
            let m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
            ranges.push((
                m["minTime"].as_i64().unwrap(),
                m["maxTime"].as_i64().unwrap(),
            ));
        }
        ranges.sort();
        for w in ranges.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "overlapping blocks in {}: {ranges:?}",
                d.display()
            );
        }
    }
    let stored = dump(data);
    let mut missing = Vec::new();
    for (k, samples) in acknowledged {
        for (t, v) in samples {
            match stored.get(k).and_then(|s| s.get(t)) {
                Some(got) if got == v => {}
                got => missing.push((k.clone(), *t, *v, got.copied())),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged samples lost or changed, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    for (k, samples) in &stored {
        let values: Vec<f64> = samples.values().copied().collect();
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "series {k}: values not increasing with time"
        );
    }
    let total: usize = acknowledged.values().map(|s| s.len()).sum();
    assert!(total > 0, "nothing was acknowledged before the crash");
}

/// Starts the server, lets the crash point kill it, restarts it without the hook, lets it
/// scrape again, stops it and checks the data.
fn crash_at(point: &str, flags: &[&str], retention_ms: Option<i64>) {
    if !promtool_ok() {
        eprintln!("promtool not found: skipping (install the Debian package prometheus)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = target(50);
    let config = write_config(tmp.path(), &t);
    let data = tmp.path().join("data");
    let env = [("PROMCORE_CRASH_AT", point)];
    let mut s = Server::spawn_with_env(
        &Binary::under_test(),
        &config,
        &data,
        free_port(),
        flags,
        &env,
    );
    s.wait_ready();
    let mut seen = Samples::new();
    record_until_dead(&mut s, &mut seen, CRASH_WITHIN);
    assert!(
        walk(&data).iter().any(|p| is_interrupted(p, point)),
        "the crash at {point} left no interrupted work to recover from"
    );

    let mut s = Server::spawn(&Binary::under_test(), &config, &data, free_port(), flags);
    s.wait_ready();
    let before = seen.values().map(|v| v.len()).sum::<usize>();
    let resumed = wait_until(PATIENCE, || {
        observe(&s, &mut seen)?;
        (seen.values().map(|v| v.len()).sum::<usize>() >= before + 3 * 50).then_some(())
    });
    assert!(
        resumed.is_some(),
        "no scrape after the restart\n{}",
        s.log_tail()
    );
    s.stop();
    if let Some(r) = retention_ms {
        forget_beyond_retention(&mut seen, r);
    }
    check_data(&data, &seen);
}

/// Drops the acknowledged samples that retention may have deleted since: those older than
/// the retention (plus one block) before the newest sample seen.
fn forget_beyond_retention(seen: &mut Samples, retention_ms: i64) {
    let newest = seen
        .values()
        .filter_map(|v| v.keys().next_back().copied())
        .max()
        .unwrap_or(0);
    let horizon = newest - retention_ms - BLOCK_MS;
    for samples in seen.values_mut() {
        samples.retain(|t, _| *t >= horizon);
    }
}

const BLOCK_MS: i64 = 10_000;

/// Whether `p` is what a crash at `point` leaves behind.
fn is_interrupted(p: &Path, point: &str) -> bool {
    let n = p.to_string_lossy();
    match point {
        crash_point::BLOCK_WRITE_AFTER_CHUNKS => n.ends_with(".tmp-for-creation"),
        crash_point::WAL_CHECKPOINT_STEP => n.contains("checkpoint.") && n.ends_with(".tmp"),
        crash_point::BLOCK_DELETE_AFTER_RENAME => n.ends_with(".tmp-for-deletion"),
        _ => false,
    }
}

/// 10 s blocks, never merged (so that only head compaction writes blocks and only
/// retention deletes them).
const SMALL_BLOCKS: [&str; 2] = [
    "--storage.tsdb.min-block-duration=10s",
    "--storage.tsdb.max-block-duration=10s",
];

#[test]
fn sigkill_during_block_write() {
    crash_at(crash_point::BLOCK_WRITE_AFTER_CHUNKS, &SMALL_BLOCKS, None);
}

#[test]
fn sigkill_during_wal_checkpoint() {
    crash_at(crash_point::WAL_CHECKPOINT_STEP, &SMALL_BLOCKS, None);
}

#[test]
fn sigkill_during_retention() {
    let mut flags = SMALL_BLOCKS.to_vec();
    flags.push("--storage.tsdb.retention.time=30s");
    crash_at(crash_point::BLOCK_DELETE_AFTER_RENAME, &flags, Some(30_000));
}

/// SIGKILL at random moments while 2,000 series are compacted, merged (10 s → 30 s → 90 s)
/// and deleted by retention; three crashes, then the same checks.
#[test]
fn sigkill_at_random_moments_of_heavy_compaction() {
    if !promtool_ok() {
        eprintln!("promtool not found: skipping (install the Debian package prometheus)");
        return;
    }
    const SERIES: usize = 2_000;
    let tmp = tempfile::tempdir().unwrap();
    let t = target(SERIES);
    let config = write_config(tmp.path(), &t);
    let data = tmp.path().join("data");
    let flags = [
        "--storage.tsdb.min-block-duration=10s",
        "--storage.tsdb.max-block-duration=90s",
        "--storage.tsdb.retention.time=2m",
    ];
    let mut seen = Samples::new();
    let mut rng = Seed::from_clock();
    for round in 0..3 {
        let mut s = Server::spawn(&Binary::under_test(), &config, &data, free_port(), &flags);
        s.wait_ready();
        // Until a block was written in this run (compaction is then under way regularly),
        // then on for a random 0–10 s.
        let compacting = wait_until(CRASH_WITHIN, || {
            let _ = observe(&s, &mut seen);
            let n = s.own_metric("prometheus_tsdb_compactions_total")?;
            (n >= 1.0).then_some(())
        });
        assert!(
            compacting.is_some(),
            "round {round}: no compaction\n{}",
            s.log_tail()
        );
        let extra = Duration::from_millis(rng.next() % 10_000);
        let _ = wait_until(extra, || {
            let _ = observe(&s, &mut seen);
            None::<()>
        });
        s.kill();
    }
    let mut s = Server::spawn(&Binary::under_test(), &config, &data, free_port(), &flags);
    s.wait_ready();
    assert!(wait_until(PATIENCE, || observe(&s, &mut seen)).is_some());
    s.stop();
    // Retention removed the oldest blocks: what it may have deleted is not required.
    forget_beyond_retention(&mut seen, 120_000);
    check_data(&data, &seen);
}

/// xorshift64 seeded from the clock: which moment is hit varies from run to run.
struct Seed(u64);

impl Seed {
    fn from_clock() -> Seed {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Seed(n | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
