//! https scrapes of a real node_exporter (Debian's `prometheus-node-exporter`) serving TLS
//! with certificates the test makes: verified against the job's `ca_file`, refused with a
//! clear lastError for a CA that did not sign it or a server name it is not valid for,
//! accepted with `insecure_skip_verify`, and with a client certificate (`cert_file`,
//! `key_file`) where node_exporter requires one (mutual TLS). A job whose CA cannot be read
//! is left out, and unusable files are refused where promtool and Prometheus 2.42 refuse them.

mod common;

use common::exporters::Exporter;
use common::exposition::one;
use common::pki::{web_config, Pki};
use common::{wait_until, Server, PATIENCE};
use serde_json::Value;

#[test]
fn https_scrapes_verify_the_server_and_present_a_client_certificate() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path();
    let pki = Pki::new(dir, "good");
    let other = Pki::new(dir, "other");
    let (server_cert, server_key) = pki.issue("server", &["localhost", "127.0.0.1"]);
    let (client_cert, client_key) = pki.issue("client", &["promcore"]);
    let plain_tls = web_config(dir, "tls", &server_cert, &server_key, None);
    let mutual = web_config(dir, "mtls", &server_cert, &server_key, Some(&pki.ca_file()));
    let node = Exporter::node_exporter_tls(dir, &plain_tls);
    let node_mtls = Exporter::node_exporter_tls(dir, &mutual);

    let port = common::free_port();
    let ca = pki.ca_file();
    let config = format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: verified
    scheme: https
    tls_config: {{ca_file: {ca}}}
    static_configs: [{{targets: ['{node}']}}]
  - job_name: by_name
    scheme: https
    tls_config: {{ca_file: {ca}, server_name: localhost}}
    static_configs: [{{targets: ['{node}']}}]
  - job_name: wrong_ca
    scheme: https
    tls_config: {{ca_file: {other_ca}}}
    static_configs: [{{targets: ['{node}']}}]
  - job_name: wrong_name
    scheme: https
    tls_config: {{ca_file: {ca}, server_name: wrong.example}}
    static_configs: [{{targets: ['{node}']}}]
  - job_name: insecure
    scheme: https
    tls_config: {{insecure_skip_verify: true}}
    static_configs: [{{targets: ['{node}']}}]
  - job_name: mutual
    scheme: https
    tls_config: {{ca_file: {ca}, cert_file: {client_cert}, key_file: {client_key}}}
    static_configs: [{{targets: ['{node_mtls}']}}]
  - job_name: mutual_without_certificate
    scheme: https
    tls_config: {{ca_file: {ca}}}
    static_configs: [{{targets: ['{node_mtls}']}}]
  - job_name: unreadable_ca
    scheme: https
    tls_config: {{ca_file: /nonexistent/ca.pem}}
    static_configs: [{{targets: ['{node}']}}]
",
        ca = ca.display(),
        other_ca = other.ca_file().display(),
        client_cert = client_cert.display(),
        client_key = client_key.display(),
        node = node.address(),
        node_mtls = node_mtls.address(),
    );
    let server = Server::start(dir, port, &config);

    let up_jobs = ["verified", "by_name", "insecure", "mutual"];
    // The first two are Prometheus 2.42's words for the same certificates, compared by
    // running it against the same node_exporter.
    let url = format!("https://{}/metrics", node.address());
    let down_jobs = [
        (
            "wrong_ca",
            format!("Get \"{url}\": x509: certificate signed by unknown authority"),
        ),
        (
            "wrong_name",
            format!("Get \"{url}\": x509: certificate is valid for localhost, not wrong.example"),
        ),
        // What Go 1.19's server (node_exporter) answers a client without a certificate.
        (
            "mutual_without_certificate",
            "remote error: tls: bad certificate".to_string(),
        ),
    ];
    // Every job has been scraped at least twice: `up` is known and kept-alive connections
    // have carried a second scrape.
    let mut last = Vec::new();
    let settled = wait_until(PATIENCE, || {
        last = server.active_targets();
        last.iter()
            .all(|t| t["lastScrape"] != "0001-01-01T00:00:00Z" && t["health"] != "unknown")
            .then_some(())
            .filter(|()| last.len() == up_jobs.len() + down_jobs.len())
            .and_then(|()| {
                let ups = server.federate("up");
                up_jobs
                    .iter()
                    .all(|job| one(&ups, "up", &[("job", job)]).is_some_and(|s| s.value == 1.0))
                    .then_some(())
            })
    });
    assert!(
        settled.is_some(),
        "targets did not settle: {last:#?}\n{}",
        node.log_tail()
    );
    let target = |job: &str| -> Value {
        last.iter()
            .find(|t| t["labels"]["job"] == job)
            .cloned()
            .unwrap_or_else(|| panic!("no target for {job}: {last:?}"))
    };
    for job in up_jobs {
        let t = target(job);
        assert_eq!(t["health"], "up", "{t}");
        assert_eq!(
            t["scrapeUrl"].as_str().map(|u| u.starts_with("https://")),
            Some(true),
            "{t}"
        );
        let cpu = server.series(&format!("node_cpu_seconds_total{{job=\"{job}\"}}"));
        assert!(!cpu.is_empty(), "{job}: no node_cpu_seconds_total");
    }
    let ups = server.federate("up");
    // As in Prometheus 2.42, a job whose CA cannot be read has no scrape pool: no target,
    // no `up`, and the rest of the configuration runs.
    assert!(
        last.iter().all(|t| t["labels"]["job"] != "unreadable_ca"),
        "{last:?}"
    );
    assert!(one(&ups, "up", &[("job", "unreadable_ca")]).is_none());
    for (job, gist) in &down_jobs {
        let t = target(job);
        assert_eq!(t["health"], "down", "{t}");
        let error = t["lastError"].as_str().unwrap_or("");
        assert!(
            error.contains(gist),
            "{job}: lastError {error:?} does not say {gist:?}"
        );
        assert!(
            one(&ups, "up", &[("job", job)]).is_some_and(|s| s.value == 0.0),
            "{job}: {ups:?}"
        );
        assert!(
            server
                .series(&format!("node_cpu_seconds_total{{job=\"{job}\"}}"))
                .is_empty(),
            "{job} stored samples"
        );
    }
}

/// Where unusable TLS files count, as promtool and Prometheus 2.42 decide (both run here on
/// the same files): `check config` refuses a missing client certificate or key but not an
/// unreadable CA; the server starts with a scrape job's unreadable CA (the job is left out,
/// see above) and refuses to start when an Alertmanager's CA cannot be read.
#[test]
fn unusable_tls_files_are_refused_where_prometheus_refuses_them() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let config = tmp.path().join("prometheus.yml");
    let job = |tls: &str| {
        format!("scrape_configs:\n  - job_name: j\n    scheme: https\n    tls_config: {tls}\n    static_configs: [{{targets: ['localhost:1']}}]\n")
    };
    let cases = [
        (job("{ca_file: missing-ca.pem}"), None),
        (
            job("{cert_file: c.pem, key_file: k.pem}"),
            Some("error checking client cert file \"/"),
        ),
        (
            job("{cert_file: c.pem}"),
            // Relative to the configuration file, as Prometheus (and promtool) print it.
            Some("client cert file \"/"),
        ),
        (job("{min_version: TLS14}"), Some("TLS14")),
        (
            "alerting:\n  alertmanagers:\n    - tls_config: {ca_file: missing-ca.pem}\n"
                .to_string(),
            None,
        ),
    ];
    for (text, refused) in &cases {
        std::fs::write(&config, text).unwrap();
        for tool in [common::Binary::under_test().path, "promtool".into()] {
            let out = std::process::Command::new(&tool)
                .args(["check", "config"])
                .arg(&config)
                .output()
                .expect("running check config");
            let said = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                out.status.success(),
                refused.is_none(),
                "{tool:?} on {text}: {said}"
            );
            if let Some(want) = refused {
                assert!(
                    said.contains(want),
                    "{tool:?}: {said:?} does not say {want:?}"
                );
            }
        }
    }
    std::fs::write(&config, job("{ca: inline}")).unwrap();
    let out = std::process::Command::new(common::Binary::under_test().path)
        .args(["check", "config"])
        .arg(&config)
        .output()
        .expect("running promcore check config");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `ca`"));

    std::fs::write(&config, &cases[4].0).unwrap();
    let mut server = Server::spawn(
        &common::Binary::under_test(),
        &config,
        &tmp.path().join("data"),
        common::free_port(),
        &[],
    );
    let status = server.wait_exit(PATIENCE);
    assert!(
        status.is_some_and(|s| !s.success()),
        "started with an unreadable Alertmanager CA: {status:?}\n{}",
        server.log_tail()
    );
    assert!(
        server.log().contains(
            "alerting.alertmanagers[0].tls_config.ca_file: unable to load specified CA cert"
        ),
        "{}",
        server.log_tail()
    );
}
