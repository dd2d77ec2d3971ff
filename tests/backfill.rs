//! Backfill and migration with the real binaries. The same OpenMetrics input goes through
//! `promtool tsdb create-blocks-from openmetrics` into a Prometheus 2.42 data directory and
//! through `promcore tsdb create-blocks-from openmetrics` into a promcore one; both servers
//! must then serve identical series, labels, raw samples, `query_range` and `/federate`.
//! A Prometheus data directory (promtool's blocks with tombstones from `delete_series`, and
//! the WAL a running Prometheus wrote) imported with `promcore tsdb import` must serve what
//! Prometheus serves from it. Bad inputs fail as promtool fails and leave no block behind.
//!
//! Needs `promtool` and `prometheus` (Debian package `prometheus`); without promtool the
//! tests say so and pass.

mod common;

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::server::SHARDS;
use common::{free_port, urlencode, wait_until, Binary, Server, PATIENCE};
use serde_json::Value;

const STEP_S: i64 = 60;
const SPAN_S: i64 = 7 * 3600;

fn promtool_ok() -> bool {
    let ok = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("promtool not found: skipping (install the Debian package prometheus)");
    }
    ok
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The input: counters and gauges with escaped label values, NaN and ±Inf, series that
/// exist only in some blocks, samples that promtool drops silently (older or duplicate
/// within one commit), in time order like concatenated scrapes. Ends at `end` (seconds).
fn input(end: i64) -> String {
    let start = end - SPAN_S;
    let mut s = String::from("# HELP req_total Requests.\n");
    let mut t = start;
    let mut k = 0i64;
    while t <= end {
        for i in 0..12 {
            let code = ["200", "404", "500"][i % 3];
            writeln!(
                s,
                "req_total{{code=\"{code}\",instance=\"host-{i}\",path=\"/a \\\"q\\\" \\\\ b\"}} {} {t}",
                k * (i as i64 + 1)
            )
            .unwrap();
        }
        // Only in the middle hours: blocks without it must not invent it.
        if (t - start) > 2 * 3600 && (t - start) < 4 * 3600 {
            let v = match k % 4 {
                0 => "NaN".to_string(),
                1 => "+Inf".to_string(),
                2 => "-Inf".to_string(),
                _ => format!("{}.25", k),
            };
            writeln!(s, "temp_celsius{{room=\"r1\"}} {v} {t}").unwrap();
            // promtool drops these without a word: older and same-time samples in one commit.
            writeln!(s, "temp_celsius{{room=\"r1\"}} 7 {}", t - 30).unwrap();
            writeln!(s, "temp_celsius{{room=\"r1\"}} 8 {t}").unwrap();
        }
        writeln!(
            s,
            "temp_celsius{{room=\"r2\",empty=\"\"}} {}e-3 {t}.5",
            k % 17
        )
        .unwrap();
        t += STEP_S;
        k += 1;
    }
    s.push_str("# EOF\n");
    s
}

fn promtool_backfill(input: &Path, out: &Path) -> Output {
    Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(input)
        .arg(out)
        .output()
        .expect("running promtool")
}

fn promcore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_promcore"))
        .args(args)
        .output()
        .expect("running promcore")
}

fn promcore_backfill(input: &Path, out: &Path) -> Output {
    promcore(&[
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        &format!("--shards={SHARDS}"),
        &input.to_string_lossy(),
        &out.to_string_lossy(),
    ])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn start(binary: Binary, root: &Path, data: &Path, extra: &[&str]) -> Server {
    std::fs::create_dir_all(root).unwrap();
    let config = root.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    let mut s = Server::spawn(&binary, &config, data, free_port(), extra);
    s.wait_ready();
    s
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|x| x["metric"].to_string());
    v
}

/// Raw samples of every series in `[from, to]`: a range-vector instant query, whose range
/// starts before the data, so Prometheus 2.42's closed and Prometheus 3's open left end agree.
fn raw(s: &Server, from: i64, to: i64) -> Vec<Value> {
    let q = format!("{{__name__=~\".+\"}}[{}s]", to - from);
    let data = s.api(&format!("/api/v1/query?query={}&time={to}", urlencode(&q)));
    assert_eq!(data["resultType"], "matrix", "{data}");
    sorted(data["result"].as_array().cloned().unwrap_or_default())
}

/// Everything the API can say about the stored data, from one server.
fn views(s: &Server, from: i64, to: i64, names: &[&str]) -> Vec<(String, Value)> {
    let all = urlencode("{__name__=~\".+\"}");
    let mut out = vec![];
    let mut series = s.api(&format!(
        "/api/v1/series?match[]={all}&start={from}&end={to}"
    ));
    if let Some(a) = series.as_array_mut() {
        a.sort_by_key(|v| v.to_string());
    }
    out.push(("series".to_string(), series));
    out.push((
        "labels".into(),
        s.api(&format!("/api/v1/labels?start={from}&end={to}")),
    ));
    for name in ["__name__", "code", "path", "room", "instance"] {
        out.push((
            format!("label {name}"),
            s.api(&format!(
                "/api/v1/label/{name}/values?start={from}&end={to}"
            )),
        ));
    }
    out.push(("raw".into(), Value::Array(raw(s, from - 1, to))));
    for name in names {
        // Steps off the sample grid by 1 s, so that no sample sits exactly at the 5 m
        // lookback edge (2.42 includes it, Prometheus 3 does not).
        let q = urlencode(name);
        let r = s.api(&format!(
            "/api/v1/query_range?query={q}&start={}&end={to}&step=30",
            from + 1
        ));
        out.push((
            format!("query_range {name}"),
            Value::Array(sorted(r["result"].as_array().cloned().unwrap_or_default())),
        ));
    }
    out
}

fn assert_same(ours: &[(String, Value)], theirs: &[(String, Value)]) {
    assert_eq!(ours.len(), theirs.len());
    for ((what, a), (_, b)) in ours.iter().zip(theirs) {
        assert_eq!(a, b, "{what} differs: promcore vs Prometheus 2.42");
    }
}

fn block_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        if e.path().join("meta.json").is_file() {
            out.push(e.path());
        } else if e.path().is_dir() {
            out.extend(block_dirs(&e.path()));
        }
    }
    out
}

#[test]
fn backfill_serves_what_promtools_backfill_serves() {
    if !promtool_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Ends just before now, so that /federate (evaluated at now) sees the last samples.
    let end = now_s() - 30;
    let file = tmp.path().join("input.om");
    std::fs::write(&file, input(end)).unwrap();
    let (prom_data, core_data) = (tmp.path().join("prom-data"), tmp.path().join("core-data"));
    let o = promtool_backfill(&file, &prom_data);
    assert!(o.status.success(), "promtool: {}", text(&o.stderr));
    let o = promcore_backfill(&file, &core_data);
    assert!(o.status.success(), "promcore: {}", text(&o.stderr));
    let table = text(&o.stdout);
    assert!(table.starts_with("BLOCK ULID"), "{table}");

    // The same blocks' worth of data: promtool's stats equal the sums over the shards.
    let stats = |dir: &Path| {
        let mut by_range = std::collections::BTreeMap::<(i64, i64), [u64; 3]>::new();
        for b in block_dirs(dir) {
            let m: Value =
                serde_json::from_slice(&std::fs::read(b.join("meta.json")).unwrap()).unwrap();
            let e = by_range
                .entry((
                    m["minTime"].as_i64().unwrap(),
                    m["maxTime"].as_i64().unwrap(),
                ))
                .or_default();
            for (i, k) in ["numSamples", "numSeries", "numChunks"].iter().enumerate() {
                e[i] += m["stats"][k].as_u64().unwrap_or(0);
            }
        }
        by_range
    };
    let (theirs, ours) = (stats(&prom_data), stats(&core_data));
    assert!(theirs.len() >= 4, "{theirs:?}");
    assert_eq!(ours, theirs, "block ranges and [samples, series, chunks]");
    assert_eq!(
        table.lines().count() - 1,
        block_dirs(&core_data).len(),
        "one line per block:\n{table}"
    );

    let core = start(
        Binary::under_test(),
        &tmp.path().join("core"),
        &core_data,
        &[],
    );
    let prom = start(
        Binary::prometheus(),
        &tmp.path().join("prom"),
        &prom_data,
        &[],
    );
    let from = end - SPAN_S;
    let names = ["req_total", "temp_celsius", "rate(req_total[5m])"];
    let (a, b) = (
        views(&core, from, end, &names),
        views(&prom, from, end, &names),
    );
    assert!(
        b.iter()
            .any(|(w, v)| w == "raw" && v.as_array().is_some_and(|a| a.len() == 14)),
        "14 series expected"
    );
    assert_same(&a, &b);
    // /federate is evaluated at now: retried once in case a sample's lookback ended between
    // the two requests.
    let sel = "{__name__=~\".+\"}";
    // Prometheus adds an empty `instance` label to federated series that lack one (its
    // federation handler's implicit external label); promcore's /federate does not yet. An
    // empty label is an absent one, so empty labels are dropped on both sides.
    let federate = |s: &Server| {
        let mut v = s.federate(sel);
        for x in &mut v {
            x.labels.retain(|_, v| !v.is_empty());
        }
        v
    };
    let mut last = (vec![], vec![]);
    let same = wait_until(Duration::from_secs(5), || {
        let (x, y) = (federate(&core), federate(&prom));
        if x == y {
            return Some(x);
        }
        last = (x, y);
        None
    });
    let fed = same.unwrap_or_else(|| {
        panic!(
            "/federate differs: promcore\n{:?}\nPrometheus 2.42\n{:?}",
            last.0, last.1
        )
    });
    assert_eq!(fed.len(), 13, "the series with samples at the end: {fed:?}");
}

/// promtool's error, promcore's error and what each left on disk.
struct Failure {
    promtool: String,
    promcore: String,
    promtool_blocks: usize,
}

fn fail_both(tmp: &Path, name: &str, body: &str) -> Failure {
    let file = tmp.join(format!("{name}.om"));
    std::fs::write(&file, body).unwrap();
    let (p, c) = (
        tmp.join(format!("{name}-prom")),
        tmp.join(format!("{name}-core")),
    );
    let theirs = promtool_backfill(&file, &p);
    let ours = promcore_backfill(&file, &c);
    assert_eq!(theirs.status.code(), Some(1), "promtool on {name}");
    assert_eq!(ours.status.code(), Some(1), "promcore on {name}");
    assert!(
        block_dirs(&c).is_empty() && !c.join("promcore.json").exists(),
        "{name}: promcore left something in {}",
        c.display()
    );
    Failure {
        promtool: text(&theirs.stderr).trim().to_string(),
        promcore: text(&ours.stderr).trim().to_string(),
        promtool_blocks: block_dirs(&p).len(),
    }
}

#[test]
fn bad_inputs_fail_as_promtool_fails_and_write_nothing() {
    if !promtool_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();

    let f = fail_both(t, "no-eof", "a 1 1000\na 2 1015\n");
    assert_eq!(
        f.promtool,
        "getting min and max timestamp: next: data does not end with # EOF"
    );
    assert!(
        f.promcore
            .starts_with("getting min and max timestamp: next: ")
            && f.promcore.ends_with("data does not end with # EOF"),
        "{}",
        f.promcore
    );

    let f = fail_both(t, "bad-line", "a 1 1000\na{ 2 1015\n# EOF\n");
    assert!(f
        .promtool
        .starts_with("getting min and max timestamp: next: "));
    assert!(
        f.promcore
            .starts_with("getting min and max timestamp: next: line 2: "),
        "{}",
        f.promcore
    );

    let f = fail_both(t, "no-timestamp", "a 1 1000\nb 2\n# EOF\n");
    assert_eq!(f.promcore, f.promtool);

    // Out of order across promtool's 5000-sample commits, in the second block: promtool has
    // written the first block by then; promcore writes nothing.
    let mut body = String::from("early 1 10\n");
    for k in 0..5000 {
        writeln!(body, "m 1 {}", 7200 + k).unwrap();
    }
    body.push_str("m 1 7300\n# EOF\n");
    let f = fail_both(t, "out-of-order", &body);
    assert_eq!(
        f.promtool,
        "block creation: process blocks: add sample: out of order sample"
    );
    assert_eq!(f.promcore, f.promtool);
    assert_eq!(f.promtool_blocks, 1, "promtool keeps the block it wrote");

    let mut body = String::new();
    for k in 0..5000 {
        writeln!(body, "m 1 {}", 100 + k).unwrap();
    }
    body.push_str("m 2 5099\n# EOF\n");
    let f = fail_both(t, "duplicate", &body);
    assert_eq!(
        f.promtool,
        "block creation: process blocks: add sample: duplicate sample for timestamp"
    );
    assert_eq!(f.promcore, f.promtool);

    let o = promcore(&[
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        &t.join("absent.om").to_string_lossy(),
        &t.join("absent").to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).starts_with("open "), "{}", text(&o.stderr));
}

#[test]
fn an_existing_data_directory_keeps_its_shard_count() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("in.om");
    std::fs::write(&file, "a 1 1000\n# EOF\n").unwrap();
    let data = tmp.path().join("data");
    let f = file.to_string_lossy().to_string();
    let d = data.to_string_lossy().to_string();
    let run = |shards: Option<&str>| {
        let mut args = vec!["tsdb", "create-blocks-from", "openmetrics"];
        if let Some(s) = shards {
            args.push(s);
        }
        args.extend([f.as_str(), d.as_str()]);
        promcore(&args)
    };
    assert!(run(Some("--shards=3")).status.success());
    let o = run(Some("--shards=2"));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("created with 3 shards"),
        "{}",
        text(&o.stderr)
    );
    let o = run(None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        block_dirs(&data).len(),
        2,
        "the same sample twice, in its shard"
    );
    assert!(!data.join("lock").exists(), "the lock is released");
}

#[test]
fn a_prometheus_data_directory_imported_serves_the_same() {
    if !promtool_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let end = now_s() - 3 * 3600;
    let file = tmp.path().join("input.om");
    std::fs::write(&file, input(end)).unwrap();
    let prom_data = tmp.path().join("prom-data");
    let o = promtool_backfill(&file, &prom_data);
    assert!(o.status.success(), "promtool: {}", text(&o.stderr));

    // Prometheus deletes part of the data (tombstones in its blocks) and scrapes itself for
    // a few seconds (a WAL of its own), then stops.
    let root = tmp.path().join("prom");
    std::fs::create_dir_all(&root).unwrap();
    let config = root.join("prometheus.yml");
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let mut prom = Server::spawn(
        &Binary::prometheus(),
        &config,
        &prom_data,
        port,
        &["--web.enable-admin-api"],
    );
    prom.wait_ready();
    let del = format!(
        "/api/v1/admin/tsdb/delete_series?match[]={}&start={}&end={}",
        urlencode("req_total{code=\"404\"}"),
        end - 5 * 3600,
        end - 4 * 3600
    );
    assert_eq!(prom.post(&del).status, 204, "delete_series");
    let scraped = wait_until(PATIENCE, || {
        let d = prom.api(&format!(
            "/api/v1/query?query={}",
            urlencode("count_over_time(up[1m])")
        ));
        let n = d["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())?;
        (n >= 5.0).then_some(())
    });
    assert!(scraped.is_some(), "Prometheus never scraped itself");
    prom.stop();
    drop(prom);

    // promcore imports the directory; Prometheus reopens it without scraping.
    let core_data = tmp.path().join("core-data");
    let o = promcore(&[
        "tsdb",
        "import",
        &format!("--shards={SHARDS}"),
        &prom_data.to_string_lossy(),
        &core_data.to_string_lossy(),
    ]);
    assert!(o.status.success(), "import: {}", text(&o.stderr));
    let report = text(&o.stdout);
    assert!(report.contains("0 source blocks skipped"), "{report}");
    assert!(!report.contains("(0 samples from the WAL)"), "{report}");
    let core = start(
        Binary::under_test(),
        &tmp.path().join("core"),
        &core_data,
        &[],
    );
    let prom = start(
        Binary::prometheus(),
        &tmp.path().join("prom-again"),
        &prom_data,
        &[],
    );
    let (from, to) = (end - SPAN_S, now_s());
    let names = ["req_total"];
    let (a, b) = (
        views(&core, from, to, &names),
        views(&prom, from, to, &names),
    );
    let raw_b = &b.iter().find(|(w, _)| w == "raw").unwrap().1;
    assert!(
        raw_b.as_array().is_some_and(|a| a.len() > 20),
        "the backfilled series and Prometheus's own"
    );
    assert_same(&a, &b);
}

#[test]
fn import_reports_and_skips_a_corrupt_block() {
    if !promtool_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("input.om");
    std::fs::write(&file, input(1_700_000_000)).unwrap();
    let prom_data = tmp.path().join("prom-data");
    assert!(promtool_backfill(&file, &prom_data).status.success());
    let mut blocks = block_dirs(&prom_data);
    blocks.sort();
    let n = blocks.len();
    std::fs::write(blocks[0].join("index"), b"not an index").unwrap();
    let core_data = tmp.path().join("core-data");
    let o = promcore(&[
        "tsdb",
        "import",
        &format!("--shards={SHARDS}"),
        &prom_data.to_string_lossy(),
        &core_data.to_string_lossy(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("skipping block") && err.contains(&*blocks[0].to_string_lossy()),
        "{err}"
    );
    assert!(text(&o.stdout).contains("1 source blocks skipped"));
    let ranges: std::collections::BTreeSet<String> = block_dirs(&core_data)
        .iter()
        .map(|b| {
            let m: Value =
                serde_json::from_slice(&std::fs::read(b.join("meta.json")).unwrap()).unwrap();
            format!("{}-{}", m["minTime"], m["maxTime"])
        })
        .collect();
    assert_eq!(ranges.len(), n - 1, "every other block's time range");
}
