//! A SIGKILL during scraping loses nothing acknowledged. A sample is acknowledged once the
//! server shows it (`/federate`); the test records every `up` and target sample it sees,
//! kills the server with SIGKILL mid-scraping, restarts it on the same data directory and
//! sees scraping resume, stops it cleanly, then has Prometheus 2.42 itself read the data
//! (each promcore shard directory is a Prometheus TSDB directory) and finds every recorded
//! sample there, with its timestamp and value.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use common::exposition::{self, one};
use common::server::SHARDS;
use common::{urlencode, wait_until, Binary, Reply, Server, TestTarget, PATIENCE};

const JOB: &str = "crash";
const PROBE: &str = "crash_probe_requests_total";
/// Scrapes seen before the kill, and after the restart.
const BEFORE_KILL: usize = 4;
const AFTER_RESTART: usize = 2;

/// Timestamp (ms) → value of one series.
type Samples = BTreeMap<i64, f64>;

/// Records the latest `up` and probe samples of the job until `up` has `count` timestamps
/// after `after`.
fn record(
    server: &Server,
    seen_up: &mut Samples,
    seen_probe: &mut Samples,
    after: i64,
    count: usize,
) {
    let selector = format!(r#"{{job="{JOB}"}}"#);
    let done = wait_until(PATIENCE, || {
        let latest = server.federate(&selector);
        for (name, seen) in [("up", &mut *seen_up), (PROBE, &mut *seen_probe)] {
            if let Some(s) = one(&latest, name, &[]) {
                let t = s.timestamp.expect("federation carries timestamps");
                seen.insert(t, s.value);
            }
        }
        (seen_up.range(after + 1..).count() >= count).then_some(())
    });
    assert!(
        done.is_some(),
        "fewer than {count} scrapes seen after {after}: {seen_up:?}"
    );
}

/// The TSDB directories of a stopped server's data directory.
fn tsdb_dirs(binary: &Binary, data: &Path) -> Vec<PathBuf> {
    if !binary.promcore {
        return vec![data.to_path_buf()];
    }
    (0..SHARDS)
        .map(|i| {
            let dir = data.join(format!("shard-{i:03}"));
            assert!(dir.is_dir(), "no shard directory {}", dir.display());
            dir
        })
        .collect()
}

/// Starts Prometheus 2.42 on `tsdb` (no scrape jobs) and reads every raw sample of
/// `selector` in the last hour.
fn read_with_prometheus(
    tmp: &Path,
    tsdb: &Path,
    snapshot: bool,
    selectors: &[&str],
) -> Vec<Samples> {
    let config = tmp.join(format!(
        "reference-{}.yml",
        tsdb.file_name()
            .map_or("data".into(), |n| n.to_string_lossy())
    ));
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("writing the config");
    let mut extra = vec!["--storage.tsdb.retention.time=30d"];
    if snapshot {
        // promcore writes a head snapshot on clean shutdown: have Prometheus load it.
        extra.push("--enable-feature=memory-snapshot-on-shutdown");
    }
    let mut reference = Server::spawn(
        &Binary::prometheus(),
        &config,
        tsdb,
        common::free_port(),
        &extra,
    );
    reference.wait_ready();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as f64
        / 1000.0;
    selectors
        .iter()
        .map(|selector| {
            let query = urlencode(&format!("{selector}[1h]"));
            let data = reference.api(&format!("/api/v1/query?query={query}&time={now:.3}"));
            assert_eq!(data["resultType"], "matrix", "{data}");
            let mut samples = Samples::new();
            for series in data["result"].as_array().into_iter().flatten() {
                for point in series["values"].as_array().into_iter().flatten() {
                    let t = point[0].as_f64().expect("sample time") * 1000.0;
                    let v = exposition::parse_value(point[1].as_str().unwrap_or(""))
                        .unwrap_or_else(|e| panic!("{e}: {point}"));
                    samples.insert(t.round() as i64, v);
                }
            }
            samples
        })
        .collect()
}

#[test]
fn a_sigkill_during_scraping_loses_nothing_acknowledged() {
    let target =
        TestTarget::serve(|n| Reply::Metrics(format!("# TYPE {PROBE} counter\n{PROBE} {n}\n")));
    let tmp = tempfile::tempdir().expect("temporary directory");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{}']\n",
        target.address()
    );
    let mut server = Server::start(tmp.path(), common::free_port(), &config);
    let (mut up, mut probe) = (Samples::new(), Samples::new());
    record(&server, &mut up, &mut probe, 0, BEFORE_KILL);
    server.kill();
    let last_before_kill = up.keys().next_back().copied().unwrap_or(0);

    // Restart on the same data directory: scraping resumes.
    let binary = server.binary.clone();
    let mut server = Server::spawn(
        &binary,
        &server.config.clone(),
        &server.data.clone(),
        common::free_port(),
        &[],
    );
    server.wait_ready();
    record(
        &server,
        &mut up,
        &mut probe,
        last_before_kill,
        AFTER_RESTART,
    );
    let status = server.stop();
    assert!(status.success(), "clean stop exited with {status}");
    assert!(up.values().all(|&v| v == 1.0), "{up:?}");
    assert!(!probe.is_empty(), "{PROBE} never seen");

    // Prometheus reads every sample the server showed, from whichever shard holds it.
    let selectors = [
        format!(r#"up{{job="{JOB}"}}"#),
        format!(r#"{PROBE}{{job="{JOB}"}}"#),
    ];
    let selectors: Vec<&str> = selectors.iter().map(String::as_str).collect();
    let (mut stored_up, mut stored_probe) = (Samples::new(), Samples::new());
    for dir in tsdb_dirs(&binary, &server.data) {
        let read = read_with_prometheus(tmp.path(), &dir, binary.promcore, &selectors);
        stored_up.extend(&read[0]);
        stored_probe.extend(&read[1]);
    }
    for (what, seen, stored) in [("up", &up, &stored_up), (PROBE, &probe, &stored_probe)] {
        let lost: Vec<(&i64, &f64)> = seen
            .iter()
            .filter(|(t, v)| stored.get(t) != Some(v))
            .collect();
        assert!(
            lost.is_empty(),
            "{what}: acknowledged samples lost or changed: {lost:?}\nstored: {stored:?}"
        );
    }
}
