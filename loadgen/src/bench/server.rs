//! The servers under test and how each is started, checked and stopped: promcore, Debian's
//! Prometheus 2.42 and VictoriaMetrics 1.79, each on a free loopback port with its own data
//! directory, scraping the file_sd file loadgen wrote.
//!
//! This module owns the command lines and process lifetimes (a running server is killed
//! when dropped); it never measures anything itself. Which counter counts ingested samples
//! and which path says "ready" are facts about each server, kept here next to its flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::client;
use super::counters::Counter;

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("starting {name} ({binary}): {source}")]
    Spawn {
        name: &'static str,
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("{name} exited with {status} {what}; log tail:\n{log}")]
    Exited {
        name: &'static str,
        status: String,
        what: &'static str,
        log: String,
    },
    #[error("{name} was not {what} within {limit:?}; log tail:\n{log}")]
    Timeout {
        name: &'static str,
        what: &'static str,
        limit: Duration,
        log: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Promcore,
    Prometheus,
    VictoriaMetrics,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Promcore, Kind::Prometheus, Kind::VictoriaMetrics];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Promcore => "promcore",
            Kind::Prometheus => "prometheus",
            Kind::VictoriaMetrics => "victoria-metrics",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The counter of samples taken in from scrapes. VictoriaMetrics counts scraped rows
    /// under `vm_rows_inserted_total{type="promscrape"}` before they reach storage.
    pub fn ingest_counter(self) -> Counter {
        match self {
            Kind::Promcore | Kind::Prometheus => Counter {
                name: "prometheus_tsdb_head_samples_appended_total",
                label: None,
            },
            Kind::VictoriaMetrics => Counter {
                name: "vm_rows_inserted_total",
                label: Some(("type", "promscrape")),
            },
        }
    }

    /// The path that answers 200 once the server serves queries.
    pub fn ready_path(self) -> &'static str {
        match self {
            Kind::Promcore | Kind::Prometheus => "/-/ready",
            Kind::VictoriaMetrics => "/health",
        }
    }

    fn args(self, config: &Path, data: &Path, addr: SocketAddr) -> Vec<String> {
        let (c, d) = (config.display(), data.display());
        match self {
            Kind::Promcore | Kind::Prometheus => vec![
                format!("--config.file={c}"),
                format!("--storage.tsdb.path={d}"),
                format!("--web.listen-address={addr}"),
            ],
            Kind::VictoriaMetrics => vec![
                format!("-promscrape.config={c}"),
                format!("-storageDataPath={d}"),
                format!("-httpListenAddr={addr}"),
                // By default VictoriaMetrics hides the newest 30 s from queries and caches
                // answers; the scrape-health and query measurements need neither.
                "-search.latencyOffset=0s".to_string(),
                "-search.disableCache".to_string(),
            ],
        }
    }
}

/// A server binary to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub kind: Kind,
    pub binary: PathBuf,
}

impl Spec {
    /// Debian's install location, or `None` (with the reason) when not installed.
    pub fn installed(kind: Kind, promcore: &Path) -> Result<Spec, String> {
        let binary = match kind {
            Kind::Promcore => promcore.to_path_buf(),
            Kind::Prometheus => PathBuf::from("/usr/bin/prometheus"),
            Kind::VictoriaMetrics => PathBuf::from("/usr/bin/victoria-metrics"),
        };
        if binary.is_file() {
            Ok(Spec { kind, binary })
        } else {
            Err(format!("{} not found at {}", kind.name(), binary.display()))
        }
    }

    /// Version line the server prints, for the report; Debian's VictoriaMetrics prints an
    /// empty one, so the Debian package's version stands in.
    pub fn version(&self) -> String {
        let printed = self.printed_version();
        if !printed.is_empty() {
            return printed;
        }
        Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", self.kind.name()])
            .stdin(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty())
            .map_or_else(
                || "unknown".to_string(),
                |v| format!("{} {v} (Debian package)", self.kind.name()),
            )
    }

    fn printed_version(&self) -> String {
        let flag = match self.kind {
            Kind::VictoriaMetrics => "-version",
            _ => "--version",
        };
        Command::new(&self.binary)
            .arg(flag)
            .stdin(Stdio::null())
            .output()
            .ok()
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr);
                text.lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }
}

/// A started server; killed when dropped.
pub struct Running {
    pub spec: Spec,
    pub addr: SocketAddr,
    pub data: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Running {
    /// Starts `spec` on `addr` with data in `data`, appending its output to `log`.
    pub fn start(
        spec: &Spec,
        config: &Path,
        data: &Path,
        addr: SocketAddr,
        log: &Path,
    ) -> Result<Running, ServerError> {
        let mut running = Running {
            spec: spec.clone(),
            addr,
            data: data.to_path_buf(),
            config: config.to_path_buf(),
            log: log.to_path_buf(),
            child: None,
        };
        running.spawn()?;
        Ok(running)
    }

    fn spawn(&mut self) -> Result<(), ServerError> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.spec.binary)
            .args(self.spec.kind.args(&self.config, &self.data, self.addr))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|source| ServerError::Spawn {
                name: self.spec.kind.name(),
                binary: self.spec.binary.clone(),
                source,
            })?;
        self.child = Some(child);
        Ok(())
    }

    pub fn name(&self) -> &'static str {
        self.spec.kind.name()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn exited(&mut self, what: &'static str) -> Result<(), ServerError> {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ServerError::Exited {
                    name: self.spec.kind.name(),
                    status: status.to_string(),
                    what,
                    log: self.log_tail(),
                });
            }
        }
        Ok(())
    }

    /// Polls `check` every 20 ms until it holds, the server exits, or `limit` passes.
    /// Returns the time it took from `since`.
    pub fn wait_for(
        &mut self,
        what: &'static str,
        since: Instant,
        limit: Duration,
        mut check: impl FnMut(SocketAddr) -> bool,
    ) -> Result<Duration, ServerError> {
        loop {
            self.exited(what)?;
            if check(self.addr) {
                return Ok(since.elapsed());
            }
            if since.elapsed() > limit {
                return Err(ServerError::Timeout {
                    name: self.spec.kind.name(),
                    what,
                    limit,
                    log: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the ready path answers 200.
    pub fn wait_ready(&mut self, since: Instant, limit: Duration) -> Result<Duration, ServerError> {
        let path = self.spec.kind.ready_path();
        self.wait_for("ready", since, limit, |addr| {
            client::get(addr, path, Duration::from_secs(2)).is_ok_and(|r| r.status == 200)
        })
    }

    /// The server's own exposition.
    pub fn metrics(&self) -> Result<String, client::ClientError> {
        client::get_ok(self.addr, "/metrics", Duration::from_secs(20))
    }

    /// Sends `signal` and waits (bounded) for the process to exit; returns how long it took.
    pub fn stop_with(&mut self, signal: i32, limit: Duration) -> Result<Duration, ServerError> {
        let started = Instant::now();
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        // SAFETY: kill(2) on our own child's pid; the child has not been reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, signal);
        }
        loop {
            if child.try_wait()?.is_some() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ServerError::Timeout {
                    name: self.spec.kind.name(),
                    what: "stopped",
                    limit,
                    log: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the same server again on the same address and data directory.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        if self.child.is_some() {
            self.stop_with(libc::SIGKILL, Duration::from_secs(30))?;
        }
        self.spawn()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The scrape configuration every server reads: one job over loadgen's file_sd file.
pub fn scrape_config(sd_file: &Path, interval: Duration) -> String {
    let secs = interval.as_secs().max(1);
    format!(
        "global:\n  scrape_interval: {secs}s\n  scrape_timeout: {timeout}s\nscrape_configs:\n  - job_name: loadgen\n    file_sd_configs:\n      - files: [\"{sd}\"]\n",
        timeout = secs.min(10),
        sd = sd_file.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_counters_differ() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
        assert_eq!(Kind::from_name("thanos"), None);
        assert_eq!(
            Kind::VictoriaMetrics.ingest_counter().label,
            Some(("type", "promscrape"))
        );
    }

    #[test]
    fn config_points_at_the_sd_file() {
        let c = scrape_config(Path::new("/tmp/t.json"), Duration::from_secs(15));
        assert!(c.contains("scrape_interval: 15s"));
        assert!(c.contains("scrape_timeout: 10s"));
        assert!(c.contains("files: [\"/tmp/t.json\"]"));
    }
}
