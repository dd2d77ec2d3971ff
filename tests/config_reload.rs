//! A configuration with a mistake is refused: at start-up the server exits non-zero naming
//! the field's path; sent by reload (POST /-/reload) it is refused, the running
//! configuration keeps scraping and `prometheus_config_last_reload_successful` turns 0.
//! A good configuration reloaded by SIGHUP then takes effect and the metric is 1 again.

mod common;

use std::collections::BTreeSet;

use common::exposition::one;
use common::{wait_until, Binary, Server, TestTarget, PATIENCE};

fn page(name: &str) -> String {
    format!("# TYPE {name} gauge\n{name} 1\n")
}

fn good_config(jobs: &[(&str, &TestTarget)]) -> String {
    let mut config =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (job, target) in jobs {
        config.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['{}']\n",
            target.address()
        ));
    }
    config
}

/// A mistake inside `scrape_configs[0]`, with a good job after it.
struct Mistake {
    what: &'static str,
    /// The first job's extra line.
    line: &'static str,
    /// The path promcore must name.
    path: &'static str,
}

const MISTAKES: [Mistake; 2] = [
    Mistake {
        what: "bad duration",
        line: "scrape_interval: 1 minute",
        path: "scrape_configs[0].scrape_interval",
    },
    Mistake {
        what: "unknown field",
        line: "sample_limt: 100",
        path: "scrape_configs[0].sample_limt",
    },
];

fn bad_config(mistake: &Mistake, a: &TestTarget, b: &TestTarget) -> String {
    format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: b
    {line}
    static_configs:
      - targets: ['{b}']
  - job_name: a
    static_configs:
      - targets: ['{a}']
",
        line = mistake.line,
        a = a.address(),
        b = b.address(),
    )
}

#[test]
fn a_config_with_a_mistake_is_refused_at_start_with_the_field_path() {
    let a = TestTarget::metrics(page("a_metric"));
    let b = TestTarget::metrics(page("b_metric"));
    let binary = Binary::under_test();
    for mistake in &MISTAKES {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let config = tmp.path().join("prometheus.yml");
        std::fs::write(&config, bad_config(mistake, &a, &b)).expect("writing the config");
        let port = common::free_port();
        let mut server = Server::spawn(&binary, &config, &tmp.path().join("data"), port, &[]);
        let status = server
            .wait_exit(PATIENCE)
            .unwrap_or_else(|| panic!("{}: the server kept running", mistake.what));
        assert!(!status.success(), "{}: exited with {status}", mistake.what);
        if binary.promcore {
            let log = server.log();
            assert!(
                log.contains(mistake.path),
                "{}: the error does not name {}: {log}",
                mistake.what,
                mistake.path
            );
        }
    }
}

/// Waits until job's `up` has a sample newer than `after` and returns its timestamp; every
/// `up` seen on the way must be 1.
fn next_up(server: &Server, job: &str, after: i64) -> i64 {
    let selector = format!(r#"up{{job="{job}"}}"#);
    wait_until(PATIENCE, || {
        let latest = server.federate(&selector);
        let up = one(&latest, "up", &[])?;
        assert_eq!(up.value, 1.0, "{job} is down: {latest:?}");
        up.timestamp.filter(|&t| t > after)
    })
    .unwrap_or_else(|| panic!("{job} is not scraped any more"))
}

fn reload_successful(server: &Server) -> Option<f64> {
    server.own_metric("prometheus_config_last_reload_successful")
}

fn configured_jobs(server: &Server) -> BTreeSet<String> {
    let config = server.api("/api/v1/status/config");
    let yaml = config["yaml"].as_str().unwrap_or("");
    yaml.lines()
        .filter_map(|l| l.trim().strip_prefix("- job_name:"))
        .map(|j| j.trim().to_string())
        .collect()
}

#[test]
fn a_refused_reload_keeps_the_old_config_and_sighup_applies_a_good_one() {
    let a = TestTarget::metrics(page("a_metric"));
    let b = TestTarget::metrics(page("b_metric"));
    let tmp = tempfile::tempdir().expect("temporary directory");
    let server = Server::start(tmp.path(), common::free_port(), &good_config(&[("a", &a)]));
    let mut t = next_up(&server, "a", 0);
    assert_eq!(reload_successful(&server), Some(1.0));
    assert_eq!(configured_jobs(&server), BTreeSet::from(["a".to_string()]));

    for mistake in &MISTAKES {
        server.rewrite_config(&bad_config(mistake, &a, &b));
        let r = server.post("/-/reload");
        assert!(
            !r.is_success(),
            "{}: reload accepted: {} {}",
            mistake.what,
            r.status,
            r.text()
        );
        assert!(
            !r.text().trim().is_empty(),
            "{}: refused without a reason",
            mistake.what
        );
        if server.binary.promcore {
            assert!(
                r.text().contains(mistake.path),
                "{}: {}",
                mistake.what,
                r.text()
            );
        }
        assert_eq!(reload_successful(&server), Some(0.0), "{}", mistake.what);
        // The running configuration is untouched and keeps scraping.
        assert_eq!(configured_jobs(&server), BTreeSet::from(["a".to_string()]));
        for _ in 0..2 {
            t = next_up(&server, "a", t);
        }
        let b_up = server.federate(r#"up{job="b"}"#);
        assert!(b_up.is_empty(), "{}: job b scraped: {b_up:?}", mistake.what);
    }

    // A good configuration, reloaded by SIGHUP: the new target is scraped, the old one
    // still is, and the last reload succeeded.
    server.rewrite_config(&good_config(&[("a", &a), ("b", &b)]));
    server.signal(libc::SIGHUP);
    next_up(&server, "b", 0);
    t = next_up(&server, "a", t);
    next_up(&server, "a", t);
    let reloaded = wait_until(PATIENCE, || {
        (reload_successful(&server) == Some(1.0)).then_some(())
    });
    assert!(
        reloaded.is_some(),
        "prometheus_config_last_reload_successful stays 0"
    );
    assert_eq!(
        configured_jobs(&server),
        BTreeSet::from(["a".to_string(), "b".to_string()])
    );
    let targets = server.active_targets();
    assert_eq!(targets.len(), 2, "{targets:?}");
    let b_metric = server.federate("b_metric");
    assert_eq!(
        one(&b_metric, "b_metric", &[("job", "b")]).map(|s| s.value),
        Some(1.0)
    );
}
