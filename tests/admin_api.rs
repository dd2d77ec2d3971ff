//! The admin API (`--web.enable-admin-api`) against Prometheus 2.42, on the same data: blocks
//! written by promtool from one OpenMetrics input (each series into the shard its hash
//! places it on for promcore, all in one directory for Prometheus) plus a head filled by
//! scraping a target that serves samples with fixed timestamps, so both heads hold exactly
//! the same samples.
//!
//! The same request sequence goes to both servers: refused requests (method, missing or bad
//! parameters) must give the same status and body; `delete_series` over blocks and head,
//! `clean_tombstones` and `snapshot` must give the same status and JSON, and afterwards the
//! same `query_range` answers, also after both were killed (SIGKILL) and restarted. The
//! snapshots are read by `promtool tsdb list` and `dump` and must hold the same series and
//! samples as Prometheus's own snapshot; a promcore started on a copy of its snapshot serves
//! what the original served. Without the admin flag both refuse alike.
//!
//! Needs `promtool` and `prometheus` (Debian package `prometheus`); without promtool the
//! test says so and passes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::backfill::{backfill, copy_dir, promtool_ok, ulids};
use common::http::{self, Response};
use common::server::SHARDS;
use common::target::Reply;
use common::{free_port, urlencode, wait_until, Binary, Server, TestTarget, PATIENCE};
use serde_json::Value;
use shards::labels::{shard_for, Labels};

/// 2 h blocks (promtool's default) over one day.
const START_S: i64 = 1_699_999_200;
const SPAN_S: i64 = 86_400;
const STEP_S: i64 = 900;
/// Samples each head series gets, one second apart.
const HEAD_SAMPLES: i64 = 10;

/// Series `m{i="k"}` for k in 0..6 in OpenMetrics: one text per promcore shard, and one
/// with everything.
fn inputs() -> (Vec<String>, String) {
    let mut per_shard = vec![String::new(); SHARDS];
    let mut all = String::from("# TYPE m gauge\n");
    for k in 0..6 {
        let l = Labels::from_pairs([("__name__", "m"), ("i", &k.to_string())]).unwrap();
        let out = &mut per_shard[shard_for(l.hash(), SHARDS)];
        if out.is_empty() {
            out.push_str("# TYPE m gauge\n");
        }
        for n in 0..SPAN_S / STEP_S {
            let line = format!(
                "m{{i=\"{k}\"}} {} {}\n",
                (n * (k + 1)) as f64 / 4.0,
                START_S + n * STEP_S
            );
            out.push_str(&line);
            all.push_str(&line);
        }
    }
    for s in &mut per_shard {
        s.push_str("# EOF\n");
    }
    all.push_str("# EOF\n");
    (per_shard, all)
}

/// A target whose n-th scrape serves sample n (of `HEAD_SAMPLES`, then the last again)
/// of `h{k="a"}` and `h{k="b"}`, at `base_s + n` seconds: the same head in every server.
fn head_target(base_s: i64) -> TestTarget {
    TestTarget::serve(move |n| {
        let i = (n as i64).min(HEAD_SAMPLES) - 1;
        let ms = (base_s + i) * 1000;
        Reply::Metrics(format!(
            "h{{k=\"a\"}} {i} {ms}\nh{{k=\"b\"}} {} {ms}\n",
            i * 2
        ))
    })
}

struct Pair {
    ours: Server,
    theirs: Server,
}

fn config(dir: &Path, target: &TestTarget) -> PathBuf {
    let path = dir.join("prometheus.yml");
    std::fs::write(
        &path,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: h\n    \
             static_configs:\n      - targets: ['{}']\n",
            target.address()
        ),
    )
    .unwrap();
    path
}

fn start(binary: &Binary, root: &Path, config: &Path, flags: &[&str]) -> Server {
    let mut s = Server::spawn(binary, config, &root.join("data"), free_port(), flags);
    s.wait_ready();
    s
}

fn request(s: &Server, method: &str, path: &str, form: &str) -> Response {
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    http::request(s.port, method, path, &headers, form.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", s.log_tail()))
}

/// Sends the same request to both; they must answer alike (status, Allow, body); returns
/// promcore's answer.
fn same(p: &Pair, method: &str, path: &str, form: &str) -> Response {
    let (a, b) = (
        request(&p.ours, method, path, form),
        request(&p.theirs, method, path, form),
    );
    let what = format!("{method} {path} {form}");
    assert_eq!(a.status, b.status, "{what}: {} vs {}", a.text(), b.text());
    assert_eq!(a.header("allow"), b.header("allow"), "{what}");
    if a.status != 200 {
        // promcore words time errors as Prometheus 3 does on every endpoint (see
        // tests/api_differential.rs); 2.42 capitalised them.
        let theirs = b.text().replace("Invalid time value", "invalid time value");
        assert_eq!(a.text(), theirs, "{what}");
    }
    a
}

/// `query_range` answers over the backfilled span (`m`) and over the head (`h`).
fn answers(s: &Server, base_s: i64) -> (Value, Value) {
    let range = |q: &str, start: i64, end: i64, step: i64| {
        let path = format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
            urlencode(q)
        );
        let mut data = s.api(&path);
        if let Some(a) = data["result"].as_array_mut() {
            a.sort_by_key(|r| r["metric"].to_string());
        }
        data
    };
    (
        range("m", START_S, START_S + SPAN_S, STEP_S),
        // Each server scrapes a target of its own: the instance differs.
        range(
            "max without (instance) (h)",
            base_s,
            base_s + HEAD_SAMPLES - 1,
            1,
        ),
    )
}

/// Series and samples of `m` and `h` in the blocks of `dirs`, as `promtool tsdb dump`
/// prints them (after `promtool tsdb list` read each directory).
fn dumped(dirs: &[PathBuf]) -> BTreeMap<String, Vec<(i64, String)>> {
    let mut out: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let instance = regex::Regex::new(r#"instance="[^"]*", "#).unwrap();
    for d in dirs {
        let list = Command::new("promtool")
            .args(["tsdb", "list"])
            .arg(d)
            .output()
            .unwrap();
        assert!(
            list.status.success(),
            "promtool tsdb list {}: {}",
            d.display(),
            String::from_utf8_lossy(&list.stderr)
        );
        // `tsdb dump` opens the directory as a read-only DB, which needs a WAL directory;
        // a snapshot (Prometheus's as ours) has none: dump a copy with an empty one.
        let scratch = tempfile::tempdir().unwrap();
        copy_dir(d, scratch.path());
        std::fs::create_dir_all(scratch.path().join("wal")).unwrap();
        let dump = Command::new("promtool")
            .args(["tsdb", "dump", "--min-time=-9223372036854775808"])
            .arg(scratch.path())
            .output()
            .unwrap();
        assert!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        for line in String::from_utf8_lossy(&dump.stdout).lines() {
            let Some((labels, rest)) = line.rsplit_once("} ") else {
                continue;
            };
            if !(labels.contains("__name__=\"m\"") || labels.contains("__name__=\"h\"")) {
                continue;
            }
            let (v, t) = rest.split_once(' ').unwrap();
            // Each server scraped a target of its own: the instance differs.
            let labels = instance.replace(labels, "");
            out.entry(format!("{labels}}}"))
                .or_default()
                .push((t.parse().unwrap(), v.to_string()));
        }
    }
    for samples in out.values_mut() {
        samples.sort();
    }
    out
}

fn shard_dirs(data: &Path) -> Vec<PathBuf> {
    (0..SHARDS)
        .map(|i| data.join(format!("shard-{i:03}")))
        .collect()
}

fn snapshot(p: &Pair, query: &str) -> (PathBuf, PathBuf) {
    let path = format!("/api/v1/admin/tsdb/snapshot{query}");
    let (a, b) = (
        request(&p.ours, "POST", &path, ""),
        request(&p.theirs, "POST", &path, ""),
    );
    let name = |r: &Response| -> String {
        assert_eq!(r.status, 200, "{}", r.text());
        let v: Value = serde_json::from_str(&r.text()).unwrap();
        assert_eq!(v["status"], "success");
        let n = v["data"]["name"].as_str().unwrap().to_string();
        let shape = regex::Regex::new(r"^\d{8}T\d{6}Z-[0-9a-f]{16}$").unwrap();
        assert!(shape.is_match(&n), "snapshot name {n}");
        assert_eq!(v["data"].as_object().unwrap().len(), 1, "{v}");
        n
    };
    (
        p.ours.data.join("snapshots").join(name(&a)),
        p.theirs.data.join("snapshots").join(name(&b)),
    )
}

#[test]
fn admin_api_as_prometheus() {
    if !promtool_ok() {
        eprintln!("promtool not found: skipping (install the Debian package prometheus)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (per_shard, all) = inputs();
    let ours_blocks = backfill(&tmp.path().join("in-ours"), &per_shard);
    let theirs_blocks = backfill(&tmp.path().join("in-theirs"), &[all]);
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let base_s = now_s - 60;
    let (t_ours, t_theirs) = (head_target(base_s), head_target(base_s));

    let (ours_root, theirs_root) = (tmp.path().join("ours"), tmp.path().join("theirs"));
    for (i, b) in ours_blocks.iter().enumerate() {
        copy_dir(b, &ours_root.join("data").join(format!("shard-{i:03}")));
    }
    copy_dir(&theirs_blocks[0], &theirs_root.join("data"));
    std::fs::create_dir_all(&ours_root).unwrap();
    let (c_ours, c_theirs) = (config(&ours_root, &t_ours), config(&theirs_root, &t_theirs));
    let admin = ["--web.enable-admin-api"];
    let mut p = Pair {
        ours: start(&Binary::under_test(), &ours_root, &c_ours, &admin),
        theirs: start(&Binary::prometheus(), &theirs_root, &c_theirs, &admin),
    };
    // Every head sample is in once the last one is: it is the newest.
    let full = |s: &Server| {
        let data = s.api(&format!(
            "/api/v1/query?query={}&time={}",
            urlencode("h{k=\"a\"}"),
            base_s + HEAD_SAMPLES - 1
        ));
        let last = (HEAD_SAMPLES - 1).to_string();
        (data["result"][0]["value"][1].as_str() == Some(last.as_str())).then_some(())
    };
    for s in [&p.ours, &p.theirs] {
        assert!(
            wait_until(PATIENCE, || full(s)).is_some(),
            "{} never scraped the whole head\n{}",
            s.binary.name(),
            s.log_tail()
        );
    }
    let before = answers(&p.ours, base_s);
    assert_eq!(before, answers(&p.theirs, base_s), "before any deletion");

    // Refusals.
    for path in ["delete_series", "clean_tombstones", "snapshot"] {
        let r = same(&p, "GET", &format!("/api/v1/admin/tsdb/{path}"), "");
        assert_eq!(r.status, 405);
    }
    let del = "/api/v1/admin/tsdb/delete_series";
    for form in [
        "",
        "match[]=%7B",
        "match[]=m&start=abc",
        "match[]=m&end=2023-13-01T00:00:00Z",
    ] {
        assert_eq!(same(&p, "POST", del, form).status, 400, "{form}");
    }
    assert_eq!(
        same(
            &p,
            "POST",
            "/api/v1/admin/tsdb/snapshot?skip_head=maybe",
            ""
        )
        .status,
        400
    );

    // Deletions: a whole series, part of two others (query string, PUT), part of the head.
    let m1 = format!("match[]={}", urlencode("m{i=\"1\"}"));
    assert_eq!(same(&p, "POST", del, &m1).status, 204);
    let m23 = format!(
        "{del}?match[]={}&start={}&end={}",
        urlencode("m{i=~\"2|3\"}"),
        START_S + 6 * 3600,
        START_S + 10 * 3600
    );
    assert_eq!(same(&p, "PUT", &m23, "").status, 204);
    let ha = format!(
        "match[]={}&start={}&end={}",
        urlencode("h{k=\"a\"}"),
        base_s + 3,
        base_s + 6
    );
    assert_eq!(same(&p, "POST", del, &ha).status, 204);
    let deleted = answers(&p.ours, base_s);
    assert_ne!(deleted, before, "the deletions changed nothing");
    assert_eq!(deleted, answers(&p.theirs, base_s), "after delete_series");

    // Head tombstones survive a crash (WAL tombstones records), block ones their file.
    for s in [&mut p.ours, &mut p.theirs] {
        s.kill();
        let _ = s.wait_exit(PATIENCE);
    }
    p.ours = start(&Binary::under_test(), &ours_root, &c_ours, &admin);
    p.theirs = start(&Binary::prometheus(), &theirs_root, &c_theirs, &admin);
    assert_eq!(answers(&p.ours, base_s), deleted, "promcore after SIGKILL");
    assert_eq!(
        answers(&p.theirs, base_s),
        deleted,
        "Prometheus after SIGKILL"
    );

    // clean_tombstones rewrites the blocks: same answers, no tombstones left.
    assert_eq!(
        same(&p, "POST", "/api/v1/admin/tsdb/clean_tombstones", "").status,
        204
    );
    assert_eq!(answers(&p.ours, base_s), deleted, "after clean_tombstones");
    assert_eq!(answers(&p.theirs, base_s), deleted);
    for d in shard_dirs(&p.ours.data) {
        let blocks = ulids(&d);
        assert!(!blocks.is_empty(), "{} lost its blocks", d.display());
        for b in blocks {
            let t = std::fs::read(d.join(&b).join("tombstones")).unwrap();
            assert_eq!(t.len(), 9, "block {b} still has tombstones");
        }
    }

    // Snapshots, with and without the head, read by promtool: the same series and samples
    // as Prometheus's own snapshots.
    for query in ["", "?skip_head=true"] {
        let (ours, theirs) = snapshot(&p, query);
        assert!(ours.join("promcore.json").is_file());
        let (a, b) = (dumped(&shard_dirs(&ours)), dumped(&[theirs]));
        assert!(a.keys().any(|k| k.contains("\"m\"")), "{a:?}");
        assert_eq!(
            a.keys().any(|k| k.contains("\"h\"")),
            query.is_empty(),
            "head in the snapshot {query:?}"
        );
        assert_eq!(a, b, "snapshot{query} as promtool dumps it");
        if query.is_empty() {
            // Restore: a copy of the snapshot is a data directory.
            let root = tmp.path().join("restored");
            copy_dir(&ours, &root.join("data"));
            let cfg = root.join("prometheus.yml");
            std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n").unwrap();
            // The head block is from today, the backfilled ones from 2023: a retention
            // longer than that keeps them, as it would in Prometheus.
            let keep = ["--storage.tsdb.retention.time=10y"];
            let restored = start(&Binary::under_test(), &root, &cfg, &keep);
            assert_eq!(answers(&restored, base_s), deleted, "restored snapshot");
            // Without the admin flag both refuse every admin request alike.
            let theirs_root = tmp.path().join("theirs-plain");
            std::fs::create_dir_all(&theirs_root).unwrap();
            let plain = start(&Binary::prometheus(), &theirs_root, &cfg, &[]);
            let mut q = Pair {
                ours: restored,
                theirs: plain,
            };
            for path in ["delete_series", "clean_tombstones", "snapshot"] {
                let path = format!("/api/v1/admin/tsdb/{path}");
                assert_eq!(same(&q, "POST", &path, &m1).status, 500);
                assert_eq!(same(&q, "PUT", &path, "").status, 500);
            }
            q.ours.stop();
            q.theirs.stop();
        }
    }
    p.ours.stop();
    p.theirs.stop();
}
