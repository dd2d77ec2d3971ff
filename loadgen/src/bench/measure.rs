//! One server under one fixed load: started fresh, warmed up, measured over a window
//! (samples ingested from its own counter, CPU and RSS from /proc, loadgen's CPU alongside),
//! then asked for its scrape health, the fixed query set, and restart times.
//!
//! This module sequences a measurement; the numbers' meaning lives in the modules it calls.
//! It never starts loadgen (the caller owns the load) and leaves no server running.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use super::client::{self, ClientError};
use super::counters;
use super::load::{Load, Loadgen};
use super::port;
use super::proc_stat;
use super::queries::{self, QueryLatency};
use super::restart::{self, RestartTimes};
use super::saturation;
use super::scrape_health::{self, ScrapeHealth};
use super::server::{self, Running, ServerError, Spec};
use crate::cpu::CpuError;

#[derive(Debug, Error)]
pub enum MeasureError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("reading /proc: {0}")]
    Proc(#[from] CpuError),
    #[error("{server} does not expose {counter} on /metrics")]
    NoCounter {
        server: &'static str,
        counter: &'static str,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What to do around the measured window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub warmup: Duration,
    pub window: Duration,
    pub restart: bool,
    pub queries: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServerResult {
    pub server: &'static str,
    pub version: String,
    pub load: Load,
    pub window_s: f64,
    pub offered_samples_per_s: f64,
    pub samples_ingested: f64,
    pub samples_per_s: f64,
    pub cpu_seconds: f64,
    pub cpu_s_per_million_samples: Option<f64>,
    pub cores_used: f64,
    pub rss_bytes: u64,
    pub active_series: usize,
    pub rss_bytes_per_series: f64,
    pub loadgen_cpu_seconds: f64,
    pub loadgen_cores_used: f64,
    pub scrape: Option<ScrapeHealth>,
    pub scrape_error: Option<String>,
    pub falls_behind: bool,
    pub restart: Option<RestartTimes>,
    pub restart_error: Option<String>,
    pub queries: Vec<QueryLatency>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn ingested(server: &Running) -> Result<f64, MeasureError> {
    let counter = server.spec.kind.ingest_counter();
    counters::sum(&server.metrics()?, &counter).ok_or(MeasureError::NoCounter {
        server: server.name(),
        counter: counter.name,
    })
}

fn matrix(server: &Running, query: &str, at: f64) -> Result<scrape_health::Matrix, String> {
    let path = format!("/api/v1/query?query={}&time={at:.3}", client::encode(query));
    let body =
        client::get_ok(server.addr, &path, Duration::from_secs(120)).map_err(|e| e.to_string())?;
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("{query}: not JSON: {e}"))?;
    scrape_health::parse_matrix(&v)
}

/// Measures `spec` scraping `loadgen`'s targets; `dir` holds its data and log.
pub fn run(
    spec: &Spec,
    load: &Load,
    loadgen: &Loadgen,
    dir: &Path,
    plan: &Plan,
) -> Result<ServerResult, MeasureError> {
    let name = spec.kind.name();
    let data = dir.join(format!("{name}-data"));
    let _ = std::fs::remove_dir_all(&data);
    let config = dir.join(format!("{name}.yml"));
    std::fs::write(
        &config,
        server::scrape_config(&loadgen.sd_file, load.interval),
    )?;
    let log = dir.join(format!("{name}.log"));
    let mut srv = Running::start(spec, &config, &data, port::free_addr()?, &log)?;
    let started = Instant::now();
    srv.wait_ready(started, restart::LIMIT)?;
    // A server's counter may appear only with its first scrape (Prometheus applies new
    // targets a few seconds after start): the warm-up starts from there.
    let counter = spec.kind.ingest_counter();
    srv.wait_for("ingesting", started, restart::LIMIT, |addr| {
        client::get_ok(addr, "/metrics", Duration::from_secs(20))
            .is_ok_and(|m| counters::sum(&m, &counter).is_some_and(|n| n > 0.0))
    })?;
    std::thread::sleep(plan.warmup);

    let (s0, c0, l0, t0) = (
        ingested(&srv)?,
        proc_stat::read(srv.pid())?,
        proc_stat::read(loadgen.pid())?,
        Instant::now(),
    );
    std::thread::sleep(plan.window);
    let (s1, c1, l1, wall) = (
        ingested(&srv)?,
        proc_stat::read(srv.pid())?,
        proc_stat::read(loadgen.pid())?,
        t0.elapsed(),
    );
    let at = unix_now();
    // Scrape health is read one interval back, so no scrape still in flight at the end of
    // the window counts as missed.
    let health_at = at - load.interval.as_secs_f64();

    let samples = (s1 - s0).max(0.0);
    let cpu = proc_stat::cpu_seconds(&c0, &c1);
    let loadgen_cpu = proc_stat::cpu_seconds(&l0, &l1);
    let span = format!("[{}s]", plan.window.as_secs().max(1));
    let scrape = matrix(&srv, &format!("scrape_duration_seconds{span}"), health_at).and_then(|d| {
        let up = matrix(&srv, &format!("up{span}"), health_at)?;
        Ok(scrape_health::assess(
            &d,
            &up,
            load.targets,
            load.interval,
            plan.window,
        ))
    });
    let samples_per_s = samples / wall.as_secs_f64().max(1e-9);
    let offered = load.offered_per_second();
    let falls_behind = saturation::falls_behind(samples_per_s, offered, scrape.as_ref().ok());
    let queries = if plan.queries {
        queries::run(srv.addr, at, plan.window)
    } else {
        Vec::new()
    };
    let restart = if plan.restart {
        Some(restart::measure(&mut srv).map_err(|e| e.to_string()))
    } else {
        None
    };
    let _ = srv.stop_with(libc::SIGTERM, restart::LIMIT);
    let _ = std::fs::remove_dir_all(&data);
    let active = load.active_series();
    Ok(ServerResult {
        server: name,
        version: spec.version(),
        load: *load,
        window_s: wall.as_secs_f64(),
        offered_samples_per_s: offered,
        samples_ingested: samples,
        samples_per_s,
        cpu_seconds: cpu,
        cpu_s_per_million_samples: proc_stat::cpu_per_million(cpu, samples),
        cores_used: proc_stat::cores(cpu, wall),
        rss_bytes: c1.rss_bytes,
        active_series: active,
        rss_bytes_per_series: c1.rss_bytes as f64 / active.max(1) as f64,
        loadgen_cpu_seconds: loadgen_cpu,
        loadgen_cores_used: proc_stat::cores(loadgen_cpu, wall),
        scrape_error: scrape.as_ref().err().cloned(),
        scrape: scrape.ok(),
        falls_behind,
        restart_error: restart.as_ref().and_then(|r| r.as_ref().err().cloned()),
        restart: restart.and_then(Result::ok),
        queries,
    })
}
