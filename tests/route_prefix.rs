//! `--web.external-url` with a path, and `--web.route-prefix`: every endpoint is served under
//! the prefix, and requests outside it get what Prometheus 2.42 (Debian's) gives them —
//! redirects for `/` and the bare prefix, 404 elsewhere. Both servers are started with the
//! same flags and the same requests are compared (status, `Location`, content type, body
//! where it does not describe the process).

mod common;

use std::path::Path;

use common::http;
use common::{free_port, wait_until, Binary, Server, PATIENCE};

const CONFIG: &str = "global:\n  scrape_interval: 1s\nscrape_configs: []\n";

fn start(binary: &Binary, dir: &Path, args: &[&str], ready: &str) -> Server {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, CONFIG).unwrap();
    let port = free_port();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("PORT", &port.to_string()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = Server::spawn(binary, &config, &dir.join("data"), port, &args);
    let up = wait_until(PATIENCE, || match http::get(port, ready) {
        Ok(r) if r.status == 200 => Some(()),
        _ => None,
    });
    assert!(
        up.is_some(),
        "{} never ready\n{}",
        binary.name(),
        s.log_tail()
    );
    s
}

/// What is compared of one answer.
fn answer(port: u16, method: &str, path: &str) -> (u16, Option<String>, Option<String>, String) {
    let r = http::request(port, method, path, &[], b"")
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let ct = r.header("content-type").map(str::to_string);
    let location = r.header("location").map(str::to_string);
    // Bodies of these status and build pages describe the process; the envelope is checked.
    let body = if path.contains("/status/") {
        serde_json::from_slice::<serde_json::Value>(&r.body)
            .map(|v| v["status"].to_string())
            .unwrap_or_else(|_| r.text())
    } else if path.contains("/metrics") || path.contains("/federate") {
        String::new()
    } else {
        r.text()
    };
    (r.status, location, ct, body)
}

fn compare(args: &[&str], ready: &str, cases: &[(&str, &str)]) {
    let reference = Binary::prometheus();
    if std::process::Command::new(&reference.path)
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no `prometheus` binary (Debian's 2.42) on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prom = start(&reference, &dir.path().join("prometheus"), args, ready);
    let ours = start(&Binary::under_test(), &dir.path().join("ours"), args, ready);
    let mut failures = Vec::new();
    for (method, path) in cases {
        let (a, b) = (
            answer(prom.port, method, path),
            answer(ours.port, method, path),
        );
        if a != b {
            failures.push(format!(
                "{method} {path}\n  prometheus: {a:?}\n  ours:       {b:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn external_url_path_is_the_route_prefix() {
    compare(
        &["--web.external-url=http://127.0.0.1:PORT/prom/"],
        "/prom/-/ready",
        &[
            ("GET", "/"),
            ("GET", "/prom"),
            ("GET", "/prom/api/v1/query?query=1%2B1&time=4"),
            ("POST", "/prom/api/v1/query?query=1%2B1&time=4"),
            ("GET", "/prom/api/v1/labels"),
            ("GET", "/prom/api/v1/label/__name__/values"),
            ("GET", "/prom/api/v1/status/buildinfo"),
            ("GET", "/prom/api/v1/nope"),
            ("GET", "/prom/-/healthy"),
            ("GET", "/prom/-/ready"),
            ("GET", "/prom/metrics"),
            ("GET", "/prom/federate?match[]=up"),
            ("GET", "/api/v1/query?query=1"),
            ("GET", "/api/v1/status/buildinfo"),
            ("GET", "/-/ready"),
            ("GET", "/-/healthy"),
            ("GET", "/metrics"),
            ("GET", "/federate"),
            ("GET", "/promx"),
            ("GET", "/promx/api/v1/labels"),
            ("GET", "/other/api/v1/labels"),
        ],
    );
}

#[test]
fn route_prefix_flag_overrides_the_external_url() {
    compare(
        &[
            "--web.external-url=http://127.0.0.1:PORT/ignored/",
            "--web.route-prefix=/a/b/",
        ],
        "/a/b/-/ready",
        &[
            ("GET", "/"),
            ("GET", "/a/b"),
            ("GET", "/a/b/api/v1/query?query=2&time=4"),
            ("GET", "/a/b/-/healthy"),
            ("GET", "/ignored/api/v1/query?query=2&time=4"),
            ("GET", "/a/api/v1/query?query=2&time=4"),
            ("GET", "/api/v1/query?query=2&time=4"),
        ],
    );
}
