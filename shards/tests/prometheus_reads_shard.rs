//! The reference test: a shard directory written by this crate (WAL, chunks_head, and after
//! a clean close a snapshot) is opened by Prometheus 2.42 itself (Debian's `prometheus`), and
//! Prometheus's HTTP API must return exactly the series, timestamps and values appended —
//! special floats bit for bit, stale markers acting as stale markers. The batches carry start
//! timestamps, which a shard without start-timestamp storage (the default) drops.
//!
//! Needs the `prometheus` binary on PATH (`.ci/run` installs it).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{free_port, http_get, run_local, urlencode, wait_for};
use serde_json::Value;
use shards::head::{AppendBatch, BatchSample, SeriesKey};
use shards::labels::Labels;
use shards::shard::{Shard, ShardOptions};
use shards::wal::PageCacheFs;

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
const STEP: i64 = 15_000;
const SAMPLES: i64 = 400;

type Expected = BTreeMap<String, Vec<(i64, u64)>>;

/// Appends the test data in scrape-like batches; returns what each series must hold and
/// the times at which the stale-marked series went stale.
async fn write_shard(dir: &Path, t0: i64, clean_close: bool) -> (Expected, i64) {
    let opts = ShardOptions {
        snapshot_on_shutdown: clean_close,
        ..Default::default()
    };
    let (mut shard, _) = Shard::open(dir, opts, PageCacheFs, |_| {}).await.unwrap();
    let mut series = Vec::new();
    for i in 0..20 {
        series.push(
            Labels::from_pairs([
                ("__name__", "ref_counter_total"),
                ("job", "ref"),
                ("i", &i.to_string()),
            ])
            .unwrap(),
        );
    }
    series.push(Labels::from_pairs([("__name__", "ref_special"), ("job", "ref")]).unwrap());
    series.push(Labels::from_pairs([("__name__", "ref_goes_stale"), ("job", "ref")]).unwrap());
    let specials = [
        f64::NAN.to_bits(),
        f64::INFINITY.to_bits(),
        f64::NEG_INFINITY.to_bits(),
        (-0.0f64).to_bits(),
        1e-310f64.to_bits(),
        f64::MAX.to_bits(),
        f64::MIN_POSITIVE.to_bits(),
        0.1f64.to_bits(),
    ];
    let stale_at = t0 + 250 * STEP;
    let mut refs: Vec<Option<u64>> = vec![None; series.len()];
    let mut expected = Expected::new();
    let mut counters = [0.0f64; 20];
    for k in 0..SAMPLES {
        let t = t0 + k * STEP;
        let mut batch = AppendBatch::default();
        let mut push = |idx: usize, bits: u64, batch: &mut AppendBatch| {
            let key = match refs[idx] {
                Some(r) => SeriesKey::Ref(r),
                None => {
                    batch.new_series.push(series[idx].clone());
                    SeriesKey::New(batch.new_series.len() as u32 - 1)
                }
            };
            batch.samples.push(BatchSample {
                series: key,
                t,
                v: f64::from_bits(bits),
            });
            // Every sample comes with a start timestamp, which the shard (start-timestamp
            // storage off, the default) must drop, keeping its files 2.42-readable.
            batch.start_timestamps.push(t0 - 1000);
            expected
                .entry(series[idx].to_string())
                .or_default()
                .push((t, bits));
        };
        for (i, c) in counters.iter_mut().enumerate() {
            *c += ((k as usize * 7 + i * 13) % 17) as f64 * 0.5;
            push(i, c.to_bits(), &mut batch);
        }
        push(20, specials[k as usize % specials.len()], &mut batch);
        if t < stale_at {
            push(21, (k as f64).to_bits(), &mut batch);
        } else if t == stale_at {
            push(21, STALE_NAN, &mut batch);
        }
        let out = shard.append(&batch).await.unwrap();
        let mut new_refs = out.series_refs.iter();
        for r in refs.iter_mut().filter(|r| r.is_none()) {
            if let Some(&n) = new_refs.next() {
                *r = Some(n);
            }
        }
        assert_eq!(out.appended as usize, batch.samples.len());
    }
    if clean_close {
        shard.close().await.unwrap();
    } else {
        // As after a crash: no snapshot, chunks_head left preallocated, WAL page partial.
        shard.sync().await.unwrap();
        std::mem::forget(shard);
    }
    (expected, stale_at)
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_prometheus(data: &Path, port: u16, snapshot_feature: bool) -> Prometheus {
    let cfg = data.parent().unwrap().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=30d")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(data.parent().unwrap().join("prometheus.log")).unwrap(),
        ));
    if snapshot_feature {
        cmd.arg("--enable-feature=memory-snapshot-on-shutdown");
    }
    Prometheus(
        cmd.spawn()
            .expect("the prometheus binary (Debian package `prometheus`) must be installed"),
    )
}

fn api(port: u16, path: &str) -> Value {
    let (status, body) = http_get(port, path).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{path}: {body}");
    v["data"].clone()
}

fn labels_of(metric: &Value) -> Labels {
    let pairs = metric
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()));
    Labels::from_pairs(pairs).unwrap()
}

fn parse_value(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap(),
    }
}

fn check_against_prometheus(clean_close: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shard-000");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Data from 2 h ago, on whole seconds: the head spans 100 min, so Prometheus keeps it all
    // in its head (no compaction at start-up), and crosses a 2 h chunk-range boundary.
    let t0 = (now - 2 * 3600 * 1000) / 1000 * 1000;
    let dir = data.clone();
    let (expected, stale_at) =
        run_local(move || async move { write_shard(&dir, t0, clean_close).await });
    let chunk_files = std::fs::read_dir(data.join("chunks_head")).unwrap().count();
    assert!(chunk_files >= 1, "chunks_head must hold the cut chunks");

    let port = free_port();
    let _prom = start_prometheus(&data, port, clean_close);
    let ready = wait_for(Duration::from_secs(90), || {
        match http_get(port, "/-/ready") {
            Ok((200, _)) => Some(()),
            _ => None,
        }
    });
    assert!(
        ready.is_some(),
        "Prometheus did not become ready; see {}",
        tmp.path().join("prometheus.log").display()
    );

    let log = std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap();
    if clean_close {
        // Prometheus itself loaded the snapshot we wrote, rather than ignoring it.
        assert!(log.contains("chunk snapshot loaded"), "{log}");
        assert!(!log.contains("Deleting chunk snapshot"), "{log}");
    }
    assert!(!log.contains("level=error"), "{log}");
    let (_, metrics) = http_get(port, "/metrics").unwrap();
    assert!(
        metrics.contains("\nprometheus_tsdb_mmap_chunk_corruptions_total 0\n"),
        "chunks_head rejected"
    );
    // After the snapshot, Prometheus replays no WAL sample: everything older than the open
    // chunks below comes from the chunks_head files we wrote.

    // Every series, with its labels.
    let series = api(
        port,
        &format!("/api/v1/series?match[]={}", urlencode(r#"{job="ref"}"#)),
    );
    let mut got_series: Vec<String> = series
        .as_array()
        .unwrap()
        .iter()
        .map(|m| labels_of(m).to_string())
        .collect();
    got_series.sort();
    let want_series: Vec<String> = expected.keys().cloned().collect();
    assert_eq!(got_series, want_series);

    // Every sample, raw: a range selector over the whole span at the last timestamp.
    let end = t0 + (SAMPLES - 1) * STEP;
    let q = urlencode(r#"{job="ref"}[3h]"#);
    let m = api(
        port,
        &format!("/api/v1/query?query={q}&time={}", end as f64 / 1000.0),
    );
    assert_eq!(m["resultType"], "matrix");
    let mut got = Expected::new();
    for s in m["result"].as_array().unwrap() {
        let pts = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                (t, parse_value(p[1].as_str().unwrap()).to_bits())
            })
            .collect();
        got.insert(labels_of(&s["metric"]).to_string(), pts);
    }
    // PromQL drops stale markers from range selectors; everything else must be there exactly.
    let mut want = expected.clone();
    for pts in want.values_mut() {
        pts.retain(|&(_, bits)| bits != STALE_NAN);
        for p in pts.iter_mut() {
            // Prometheus renders every NaN as "NaN": compare NaNs by class, not payload.
            if f64::from_bits(p.1).is_nan() {
                p.1 = f64::NAN.to_bits();
            }
        }
    }
    for pts in got.values_mut() {
        for p in pts.iter_mut() {
            if f64::from_bits(p.1).is_nan() {
                p.1 = f64::NAN.to_bits();
            }
        }
    }
    assert_eq!(got, want);

    // The stale marker is one: right before it the series has a value, right after it none,
    // although its last real sample is within the 5 m lookback.
    let at = |t: i64| {
        api(
            port,
            &format!(
                "/api/v1/query?query=ref_goes_stale&time={}",
                t as f64 / 1000.0
            ),
        )
    };
    assert_eq!(at(stale_at - 1000)["result"].as_array().unwrap().len(), 1);
    assert_eq!(
        at(stale_at + 1000)["result"].as_array().unwrap().len(),
        0,
        "stale marker not honoured"
    );
    // And a plain NaN is a value, not a marker.
    let nan_at = t0; // specials[0] is NaN at k = 0
    let v = api(
        port,
        &format!(
            "/api/v1/query?query=ref_special&time={}",
            nan_at as f64 / 1000.0
        ),
    );
    assert_eq!(v["result"][0]["value"][1], "NaN");
}

#[test]
fn prometheus_reads_a_cleanly_closed_shard() {
    check_against_prometheus(true);
}

#[test]
fn prometheus_reads_a_crashed_shard() {
    check_against_prometheus(false);
}
