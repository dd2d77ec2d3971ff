//! Retention with the real binaries: the same blocks (written by Prometheus 2.42's promtool
//! from one OpenMetrics input, each series into the shard its hash places it on) are given
//! to the server under test and to Prometheus 2.42 with the same
//! `--storage.tsdb.retention.time` or `.size`. Both must keep exactly the same blocks after
//! start-up (Prometheus applies retention when it opens its blocks), answer the same
//! `query_range` over the whole span, and count the retention in
//! `prometheus_tsdb_{time,size}_retentions_total`.
//!
//! Needs `promtool` and `prometheus` (Debian package `prometheus`); without promtool the
//! test says so and passes.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use common::backfill::{backfill, copy_dir, promtool_ok, ulids, walk};
use common::server::SHARDS;
use common::{free_port, urlencode, Binary, Server};
use serde_json::Value;
use shards::labels::{shard_for, Labels};

/// 2 h blocks (promtool's backfill default) over three days: 36 per series set.
const START_S: i64 = 1_699_999_200;
const SPAN_S: i64 = 3 * 86_400;
const STEP_S: i64 = 900;

/// Series `m{i="k"}` for k in 0..8, split by the shard their labels hash to.
fn inputs() -> Vec<String> {
    let mut per_shard = vec![String::new(); SHARDS];
    for k in 0..8 {
        let l = Labels::from_pairs([("__name__", "m"), ("i", &k.to_string())]).unwrap();
        let out = &mut per_shard[shard_for(l.hash(), SHARDS)];
        if out.is_empty() {
            out.push_str("# TYPE m gauge\n");
        }
        for n in 0..SPAN_S / STEP_S {
            let t = START_S + n * STEP_S;
            writeln!(out, "m{{i=\"{k}\"}} {} {t}", (n * (k + 1)) as f64 / 4.0).unwrap();
        }
    }
    for s in &mut per_shard {
        s.push_str("# EOF\n");
    }
    per_shard
}

/// Every block ULID the servers' data directories hold (over its shards for promcore).
fn kept(servers: &[Server]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in servers {
        if s.binary.promcore {
            for i in 0..SHARDS {
                out.extend(ulids(&s.data.join(format!("shard-{i:03}"))));
            }
        } else {
            out.extend(ulids(&s.data));
        }
    }
    out
}

/// Starts `binary` over copies of the backfilled blocks with `flags`: promcore once, each
/// shard's blocks in its shard directory; Prometheus once per shard, so that each applies
/// the limits to the same blocks (and a head of its own) as a promcore shard does.
fn start(
    binary: &Binary,
    tmp: &Path,
    name: &str,
    blocks: &[PathBuf],
    flags: &[&str],
) -> Vec<Server> {
    let spawn = |root: PathBuf, place: &dyn Fn(&Path)| {
        let data = root.join("data");
        place(&data);
        let config = root.join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 15s\n").unwrap();
        let mut s = Server::spawn(binary, &config, &data, free_port(), flags);
        s.wait_ready();
        s
    };
    if binary.promcore {
        let place = |data: &Path| {
            for (i, b) in blocks.iter().enumerate() {
                copy_dir(b, &data.join(format!("shard-{i:03}")));
            }
        };
        vec![spawn(tmp.join(name), &place)]
    } else {
        blocks
            .iter()
            .enumerate()
            .map(|(i, b)| spawn(tmp.join(format!("{name}-{i}")), &|d: &Path| copy_dir(b, d)))
            .collect()
    }
}

/// `query_range` of every series of `m` over the whole span, in label order.
fn everything(servers: &[Server]) -> Vec<Value> {
    let path = format!(
        "/api/v1/query_range?query={}&start={START_S}&end={}&step={STEP_S}",
        urlencode("m"),
        START_S + SPAN_S
    );
    let mut all = Vec::new();
    for s in servers {
        let data = s.api(&path);
        assert_eq!(data["resultType"], "matrix", "{data}");
        all.extend(data["result"].as_array().cloned().unwrap_or_default());
    }
    all.sort_by_key(|r| r["metric"].to_string());
    all
}

fn check(flags: &[&str], counter: &str) {
    if !promtool_ok() {
        eprintln!("promtool not found: skipping (install the Debian package prometheus)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let blocks = backfill(tmp.path(), &inputs());
    let all: BTreeSet<String> = blocks.iter().flat_map(|b| ulids(b)).collect();

    let mut ours = start(&Binary::under_test(), tmp.path(), "ours", &blocks, flags);
    let mut theirs = start(&Binary::prometheus(), tmp.path(), "theirs", &blocks, flags);

    let theirs_kept = kept(&theirs);
    assert!(
        !theirs_kept.is_empty() && theirs_kept.len() < all.len(),
        "the case must delete some blocks but not all: {} of {} kept",
        theirs_kept.len(),
        all.len()
    );
    assert_eq!(kept(&ours), theirs_kept, "blocks kept after {flags:?}");
    let (a, b) = (everything(&ours), everything(&theirs));
    assert!(!b.is_empty());
    assert_eq!(a, b, "query_range after {flags:?}");
    let counted: f64 = ours.iter().filter_map(|s| s.own_metric(counter)).sum();
    assert!(counted >= 1.0, "{counter}: {counted}");
    // Nothing of a deleted block is left behind, not even a renamed directory.
    let leftovers: Vec<_> = ours
        .iter()
        .flat_map(|s| walk(&s.data))
        .filter(|p| p.to_string_lossy().contains(".tmp-for-deletion"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    for s in ours.iter_mut().chain(theirs.iter_mut()) {
        s.stop();
    }
}

#[test]
fn time_retention_keeps_the_blocks_prometheus_keeps() {
    check(
        &["--storage.tsdb.retention.time=1d"],
        "prometheus_tsdb_time_retentions_total",
    );
}

#[test]
fn size_retention_keeps_the_blocks_prometheus_keeps() {
    // Blocks of this input are about 1 kB each (2 h of a few series; meta.json is a
    // quarter of it), 36 per shard: 20 kB keeps some and deletes others on every shard.
    check(
        &["--storage.tsdb.retention.size=20KB"],
        "prometheus_tsdb_size_retentions_total",
    );
}
