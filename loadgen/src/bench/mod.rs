//! `loadgen bench`: the ingestion benchmark. One `loadgen serve` offers the load; promcore,
//! Prometheus and VictoriaMetrics scrape it one after another (never at the same time, so
//! none steals the others' CPU), each from a fresh data directory; the results go to a
//! table, JSON and optionally BENCHMARKS.md.
//!
//! This module only sequences runs and decides what is skipped; measuring is `measure`,
//! the search is `saturation`, the output is `report`. It never leaves a process running.

pub mod client;
pub mod counters;
pub mod load;
pub mod measure;
pub mod options;
pub mod port;
pub mod proc_stat;
pub mod queries;
pub mod report;
pub mod restart;
pub mod saturation;
pub mod scrape_health;
pub mod server;

use std::path::PathBuf;

use thiserror::Error;

use crate::log;
use load::{BodyOptions, Load, LoadError, Loadgen};
use measure::Plan;
use options::BenchFlags;
use report::{Report, Saturation, Step};
use saturation::{Search, SearchConfig};
use server::Spec;

#[derive(Debug, Error)]
pub enum BenchError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("no server to benchmark: {0}")]
    NoServer(String),
    #[error("work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The work directory; removed at the end when the benchmark made it.
struct WorkDir {
    path: PathBuf,
    owned: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn work_dir(flags: &BenchFlags) -> Result<WorkDir, BenchError> {
    let (path, owned) = match &flags.work_dir {
        Some(p) => (p.clone(), false),
        None => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let p =
                std::env::temp_dir().join(format!("loadgen-bench.{}.{stamp}", std::process::id()));
            (p, true)
        }
    };
    std::fs::create_dir_all(&path).map_err(|source| BenchError::WorkDir {
        path: path.clone(),
        source,
    })?;
    Ok(WorkDir { path, owned })
}

/// The promcore binary: `--promcore`, or the one built next to this loadgen.
fn promcore_path(flags: &BenchFlags) -> PathBuf {
    flags.promcore.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("promcore")))
            .unwrap_or_else(|| PathBuf::from("promcore"))
    })
}

pub fn run(flags: &BenchFlags) -> Result<Report, BenchError> {
    let promcore = promcore_path(flags);
    let mut skipped = Vec::new();
    let mut specs = Vec::new();
    for kind in &flags.servers {
        match Spec::installed(*kind, &promcore) {
            Ok(s) => specs.push(s),
            Err(why) => {
                log::info("skipping server", &[("why", &why)]);
                skipped.push(why);
            }
        }
    }
    if specs.is_empty() {
        return Err(BenchError::NoServer(skipped.join("; ")));
    }
    let dir = work_dir(flags)?;
    let load = Load {
        targets: flags.targets,
        series_per_target: flags.series_per_target,
        interval: flags.interval,
    };
    let body = BodyOptions {
        openmetrics: flags.openmetrics,
        gzip_level: flags.gzip_level,
        churn_per_minute: flags.churn_per_minute,
        cores: flags.loadgen_cores,
        pin: flags.loadgen_pin,
    };
    let mut report = Report {
        started: log::now(),
        mode: if flags.saturate {
            "saturation"
        } else {
            "fixed"
        },
        command: flags.command.clone(),
        machine: report::machine(),
        skipped,
        fixed: Vec::new(),
        saturation: Vec::new(),
    };
    let plan = Plan {
        warmup: flags.warmup(),
        window: flags.window,
        restart: flags.restart && !flags.saturate,
        queries: flags.queries && !flags.saturate,
    };
    if flags.saturate {
        for spec in &specs {
            report
                .saturation
                .push(search(spec, load, &body, &plan, flags, &dir.path));
        }
        println!("{}", report::saturation_table(&report.saturation));
    } else {
        let loadgen = Loadgen::start(&load, &body, &dir.path)?;
        for spec in &specs {
            log::info(
                "measuring",
                &[
                    ("server", &spec.kind.name()),
                    ("offeredSamplesPerSecond", &load.offered_per_second()),
                ],
            );
            match measure::run(spec, &load, &loadgen, &dir.path, &plan) {
                Ok(r) => report.fixed.push(r),
                Err(e) => {
                    log::error(
                        "measurement failed",
                        &[("server", &spec.kind.name()), ("err", &e)],
                    );
                    report
                        .skipped
                        .push(format!("{} failed: {}", spec.kind.name(), e));
                }
            }
        }
        drop(loadgen);
        println!("{}", report::fixed_tables(&report.fixed));
    }
    report::write_json(&flags.json, &report).map_err(|source| BenchError::Output {
        path: flags.json.clone(),
        source,
    })?;
    if let Some(md) = &flags.markdown {
        report::write_markdown(md, &report).map_err(|source| BenchError::Output {
            path: md.clone(),
            source,
        })?;
    }
    Ok(report)
}

/// One server's saturation search; a fresh loadgen and a fresh server at every step.
fn search(
    spec: &Spec,
    load: Load,
    body: &BodyOptions,
    plan: &Plan,
    flags: &BenchFlags,
    dir: &std::path::Path,
) -> Saturation {
    let mut s = Search::new(SearchConfig {
        start_targets: flags.targets,
        factor: flags.step_factor,
        refine: flags.refine,
        resolution: flags.resolution,
        max_targets: flags.max_targets,
        max_steps: flags.max_steps,
    });
    let mut steps: Vec<Step> = Vec::new();
    while let Some(targets) = s.next() {
        let step_load = load.with_targets(targets);
        log::info(
            "saturation step",
            &[
                ("server", &spec.kind.name()),
                ("targets", &targets),
                ("offeredSamplesPerSecond", &step_load.offered_per_second()),
            ],
        );
        let outcome = Loadgen::start(&step_load, body, dir)
            .map_err(|e| e.to_string())
            .and_then(|lg| {
                measure::run(spec, &step_load, &lg, dir, plan).map_err(|e| e.to_string())
            });
        let step = match outcome {
            Ok(r) => Step {
                targets,
                offered_samples_per_s: step_load.offered_per_second(),
                falls_behind: r.falls_behind,
                result: Some(r),
                error: None,
            },
            Err(e) => {
                log::error("step failed", &[("server", &spec.kind.name()), ("err", &e)]);
                Step {
                    targets,
                    offered_samples_per_s: step_load.offered_per_second(),
                    falls_behind: true,
                    result: None,
                    error: Some(e),
                }
            }
        };
        s.record(targets, step.falls_behind);
        steps.push(step);
    }
    let best = s
        .good
        .and_then(|g| steps.iter().find(|st| st.targets == g && !st.falls_behind));
    Saturation {
        server: spec.kind.name(),
        highest_sustained_targets: s.good,
        highest_sustained_samples_per_s: best
            .and_then(|b| b.result.as_ref().map(|r| r.samples_per_s)),
        lowest_failed_targets: s.bad,
        lowest_failed_offered_samples_per_s: s.bad.and_then(|b| {
            steps
                .iter()
                .find(|st| st.targets == b)
                .map(|st| st.offered_samples_per_s)
        }),
        capped: s.capped(),
        steps,
    }
}
