//! The load a benchmark offers, and the `loadgen serve` child process that offers it.
//!
//! loadgen runs as a separate process (this same binary) so its CPU is measured from /proc
//! exactly as a server's is, and so a server and the targets it scrapes never share an
//! address space. This module never measures a server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

/// Series every scrape adds per target besides the body's: up, scrape_duration_seconds,
/// scrape_samples_scraped, scrape_samples_post_metric_relabeling, scrape_series_added.
pub const REPORT_SERIES: usize = 5;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("starting loadgen serve ({binary}): {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("loadgen serve exited with {status}; log tail:\n{log}")]
    Exited { status: String, log: String },
    #[error("loadgen serve did not write {sd} within {limit:?}")]
    Timeout { sd: PathBuf, limit: Duration },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// targets × series at one scrape interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Load {
    pub targets: usize,
    pub series_per_target: usize,
    #[serde(serialize_with = "seconds")]
    pub interval: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Load {
    /// Series a server holds from this load (the body's and the scrape's own).
    pub fn active_series(&self) -> usize {
        self.targets * (self.series_per_target + REPORT_SERIES)
    }

    /// Samples per second a server must ingest to keep up.
    pub fn offered_per_second(&self) -> f64 {
        self.active_series() as f64 / self.interval.as_secs_f64().max(1e-3)
    }

    pub fn with_targets(self, targets: usize) -> Load {
        Load { targets, ..self }
    }
}

/// How loadgen shapes the bodies, besides the load's size.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyOptions {
    pub openmetrics: bool,
    pub gzip_level: u32,
    pub churn_per_minute: f64,
    pub cores: Option<usize>,
    pub pin: bool,
}

/// A running `loadgen serve`; stopped (SIGTERM, then killed) when dropped.
pub struct Loadgen {
    child: Child,
    pub sd_file: PathBuf,
    log: PathBuf,
}

impl Loadgen {
    pub fn start(load: &Load, body: &BodyOptions, dir: &Path) -> Result<Loadgen, LoadError> {
        let binary = std::env::current_exe()?;
        let sd_file = dir.join(format!("targets-{}.json", load.targets));
        let log = dir.join(format!("loadgen-{}.log", load.targets));
        let _ = std::fs::remove_file(&sd_file);
        let mut cmd = Command::new(&binary);
        cmd.arg("serve")
            .arg("--base-port=0")
            .arg("--report-every=3600")
            .arg(format!("--targets={}", load.targets))
            .arg(format!("--series-per-target={}", load.series_per_target))
            .arg(format!("--gzip-level={}", body.gzip_level))
            .arg(format!("--churn={}", body.churn_per_minute))
            .arg(format!(
                "--format={}",
                if body.openmetrics {
                    "openmetrics"
                } else {
                    "text"
                }
            ))
            .arg(format!("--sd-file={}", sd_file.display()));
        if let Some(c) = body.cores {
            cmd.arg(format!("--cores={c}"));
        }
        if !body.pin {
            cmd.arg("--pin=false");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .map_err(|source| LoadError::Spawn { binary, source })?;
        let mut lg = Loadgen {
            child,
            sd_file,
            log,
        };
        let limit = Duration::from_secs(120);
        let started = Instant::now();
        while !lg.sd_file.exists() {
            if let Some(status) = lg.child.try_wait()? {
                return Err(LoadError::Exited {
                    status: status.to_string(),
                    log: std::fs::read_to_string(&lg.log).unwrap_or_default(),
                });
            }
            if started.elapsed() > limit {
                return Err(LoadError::Timeout {
                    sd: lg.sd_file.clone(),
                    limit,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(lg)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Loadgen {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own, not yet reaped, child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_rate_counts_the_scrape_series() {
        let l = Load {
            targets: 200,
            series_per_target: 1000,
            interval: Duration::from_secs(10),
        };
        assert_eq!(l.active_series(), 201_000);
        assert!((l.offered_per_second() - 20_100.0).abs() < 1e-9);
        assert_eq!(l.with_targets(400).active_series(), 402_000);
    }
}
