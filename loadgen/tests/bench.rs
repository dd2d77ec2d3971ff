//! End to end: the real `loadgen bench` against the real promcore binary only, under a tiny
//! load for a few seconds, and the JSON and markdown it writes. Checks that every figure
//! the report promises is there and consistent; no figure is held to a speed.
//!
//! promcore is `PROMCORE_BIN`, or the workspace's `target/debug/promcore`
//! (`cargo build --bin promcore`; `cargo test --workspace` builds it).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TARGETS: u64 = 3;
const SERIES: u64 = 100;
const INTERVAL_S: u64 = 1;
const WINDOW_S: u64 = 4;

fn promcore() -> PathBuf {
    let path = std::env::var_os("PROMCORE_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/promcore")
        });
    assert!(
        path.is_file(),
        "no promcore binary at {}: build it with `cargo build --bin promcore` or set PROMCORE_BIN",
        path.display()
    );
    path
}

#[test]
fn bench_against_promcore_writes_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let md = dir.path().join("BENCHMARKS.md");
    std::fs::write(&md, "# Benchmarks\n\nOther sections stay.\n").unwrap();
    let log = dir.path().join("bench.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("bench")
        .arg("--servers=promcore")
        .arg(format!("--promcore={}", promcore().display()))
        .arg(format!("--targets={TARGETS}"))
        .arg(format!("--series-per-target={SERIES}"))
        .arg(format!("--interval={INTERVAL_S}"))
        .arg("--warmup=2")
        .arg(format!("--window={WINDOW_S}"))
        .arg("--loadgen-cores=1")
        .arg(format!("--json={}", json.display()))
        .arg(format!("--markdown={}", md.display()))
        .arg(format!("--work-dir={}", dir.path().join("work").display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start loadgen bench");
    let limit = Duration::from_secs(300);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "loadgen bench still running after {limit:?}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "loadgen bench failed: {status}\n{log_text}"
    );

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["mode"], "fixed");
    assert_eq!(report["skipped"].as_array().unwrap().len(), 0, "{report}");
    let fixed = report["fixed"].as_array().unwrap();
    assert_eq!(fixed.len(), 1, "{report}");
    let r = &fixed[0];
    assert_eq!(r["server"], "promcore");
    assert_eq!(r["load"]["targets"], TARGETS);
    assert_eq!(r["load"]["series_per_target"], SERIES);
    assert_eq!(r["active_series"], TARGETS * (SERIES + 5));
    let offered = r["offered_samples_per_s"].as_f64().unwrap();
    assert!((offered - (TARGETS * (SERIES + 5)) as f64 / INTERVAL_S as f64).abs() < 1e-6);
    // Every figure is measured, not defaulted: samples came in, CPU and memory were used.
    assert!(r["samples_ingested"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["samples_per_s"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["cpu_s_per_million_samples"].is_f64(), "{r}");
    assert!(r["rss_bytes"].as_u64().unwrap() > 0, "{r}");
    assert!(r["rss_bytes_per_series"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["loadgen_cpu_seconds"].is_f64(), "{r}");
    assert!(r["falls_behind"].is_boolean());

    let scrape = &r["scrape"];
    assert_eq!(
        scrape["expected_scrapes"],
        TARGETS * WINDOW_S / INTERVAL_S,
        "{r}"
    );
    assert!(scrape["scrapes"].as_u64().unwrap() > 0, "{r}");
    let (p50, p99) = (
        scrape["duration_p50_ms"].as_f64().unwrap(),
        scrape["duration_p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{scrape}");

    let restart = &r["restart"];
    assert!(restart.is_object(), "restart not measured: {r}");
    for (ready, query) in [
        ("clean_ready_s", "clean_first_query_s"),
        ("kill_ready_s", "kill_first_query_s"),
    ] {
        let (ready, query) = (
            restart[ready].as_f64().unwrap(),
            restart[query].as_f64().unwrap(),
        );
        assert!(ready > 0.0 && ready <= query, "{restart}");
    }

    let queries = r["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 6);
    for q in queries {
        assert!(q["error"].is_null(), "{q}");
        assert!(q["median_ms"].as_f64().unwrap() > 0.0, "{q}");
    }
    // count(up == 1) over all the targets: one series; topk(10, ...) of a gauge: ten.
    assert_eq!(queries[0]["series"], 1);
    assert_eq!(queries[4]["series"], 10);

    let md_text = std::fs::read_to_string(&md).unwrap();
    assert!(md_text.starts_with("# Benchmarks\n\nOther sections stay.\n"));
    assert!(md_text.contains("<!-- loadgen-bench:fixed:begin -->"));
    assert!(md_text.contains("| promcore | "), "{md_text}");
    assert!(md_text
        .trim_end()
        .ends_with("<!-- loadgen-bench:fixed:end -->"));
}
