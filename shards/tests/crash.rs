//! The crash test: a child process appends batches to a shard and reports each one it got
//! acknowledged; the parent kills it with SIGKILL at random moments, many times, sometimes
//! during start-up replay and sometimes during a clean shutdown's snapshot. After every
//! kill the parent reopens the shard and checks that every acknowledged sample is there
//! exactly once, that no batch is present in part, and that every series is in order.
//!
//! The child is this same test binary re-executed on the ignored test `child_appender`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::run_local;
use shards::head::{AppendBatch, BatchSample, Head, SeriesKey};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::wal::{PageCacheFs, WalOptions};

const SERIES: u64 = 40;
const ROUNDS: u32 = 60;

/// Series `i` exists from batch `i` on, so series records keep arriving.
fn series_labels(i: u64) -> Labels {
    Labels::from_pairs([("__name__", "crash_test"), ("series", &i.to_string())]).unwrap()
}

fn batch_time(b: u64) -> i64 {
    1_700_000_000_000 + b as i64 * 1000
}

fn value(b: u64, s: u64) -> f64 {
    (b * 1000 + s) as f64
}

/// Batch `b`: one sample for each series that exists at `b`; every 7th batch is large
/// (many samples per series at sub-second spacing) so records span several WAL pages.
fn batch(b: u64) -> Vec<(u64, i64, f64)> {
    let n = (b + 1).min(SERIES);
    let per_series = if b % 7 == 3 { 40 } else { 1 };
    let mut out = Vec::new();
    for s in 0..n {
        for k in 0..per_series {
            out.push((s, batch_time(b) + k, value(b, s) + k as f64));
        }
    }
    out
}

fn shard_options(snapshot: bool) -> ShardOptions {
    // Small segments, so that kills also land on segment switches.
    ShardOptions {
        snapshot_on_shutdown: snapshot,
        wal: WalOptions {
            segment_size: 256 * 1024,
        },
        ..Default::default()
    }
}

/// The child: appends batches `start..start+count`, printing `ack B` after each, then
/// closes cleanly (snapshot) and prints `closed`.
#[test]
#[ignore = "run by `crash_and_recover` as a child process"]
fn child_appender() {
    let Ok(dir) = std::env::var("CRASH_DIR") else {
        return;
    };
    let start: u64 = std::env::var("CRASH_START").unwrap().parse().unwrap();
    let count: u64 = std::env::var("CRASH_COUNT").unwrap().parse().unwrap();
    run_local(move || async move {
        let (mut shard, _) = Shard::open(Path::new(&dir), shard_options(true), PageCacheFs, |_| {})
            .await
            .unwrap();
        let mut refs: HashMap<u64, u64> = HashMap::new();
        for b in start..start + count {
            let mut ab = AppendBatch::default();
            let mut new_idx = HashMap::new();
            for (s, t, v) in batch(b) {
                let key = match refs.get(&s) {
                    Some(&r) => SeriesKey::Ref(r),
                    None => *new_idx.entry(s).or_insert_with(|| {
                        ab.new_series.push(series_labels(s));
                        SeriesKey::New(ab.new_series.len() as u32 - 1)
                    }),
                };
                ab.samples.push(BatchSample { series: key, t, v });
            }
            let out = shard.append(&ab).await.unwrap();
            let mut order: Vec<(u64, SeriesKey)> = new_idx.into_iter().collect();
            order.sort_by_key(|(_, k)| match k {
                SeriesKey::New(i) => *i,
                SeriesKey::Ref(_) => u32::MAX,
            });
            for ((s, _), r) in order.into_iter().zip(out.series_refs) {
                refs.insert(s, r);
            }
            println!("ack {b}");
        }
        shard.close().await.unwrap();
        println!("closed");
    });
}

/// Reopens the shard and returns how many leading batches it holds, checking everything.
fn verify(dir: &Path, acked: Option<u64>, written: u64, snapshot_on_close: bool) -> u64 {
    let dir = dir.to_path_buf();
    run_local(move || async move {
        let (shard, report) =
            Shard::open(&dir, shard_options(snapshot_on_close), PageCacheFs, |_| {})
                .await
                .unwrap();
        let present = check_head(shard.head(), acked, written);
        // Reports are informative; the head is what must be right.
        let _ = report;
        shard.close().await.unwrap();
        present
    })
}

fn check_head(head: &Head, acked: Option<u64>, written: u64) -> u64 {
    let mut samples: HashMap<u64, Vec<(i64, f64)>> = HashMap::new();
    for r in head.series_refs() {
        let labels = head.series_labels(r).unwrap();
        let s: u64 = labels.get("series").unwrap().parse().unwrap();
        assert!(
            samples
                .insert(
                    s,
                    head.samples(r, i64::MIN, i64::MAX)
                        .unwrap()
                        .collect_checked()
                        .unwrap()
                )
                .is_none(),
            "series {s} twice"
        );
    }
    // How many batches are present: batch b is present iff series 0 has its first sample.
    let s0 = samples.get(&0).cloned().unwrap_or_default();
    let mut present = 0u64;
    while s0.iter().any(|&(t, _)| t == batch_time(present)) {
        present += 1;
    }
    if let Some(a) = acked {
        assert!(
            present > a,
            "batch {a} was acknowledged but only {present} batches survived"
        );
    }
    // The child may have run ahead of the acks read before the kill, but never beyond what
    // it was asked to write.
    assert!(
        present <= written,
        "{present} batches present but only {written} were ever written"
    );
    let mut want: HashMap<u64, Vec<(i64, f64)>> = HashMap::new();
    for b in 0..present {
        for (s, t, v) in batch(b) {
            want.entry(s).or_default().push((t, v));
        }
    }
    for (s, w) in &want {
        let got = samples.get(s).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(got, w.as_slice(), "series {s} after {present} batches");
    }
    for (s, got) in &samples {
        if !want.contains_key(s) {
            assert!(
                got.is_empty(),
                "series {s} has samples of a batch that is not there"
            );
        }
    }
    present
}

#[test]
fn crash_and_recover() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shard-000");
    let exe = std::env::current_exe().unwrap();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut present = 0u64;
    let deadline = Instant::now() + Duration::from_secs(240);
    for round in 0..ROUNDS {
        assert!(Instant::now() < deadline, "crash test took too long");
        let count = 20 + next(60);
        // Kill after this many acks; beyond `count` it lands after the clean close.
        let kill_after = 1 + next(count + 2);
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_appender",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CRASH_DIR", &dir)
            .env("CRASH_START", present.to_string())
            .env("CRASH_COUNT", count.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = None;
        // libtest prints "test child_appender ... " without a newline before the test runs,
        // so the first ack shares its line: look for the ack anywhere in the line.
        let mut note = |line: &str| {
            if let Some((_, b)) = line.rsplit_once("ack ") {
                acked = Some(b.trim().parse::<u64>().unwrap());
            }
        };
        if next(4) == 0 {
            // A kill at a random moment: start-up replay, appends, or the closing snapshot.
            std::thread::sleep(Duration::from_micros(next(40_000)));
        } else {
            let mut acks = 0;
            for line in stdout.by_ref() {
                let line = line.unwrap();
                note(&line);
                acks += u64::from(line.contains("ack "));
                if acks >= kill_after || line == "closed" {
                    break;
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        // Whatever the child printed before it died was acknowledged before it printed it.
        for line in stdout {
            note(&line.unwrap());
        }
        // Present at most: the acknowledged batches and the one whose ack was not printed.
        let written = acked.map_or(present, |a| a + 1) + 1;
        let snapshot_on_close = round % 3 != 0;
        let now = verify(&dir, acked, written, snapshot_on_close);
        eprintln!(
            "round {round}: {count} batches asked, acked up to {acked:?}, {now} batches present"
        );
        assert!(
            now >= present,
            "round {round}: batches went missing ({now} < {present})"
        );
        present = now;
    }
    assert!(present > 0);
}
