//! Rules end to end, with a real Alertmanager (Debian's `prometheus-alertmanager`) started by
//! the test: a scraped gauge drives a recording rule (its output queried back) and an alert
//! with `for`, templated labels and annotations. The alert goes pending, the server is
//! restarted while it is pending and keeps its `for` state (Prometheus's ALERTS_FOR_STATE
//! restore), it fires, reaches Alertmanager (read through Alertmanager's own API, with the
//! external labels and expanded annotations), then resolves, and Alertmanager hears so.
//!
//! `E2E_SERVER_BIN=/usr/bin/prometheus` runs the same test against Prometheus 2.42.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use common::exporters::{alertmanager, alertmanager_tls};
use common::pki::{https_get, web_config, Pki};
use common::{free_port, http, urlencode, wait_until, Reply, Server, TestTarget, PATIENCE};
use serde_json::Value;

const RULES: &str = r#"groups:
  - name: e2e
    interval: 1s
    rules:
      - record: job:test_value:doubled
        expr: test_value * 2
      - alert: TestValueHigh
        expr: test_value > 0
        for: 30s
        labels:
          severity: page
          instance_host: "{{ $labels.instance | stripPort }}"
        annotations:
          summary: "{{ $labels.job }} at {{ $value }} ({{ $externalLabels.cluster | toUpper }})"
"#;

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Seconds since the epoch of an RFC 3339 time as the API prints it (UTC, `Z`).
fn rfc3339_secs(s: &str) -> f64 {
    let (date, time) = s.trim_end_matches('Z').split_once('T').expect("RFC 3339");
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let frac: f64 = format!("0.{frac}").parse().unwrap();
    (days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) as f64 + frac
}

fn alerts(server: &Server) -> Vec<Value> {
    server.api("/api/v1/alerts")["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn alert_in_state(server: &Server, state: &str) -> Option<Value> {
    alerts(server)
        .into_iter()
        .find(|a| a["labels"]["alertname"] == "TestValueHigh" && a["state"] == state)
}

/// Alertmanager's current (unresolved) alerts.
fn alertmanager_alerts(port: u16) -> Vec<Value> {
    let r = http::get(port, "/api/v2/alerts").expect("GET Alertmanager /api/v2/alerts");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_str::<Value>(&r.text())
        .expect("Alertmanager answers JSON")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn query(server: &Server, expr: &str) -> Vec<Value> {
    server.api(&format!("/api/v1/query?query={}", urlencode(expr)))["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn alert_goes_pending_survives_a_restart_fires_reaches_alertmanager_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let am = alertmanager(dir.path());
    let value = Arc::new(AtomicU64::new(1));
    let target = {
        let value = value.clone();
        TestTarget::serve(move |_| {
            Reply::Metrics(format!(
                "# TYPE test_value gauge\ntest_value {}\n",
                value.load(Ordering::SeqCst)
            ))
        })
    };
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels: {{cluster: e2e}}\n\
         rule_files: [rules.yml]\n\
         alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['{}']}}]\n\
         scrape_configs:\n  - job_name: gauge\n    static_configs: [{{targets: ['{}']}}]\n",
        am.address(),
        target.address()
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, &config).unwrap();
    let port = free_port();
    // The grace period is below `for`, so `for` state is restored; a resend delay of a minute
    // means a firing alert is valid in Alertmanager for minutes: it can only go away sooner
    // because the resolution was sent.
    let flags = [
        "--rules.alert.for-grace-period=1s",
        "--rules.alert.resend-delay=1m",
    ];
    let binary = common::Binary::under_test();
    let data = dir.path().join("data");
    let mut server = Server::spawn(&binary, &config_path, &data, port, &flags);
    server.wait_ready();

    // The recording rule's output, queryable, with the scraped series' labels.
    let recorded = wait_until(PATIENCE, || {
        query(&server, "job:test_value:doubled").into_iter().next()
    })
    .unwrap_or_else(|| panic!("no recorded series\n{}", server.log_tail()));
    assert_eq!(recorded["metric"]["job"], "gauge");
    assert_eq!(recorded["metric"]["instance"], target.address());
    assert_eq!(recorded["value"][1], "2");

    // Pending, with expanded labels and annotations; kept pending a while before the restart.
    let pending = wait_until(PATIENCE, || alert_in_state(&server, "pending"))
        .unwrap_or_else(|| panic!("never pending\n{}", server.log_tail()));
    assert_eq!(pending["labels"]["severity"], "page");
    assert_eq!(pending["labels"]["instance_host"], "127.0.0.1");
    assert_eq!(pending["annotations"]["summary"], "gauge at 1 (E2E)");
    let active_at = rfc3339_secs(pending["activeAt"].as_str().unwrap());
    let rules = server.api("/api/v1/rules?type=alert");
    let rule = &rules["groups"][0]["rules"][0];
    assert_eq!(rule["name"], "TestValueHigh");
    assert_eq!(rule["state"], "pending");
    assert_eq!(rule["health"], "ok");
    assert_eq!(rule["duration"], 30);
    let recording = server.api("/api/v1/rules?type=record");
    assert_eq!(
        recording["groups"][0]["rules"][0]["name"],
        "job:test_value:doubled"
    );
    assert_eq!(recording["groups"][0]["rules"].as_array().unwrap().len(), 1);
    // The filters later Prometheus versions added (2.42 ignores them).
    if std::env::var_os("E2E_SERVER_BIN").is_none() {
        let rule_names = |path: &str| -> Vec<String> {
            let data = server.api(path);
            let groups = data["groups"].as_array().cloned().unwrap_or_default();
            groups
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .map(|r| r["name"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        assert_eq!(
            rule_names("/api/v1/rules?rule_name[]=TestValueHigh"),
            ["TestValueHigh"]
        );
        assert_eq!(
            rule_names("/api/v1/rules?rule_group[]=e2e&rule_name[]=job:test_value:doubled&rule_name[]=TestValueHigh").len(),
            2
        );
        assert!(rule_names("/api/v1/rules?rule_group[]=nosuch").is_empty());
        let file = rules["groups"][0]["file"].as_str().unwrap().to_string();
        let by_file = format!("/api/v1/rules?file[]={}", urlencode(&file));
        assert_eq!(rule_names(&by_file).len(), 2);
        assert!(rule_names("/api/v1/rules?file[]=/nosuch.yml").is_empty());
        let without = server.api("/api/v1/rules?type=alert&exclude_alerts=true");
        let rule = &without["groups"][0]["rules"][0];
        assert_eq!(rule["state"], "pending");
        assert_eq!(rule.get("alerts"), Some(&Value::Null), "{rule}");
        assert_eq!(
            rules["groups"][0]["rules"][0]["alerts"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
    }
    let ams = server.api("/api/v1/alertmanagers");
    assert_eq!(
        ams["activeAlertmanagers"][0]["url"],
        format!("http://{}/api/v2/alerts", am.address())
    );
    // ALERTS_FOR_STATE holds activeAt, which the restart restores from.
    wait_until(PATIENCE, || {
        let v = query(&server, "ALERTS_FOR_STATE{alertname=\"TestValueHigh\"}");
        let t = v.first()?["value"][0].as_f64()?;
        (t - active_at >= 8.0).then_some(())
    })
    .unwrap_or_else(|| panic!("ALERTS_FOR_STATE not written\n{}", server.log_tail()));
    assert_eq!(
        query(
            &server,
            "ALERTS{alertname=\"TestValueHigh\",alertstate=\"pending\"}"
        )
        .len(),
        1
    );

    server.stop();
    let restarted_at = now_secs();
    let mut server = Server::spawn(&binary, &config_path, &data, port, &flags);
    server.wait_ready();
    // Alerts are written again once the restore is done (Prometheus restores after its
    // second evaluation): the first ALERTS_FOR_STATE sample of the new process holds the
    // activeAt the restore decided.
    let selector = "ALERTS_FOR_STATE{alertname=\"TestValueHigh\"}";
    let written_after = format!("{selector} and timestamp({selector}) > {restarted_at}");
    let restored_for_state = wait_until(PATIENCE, || {
        let v = query(&server, &written_after);
        v.first()?["value"][1].as_str()?.parse::<f64>().ok()
    })
    .unwrap_or_else(|| {
        panic!(
            "no ALERTS_FOR_STATE after the restart\n{}",
            server.log_tail()
        )
    });
    let restored = alert_in_state(&server, "pending")
        .unwrap_or_else(|| panic!("not pending after the restart\n{}", server.log_tail()));
    let restored_at = rfc3339_secs(restored["activeAt"].as_str().unwrap());
    // Without a restore the alert would start over: active from an evaluation of the new
    // process, after it was started. Restored, it is active from before (shifted by the
    // outage, the pending time already served is kept).
    assert!(
        restored_at < restarted_at && restored_for_state < restarted_at,
        "activeAt {restored_at} ({restored_for_state}) was reset (restart at {restarted_at}, first active at {active_at})"
    );

    // Fires and reaches Alertmanager, with the external labels and the annotations.
    wait_until(PATIENCE, || alert_in_state(&server, "firing"))
        .unwrap_or_else(|| panic!("never fired\n{}", server.log_tail()));
    let in_am = wait_until(PATIENCE, || {
        alertmanager_alerts(am.port)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "TestValueHigh")
    })
    .unwrap_or_else(|| panic!("Alertmanager never got the alert\n{}", am.log_tail()));
    assert_eq!(in_am["labels"]["cluster"], "e2e");
    assert_eq!(in_am["labels"]["severity"], "page");
    assert_eq!(in_am["labels"]["job"], "gauge");
    assert_eq!(in_am["annotations"]["summary"], "gauge at 1 (E2E)");
    assert_eq!(in_am["status"]["state"], "active");
    let ends_at = rfc3339_secs(in_am["endsAt"].as_str().unwrap());
    let starts_at = rfc3339_secs(in_am["startsAt"].as_str().unwrap());
    assert!(ends_at - starts_at >= 120.0, "valid for four resend delays");
    assert!(server
        .metrics()
        .iter()
        .any(|s| s.name == "prometheus_notifications_sent_total" && s.value >= 1.0));

    // Resolves: gone from the API, and Alertmanager is told (long before `endsAt`).
    value.store(0, Ordering::SeqCst);
    wait_until(PATIENCE, || alerts(&server).is_empty().then_some(()))
        .unwrap_or_else(|| panic!("never resolved\n{}", server.log_tail()));
    wait_until(PATIENCE, || {
        alertmanager_alerts(am.port)
            .iter()
            .all(|a| a["labels"]["alertname"] != "TestValueHigh")
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "Alertmanager never heard of the resolution\n{}",
            am.log_tail()
        )
    });
    assert_eq!(
        query(&server, "ALERTS{alertname=\"TestValueHigh\"}").len(),
        0,
        "ALERTS went stale"
    );
    server.stop();
}

/// A reload (`/-/reload`) keeps the state of the rules that kept their name and labels, as
/// Prometheus does (even when the expression changed), and starts over those that did not.
#[test]
fn a_reload_keeps_the_state_of_rules_that_kept_their_name_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let target = TestTarget::metrics("# TYPE test_value gauge\ntest_value 1\n".into());
    let rules = |expr: &str, severity: &str, extra: &str| {
        format!(
            "groups:\n  - name: reload\n    interval: 1s\n    rules:\n      - alert: Held\n        expr: {expr}\n        for: 1h\n        labels: {{severity: {severity}}}\n{extra}"
        )
    };
    let rules_path = dir.path().join("rules.yml");
    std::fs::write(&rules_path, rules("test_value > 0", "low", "")).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n\
         scrape_configs:\n  - job_name: gauge\n    static_configs: [{{targets: ['{}']}}]\n",
        target.address()
    );
    let server = Server::start(dir.path(), free_port(), &config);
    let held = |server: &Server| {
        alerts(server)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "Held" && a["state"] == "pending")
    };
    let first = wait_until(PATIENCE, || held(&server))
        .unwrap_or_else(|| panic!("never pending\n{}", server.log_tail()));
    let active_at = first["activeAt"].clone();

    // Another expression and a new rule: Held keeps its alert.
    std::fs::write(
        &rules_path,
        rules(
            "test_value > 0.5",
            "low",
            "      - record: test_value:copy\n        expr: test_value\n",
        ),
    )
    .unwrap();
    let r = server.post("/-/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(PATIENCE, || {
        let data = server.api("/api/v1/rules");
        let rules = data["groups"][0]["rules"].as_array()?.clone();
        (rules.len() == 2 && rules[1]["health"] == "ok").then_some(())
    })
    .unwrap_or_else(|| panic!("the reloaded group never evaluated\n{}", server.log_tail()));
    let kept = held(&server).unwrap_or_else(|| panic!("the alert went away on reload"));
    assert_eq!(kept["activeAt"], active_at, "state kept");

    // Other labels: another rule for Prometheus, whose alert starts over.
    std::fs::write(&rules_path, rules("test_value > 0.5", "high", "")).unwrap();
    let before = now_secs();
    let r = server.post("/-/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    let renewed = wait_until(PATIENCE, || {
        held(&server).filter(|a| a["labels"]["severity"] == "high")
    })
    .unwrap_or_else(|| panic!("no alert after the second reload\n{}", server.log_tail()));
    let renewed_at = rfc3339_secs(renewed["activeAt"].as_str().unwrap());
    assert!(
        renewed_at >= before.floor(),
        "a rule with new labels starts over ({renewed_at} < {before})"
    );
}

/// Alerts reach an Alertmanager serving HTTPS (`scheme: https`, `tls_config.ca_file`), read
/// back through Alertmanager's own API over TLS; one with a CA that did not sign its
/// certificate gets nothing and the failure is counted.
#[test]
fn alerts_reach_an_https_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "am");
    let other = Pki::new(dir.path(), "other");
    let (cert, key) = pki.issue("server", &["127.0.0.1"]);
    let web = web_config(dir.path(), "am", &cert, &key, None);
    let am = alertmanager_tls(dir.path(), &web);
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: tls\n    interval: 1s\n    rules:\n      - alert: Always\n        expr: vector(1)\n",
    )
    .unwrap();
    let config = format!(
        "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n\
         alerting:\n  alertmanagers:\n\
         \x20   - scheme: https\n      tls_config: {{ca_file: {ca}}}\n      static_configs: [{{targets: ['{am}']}}]\n\
         \x20   - scheme: https\n      path_prefix: /untrusted\n      tls_config: {{ca_file: {other}}}\n      static_configs: [{{targets: ['{am}']}}]\n",
        ca = pki.ca_file().display(),
        other = other.ca_file().display(),
        am = am.address(),
    );
    let server = Server::start(dir.path(), free_port(), &config);
    let received = wait_until(PATIENCE, || {
        let (status, body) = https_get(am.port, "/api/v2/alerts", &pki.ca_file()).ok()?;
        assert_eq!(status, 200, "{body}");
        let alerts: Value = serde_json::from_str(&body).ok()?;
        alerts
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "Always")
            .cloned()
    });
    assert!(
        received.is_some(),
        "Alertmanager never received the alert\n{}\n{}",
        server.log_tail(),
        am.log_tail()
    );
    let ams = server.api("/api/v1/alertmanagers");
    let urls: Vec<&str> = ams["activeAlertmanagers"]
        .as_array()
        .map(|a| a.iter().filter_map(|u| u["url"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        urls.contains(&format!("https://{}/api/v2/alerts", am.address()).as_str()),
        "{ams}"
    );
    // The untrusted one is never reached: its errors are counted.
    let errors = wait_until(PATIENCE, || {
        server.metrics().into_iter().find(|s| {
            s.name == "prometheus_notifications_errors_total"
                && s.label("alertmanager").contains("/untrusted/")
                && s.value > 0.0
        })
    });
    assert!(
        errors.is_some(),
        "no errors counted for the untrusted Alertmanager"
    );
    assert!(
        server
            .log()
            .contains("x509: certificate signed by unknown authority"),
        "{}",
        server.log_tail()
    );
}

/// A reload that removes a rule from a group, and a whole group, ends their series with
/// staleness markers, as Prometheus does: they vanish from instant queries at once instead
/// of lingering for the 5-minute lookback; the kept rule's series stays.
#[test]
fn a_reload_marks_the_series_of_removed_rules_and_groups_stale() {
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("rules.yml");
    let kept = "  - name: kept\n    interval: 1s\n    rules:\n      - record: kept_rule\n        expr: vector(1)\n";
    std::fs::write(
        &rules_path,
        format!(
            "groups:\n{kept}      - record: removed_rule\n        expr: vector(2)\n\
             \x20 - name: removed_group\n    interval: 1s\n    rules:\n      - record: removed_group_rule\n        expr: vector(3)\n"
        ),
    )
    .unwrap();
    let server = Server::start(
        dir.path(),
        free_port(),
        "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n",
    );
    let present = |name: &str| !query(&server, name).is_empty();
    let names = ["kept_rule", "removed_rule", "removed_group_rule"];
    wait_until(PATIENCE, || names.iter().all(|n| present(n)).then_some(()))
        .unwrap_or_else(|| panic!("the rules never wrote\n{}", server.log_tail()));

    std::fs::write(&rules_path, format!("groups:\n{kept}")).unwrap();
    let r = server.post("/-/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until(PATIENCE, || {
        (!present("removed_rule") && !present("removed_group_rule")).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "removed series still answer: {:?} {:?}\n{}",
            query(&server, "removed_rule"),
            query(&server, "removed_group_rule"),
            server.log_tail()
        )
    });
    assert!(present("kept_rule"), "the kept rule's series went stale");
    // The series ended with a marker, not by ageing out: their samples are still stored.
    let stored = query(&server, "count_over_time(removed_group_rule[10m])");
    assert_eq!(stored.len(), 1, "{stored:?}");
}
