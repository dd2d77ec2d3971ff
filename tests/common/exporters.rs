//! Debian's real exporters on loopback ports: `prometheus-node-exporter` and
//! `prometheus-pushgateway` (`.ci/run` installs both). Each runs with its state in the
//! test's temporary directory and is killed when its guard is dropped.

use std::path::Path;
use std::process::Command;

use super::free_port;
use super::http;
use super::process::Process;
use super::wait::{wait_until, PATIENCE};

pub struct Exporter {
    pub port: u16,
    process: Process,
}

impl Exporter {
    /// node_exporter with its default collectors, as it is deployed.
    pub fn node_exporter(dir: &Path) -> Exporter {
        let port = free_port();
        let mut command = Command::new("prometheus-node-exporter");
        command.arg(format!("--web.listen-address=127.0.0.1:{port}"));
        Exporter::start("node_exporter", command, dir, port, Some("/metrics"))
    }

    /// node_exporter serving TLS as `web_config` (see `pki::web_config`) says.
    pub fn node_exporter_tls(dir: &Path, web_config: &Path) -> Exporter {
        let port = free_port();
        let mut command = Command::new("prometheus-node-exporter");
        command
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--web.config.file={}", web_config.display()));
        Exporter::start("node_exporter_tls", command, dir, port, None)
    }

    /// A Pushgateway keeping what is pushed in memory only (no persistence file shared with
    /// a system-wide instance).
    pub fn pushgateway(dir: &Path) -> Exporter {
        let port = free_port();
        let mut command = Command::new("prometheus-pushgateway");
        command
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--persistence.file=");
        Exporter::start("pushgateway", command, dir, port, Some("/metrics"))
    }

    /// Starts and waits until `probe` answers 200 over plain HTTP, or, for a TLS server
    /// (`None`), until the port accepts connections.
    fn start(name: &str, command: Command, dir: &Path, port: u16, probe: Option<&str>) -> Exporter {
        let mut process = Process::spawn(name, command, &dir.join(format!("{name}.log")));
        let up = wait_until(PATIENCE, || {
            if let Some(status) = process.exited() {
                panic!("{name} exited with {status}\n{}", process.log_tail());
            }
            match probe {
                Some(probe) => match http::get(port, probe) {
                    Ok(r) if r.status == 200 => Some(()),
                    _ => None,
                },
                None => std::net::TcpStream::connect(("127.0.0.1", port))
                    .ok()
                    .map(drop),
            }
        });
        assert!(up.is_some(), "{name} never answered on {probe:?}");
        Exporter { port, process }
    }

    /// `host:port`, as a static target.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

/// Debian's Alertmanager on a loopback port, alone (`--cluster.listen-address=` turns
/// clustering off), with its state in the test's directory; its API is what the tests read
/// to see which alerts arrived.
pub fn alertmanager(dir: &Path) -> Exporter {
    alertmanager_with(dir, None)
}

/// Alertmanager serving HTTPS as `web_config` (see `pki::web_config`) says.
pub fn alertmanager_tls(dir: &Path, web_config: &Path) -> Exporter {
    alertmanager_with(dir, Some(web_config))
}

fn alertmanager_with(dir: &Path, web_config: Option<&Path>) -> Exporter {
    let port = free_port();
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
    )
    .expect("writing alertmanager.yml");
    let storage = dir.join("alertmanager-data");
    let mut command = Command::new("prometheus-alertmanager");
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", storage.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=");
    match web_config {
        None => Exporter::start("alertmanager", command, dir, port, Some("/-/ready")),
        Some(w) => {
            command.arg(format!("--web.config.file={}", w.display()));
            Exporter::start("alertmanager_tls", command, dir, port, None)
        }
    }
}
