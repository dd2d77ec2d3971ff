//! Bad targets fail alone. Next to a good target, four bad ones, all served by the test:
//! one answers garbage, one accepts and never answers (beyond scrape_timeout), one serves
//! more samples than its job's sample_limit, one a body larger than its job's
//! body_size_limit. Each gets `up` 0 and a lastError saying why, none of their samples is
//! stored, and the good target loses nothing: every scrape seen is `up` 1 with all its
//! series and values.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::exposition::{one, select};
use common::{wait_until, Reply, Server, TestTarget, PATIENCE};

const GOOD_SERIES: usize = 50;
const SAMPLE_LIMIT: usize = 10;
const BODY_SIZE_LIMIT: usize = 1024;
/// Distinct scrapes of every target the test must watch.
const SCRAPES_WATCHED: usize = 4;

fn good_value(i: usize) -> f64 {
    i as f64 * 1.5 + 0.25
}

fn good_page(request: u64) -> String {
    let mut page = String::from("# TYPE good_value gauge\n");
    for i in 0..GOOD_SERIES {
        page.push_str(&format!("good_value{{i=\"{i}\"}} {}\n", good_value(i)));
    }
    page.push_str(&format!(
        "# TYPE good_requests_total counter\ngood_requests_total {request}\n"
    ));
    page
}

/// A valid line, then an HTML page: the whole scrape must be refused, the valid line too.
fn garbage_page() -> Vec<u8> {
    b"garbage_prefix_metric 1\n<html><head><title>502 Bad Gateway</title></head>\n<body>upstream \
      unavailable</body></html>\n"
        .to_vec()
}

fn over_sample_limit_page() -> String {
    (0..SAMPLE_LIMIT * 5)
        .map(|i| format!("limited_series{{i=\"{i}\"}} {i}\n"))
        .collect()
}

fn over_body_size_limit_page() -> String {
    let padding = "x".repeat(100);
    (0..BODY_SIZE_LIMIT / 20)
        .map(|i| format!("oversized_series{{i=\"{i}\",padding=\"{padding}\"}} {i}\n"))
        .collect()
}

#[test]
fn bad_targets_fail_alone_and_the_good_one_loses_nothing() {
    let good = TestTarget::serve(|n| Reply::Metrics(good_page(n)));
    let garbage = TestTarget::serve(|_| Reply::Body("text/html; charset=utf-8", garbage_page()));
    let silent = TestTarget::serve(|_| Reply::Silence);
    let over_samples = TestTarget::metrics(over_sample_limit_page());
    let over_body = TestTarget::metrics(over_body_size_limit_page());
    assert!(over_body_size_limit_page().len() > 4 * BODY_SIZE_LIMIT);

    let tmp = tempfile::tempdir().expect("temporary directory");
    let config = format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: good
    static_configs:
      - targets: ['{good}']
  - job_name: garbage
    static_configs:
      - targets: ['{garbage}']
  - job_name: silent
    scrape_timeout: 500ms
    static_configs:
      - targets: ['{silent}']
  - job_name: over_sample_limit
    sample_limit: {SAMPLE_LIMIT}
    static_configs:
      - targets: ['{over_samples}']
  - job_name: over_body_size_limit
    body_size_limit: 1KB
    static_configs:
      - targets: ['{over_body}']
",
        good = good.address(),
        garbage = garbage.address(),
        silent = silent.address(),
        over_samples = over_samples.address(),
        over_body = over_body.address(),
    );
    let server = Server::start(tmp.path(), common::free_port(), &config);
    let bad_jobs = [
        "garbage",
        "silent",
        "over_sample_limit",
        "over_body_size_limit",
    ];

    // Watch every target's `up` until each has been seen over several scrapes. Every sample
    // seen of the good target is 1, with all its series and their values; every sample seen
    // of a bad one is 0.
    let mut seen: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    let mut last_requests = 0.0;
    let watched = wait_until(PATIENCE, || {
        let latest = server.federate(r#"{job=~"good|garbage|silent|over_.+"}"#);
        for job in std::iter::once("good").chain(bad_jobs) {
            let Some(up) = one(&latest, "up", &[("job", job)]) else {
                continue;
            };
            let want = if job == "good" { 1.0 } else { 0.0 };
            assert_eq!(up.value, want, "up of {job}: {up:?}");
            let t = up.timestamp.expect("federation carries timestamps");
            seen.entry(job).or_default().insert(t);
        }
        // From the second scrape on, the first one is wholly stored, whatever the order in
        // which the server's shards make a scrape's samples visible.
        if seen.get("good").is_some_and(|t| t.len() >= 2) {
            let values = select(&latest, "good_value", &[("job", "good")]);
            let got: BTreeMap<String, f64> = values
                .iter()
                .map(|s| (s.label("i").to_string(), s.value))
                .collect();
            let want: BTreeMap<String, f64> = (0..GOOD_SERIES)
                .map(|i| (i.to_string(), good_value(i)))
                .collect();
            assert_eq!(got, want, "the good target's series");
            let requests = one(&latest, "good_requests_total", &[("job", "good")])
                .unwrap_or_else(|| panic!("no good_requests_total: {latest:?}"))
                .value;
            assert!(
                requests >= last_requests,
                "{requests} after {last_requests}"
            );
            last_requests = requests;
        }
        let enough = |job: &str| seen.get(job).is_some_and(|t| t.len() >= SCRAPES_WATCHED);
        (enough("good") && bad_jobs.iter().all(|j| enough(j))).then_some(())
    });
    assert!(
        watched.is_some(),
        "not every target was scraped {SCRAPES_WATCHED} times: {seen:?}\ntargets: {:?}",
        server.active_targets()
    );
    assert!(good.requests() as usize >= SCRAPES_WATCHED);
    assert!(garbage.requests() > 0 && silent.requests() > 0);
    assert!(over_samples.requests() > 0 && over_body.requests() > 0);

    // Every good scrape stored all its samples.
    let report = server.federate(r#"{job="good",__name__=~"scrape_samples_.+"}"#);
    for name in [
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
    ] {
        let s = one(&report, name, &[]).unwrap_or_else(|| panic!("no {name}: {report:?}"));
        assert_eq!(s.value, (GOOD_SERIES + 1) as f64, "{name}");
    }

    // /api/v1/targets: the reason of each failure.
    let targets = server.active_targets();
    assert_eq!(targets.len(), 5, "{targets:?}");
    let target = |job: &str| {
        targets
            .iter()
            .find(|t| t["labels"]["job"] == job)
            .unwrap_or_else(|| panic!("no target for {job}: {targets:?}"))
    };
    let good_target = target("good");
    assert_eq!(good_target["health"], "up", "{good_target}");
    assert_eq!(good_target["lastError"], "", "{good_target}");
    for (job, gist) in [
        ("garbage", &[][..]),
        ("silent", &["deadline", "timeout", "timed out"][..]),
        ("over_sample_limit", &["sample limit"][..]),
        ("over_body_size_limit", &["body size limit"][..]),
    ] {
        let t = target(job);
        assert_eq!(t["health"], "down", "{t}");
        let error = t["lastError"].as_str().unwrap_or("");
        assert!(!error.is_empty(), "{job} has no lastError: {t}");
        let lower = error.to_ascii_lowercase();
        assert!(
            gist.is_empty() || gist.iter().any(|g| lower.contains(g)),
            "{job}'s lastError {error:?} does not say {gist:?}"
        );
    }

    // A failed scrape stores nothing of what it read (only the synthetic series).
    let leaked = server.series(r#"{__name__=~"garbage_.+|limited_.+|oversized_.+"}"#);
    assert!(
        leaked.is_empty(),
        "samples of failed scrapes stored: {leaked:?}"
    );
    let exceeded = server
        .own_metric("prometheus_target_scrapes_exceeded_sample_limit_total")
        .expect("prometheus_target_scrapes_exceeded_sample_limit_total in /metrics");
    assert!(exceeded >= 1.0, "{exceeded}");
}
