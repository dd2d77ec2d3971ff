//! The server under test, started as its users start it (Prometheus's flags), and the same
//! binary's HTTP interface as the tests read it: readiness, `/federate` for values, the JSON
//! API, `/metrics`, lifecycle. By default the server is promcore
//! (`CARGO_BIN_EXE_promcore`); `E2E_SERVER_BIN=/usr/bin/prometheus` runs the same tests
//! against Prometheus itself, which validates the tests' own logic. promcore-only flags are
//! passed only to promcore.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use serde_json::Value;

use super::exposition::{self, Sample};
use super::http::{self, Response};
use super::process::Process;
use super::urlencode;
use super::wait::{wait_until, PATIENCE};

/// Storage shards of promcore in these tests: more than one, so that routing is exercised.
pub const SHARDS: usize = 2;

#[derive(Debug, Clone)]
pub struct Binary {
    pub path: PathBuf,
    /// promcore takes `--shards` and lays its data directory out in shard directories.
    pub promcore: bool,
}

impl Binary {
    /// promcore, unless `E2E_SERVER_BIN` names another Prometheus-compatible server.
    pub fn under_test() -> Binary {
        match std::env::var_os("E2E_SERVER_BIN") {
            Some(path) if !path.is_empty() => {
                let path = PathBuf::from(path);
                let promcore = path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("promcore"));
                Binary { path, promcore }
            }
            _ => Binary {
                path: PathBuf::from(env!("CARGO_BIN_EXE_promcore")),
                promcore: true,
            },
        }
    }

    /// Debian's Prometheus 2.42 (`.ci/run` installs it): the reference.
    pub fn prometheus() -> Binary {
        Binary {
            path: PathBuf::from("prometheus"),
            promcore: false,
        }
    }

    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(|| "server".into(), |n| n.to_string_lossy().into_owned())
    }
}

pub struct Server {
    pub binary: Binary,
    pub port: u16,
    pub config: PathBuf,
    pub data: PathBuf,
    process: Process,
}

impl Server {
    /// Writes `config` to `dir/prometheus.yml`, starts the server under test on `port` with
    /// its data in `dir/data`, and waits until it is ready.
    pub fn start(dir: &Path, port: u16, config: &str) -> Server {
        let config_path = dir.join("prometheus.yml");
        write_config(&config_path, config);
        let mut server = Server::spawn(
            &Binary::under_test(),
            &config_path,
            &dir.join("data"),
            port,
            &[],
        );
        server.wait_ready();
        server
    }

    /// Starts `binary` without waiting for it. Its log goes next to the configuration file,
    /// in a file of its own per start (`<binary>-<port>.log`).
    pub fn spawn(
        binary: &Binary,
        config: &Path,
        data: &Path,
        port: u16,
        extra_args: &[&str],
    ) -> Server {
        Server::spawn_with_env(binary, config, data, port, extra_args, &[])
    }

    /// `spawn` with extra environment variables (e.g. promcore's `PROMCORE_CRASH_AT` test
    /// hook).
    pub fn spawn_with_env(
        binary: &Binary,
        config: &Path,
        data: &Path,
        port: u16,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let log = config
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("{}-{port}.log", binary.name()));
        let mut command = Command::new(&binary.path);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle")
            .args(extra_args)
            .envs(env.iter().copied());
        if binary.promcore {
            command.arg(format!("--shards={SHARDS}"));
        }
        Server {
            binary: binary.clone(),
            port,
            config: config.to_path_buf(),
            data: data.to_path_buf(),
            process: Process::spawn(&binary.name(), command, &log),
        }
    }

    /// Waits (bounded) until `/-/ready` answers 200; panics if the server exits first.
    pub fn wait_ready(&mut self) {
        let ready = wait_until(PATIENCE, || {
            if let Some(status) = self.process.exited() {
                panic!(
                    "{} exited with {status} before it was ready\n{}",
                    self.binary.name(),
                    self.process.log_tail()
                );
            }
            match http::get(self.port, "/-/ready") {
                Ok(r) if r.status == 200 => Some(()),
                _ => None,
            }
        });
        assert!(ready.is_some(), "{} never became ready", self.binary.name());
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    pub fn signal(&self, signal: i32) {
        self.process.signal(signal);
    }

    /// SIGKILL: the crash.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGTERM, then waits (bounded) for the exit; the status of a clean stop.
    pub fn stop(&mut self) -> ExitStatus {
        self.process.signal(libc::SIGTERM);
        self.process
            .wait_exit(PATIENCE)
            .unwrap_or_else(|| panic!("{} ignored SIGTERM", self.binary.name()))
    }

    /// Waits (bounded) for the server to exit on its own, as it must on a bad start.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(within)
    }

    pub fn rewrite_config(&self, config: &str) {
        write_config(&self.config, config);
    }

    pub fn get(&self, path: &str) -> Response {
        http::get(self.port, path).unwrap_or_else(|e| self.fail(&format!("GET {path}: {e}")))
    }

    pub fn post(&self, path: &str) -> Response {
        http::post(self.port, path, "application/x-www-form-urlencoded", b"")
            .unwrap_or_else(|e| self.fail(&format!("POST {path}: {e}")))
    }

    /// A `/api/v1/...` answer's `data`, after checking the status and envelope.
    pub fn api(&self, path: &str) -> Value {
        let r = self.get(path);
        let text = r.text();
        assert_eq!(r.status, 200, "GET {path}: {text}");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {text}"));
        assert_eq!(v["status"], "success", "GET {path}: {text}");
        v["data"].clone()
    }

    /// `/api/v1/series?match[]=selector`: each series' labels, `__name__` included.
    pub fn series(&self, selector: &str) -> Vec<serde_json::Map<String, Value>> {
        let data = self.api(&format!("/api/v1/series?match[]={}", urlencode(selector)));
        data.as_array()
            .unwrap_or_else(|| panic!("series of {selector}: not an array: {data}"))
            .iter()
            .map(|s| s.as_object().cloned().unwrap_or_default())
            .collect()
    }

    /// A list endpoint (`/api/v1/labels`, `/api/v1/label/<name>/values`) as strings.
    pub fn strings(&self, path: &str) -> Vec<String> {
        let data = self.api(path);
        data.as_array()
            .unwrap_or_else(|| panic!("{path}: not an array: {data}"))
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// The latest sample of every series matching `selector`, with its timestamp.
    pub fn federate(&self, selector: &str) -> Vec<Sample> {
        let path = format!("/federate?match[]={}", urlencode(selector));
        let r = self.get(&path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        exposition::parse(&r.text()).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// The server's own `/metrics`.
    pub fn metrics(&self) -> Vec<Sample> {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "GET /metrics: {}", r.text());
        exposition::parse(&r.text()).unwrap_or_else(|e| panic!("GET /metrics: {e}"))
    }

    /// The value of an unlabelled series of the server's own `/metrics`.
    pub fn own_metric(&self, name: &str) -> Option<f64> {
        exposition::one(&self.metrics(), name, &[]).map(|s| s.value)
    }

    /// `/api/v1/targets`' active targets.
    pub fn active_targets(&self) -> Vec<Value> {
        let data = self.api("/api/v1/targets");
        data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("no activeTargets array: {data}"))
    }

    fn fail(&self, what: &str) -> ! {
        panic!("{what}\n{}", self.process.log_tail())
    }
}

fn write_config(path: &Path, config: &str) {
    std::fs::write(path, config).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
