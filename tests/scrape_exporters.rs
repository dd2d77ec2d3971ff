//! The server scrapes real exporters on loopback ports: Debian's node_exporter, a
//! Pushgateway holding metrics pushed the way Flink's PrometheusPushGatewayReporter pushes
//! them (job name with a random suffix, grouping-key labels in the URL path), and itself.
//! `up` is 1 for all three, node_exporter's series are stored and answered by the metadata
//! endpoints, and with `honor_labels: true` the pushed `job` and grouping labels survive.

mod common;

use std::collections::BTreeMap;

use common::exposition::one;
use common::http;
use common::{wait_until, Exporter, Server, PATIENCE};
use serde_json::Value;

/// Flink's reporter appends a random suffix to the configured job name
/// (`randomJobNameSuffix: true`), one job per JobManager and TaskManager process.
const JM_JOB: &str = "flink-jobmanager-3f2a9c";
const TM_JOB: &str = "flink-taskmanager-8d41e7";
/// `groupingKey: cluster=flink-prod;host=...` in flink-conf.yaml.
const CLUSTER: &str = "flink-prod";
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the JobManager's reporter pushes (Java simpleclient's text format, HELP and TYPE
/// included, values printed as Java doubles).
const JM_BODY: &str = "\
# HELP flink_jobmanager_numRunningJobs numRunningJobs (scope: jobmanager)
# TYPE flink_jobmanager_numRunningJobs gauge
flink_jobmanager_numRunningJobs{host=\"jm-0\",} 2.0
# HELP flink_jobmanager_numRegisteredTaskManagers numRegisteredTaskManagers (scope: jobmanager)
# TYPE flink_jobmanager_numRegisteredTaskManagers gauge
flink_jobmanager_numRegisteredTaskManagers{host=\"jm-0\",} 1.0
# HELP flink_jobmanager_Status_JVM_CPU_Load Load (scope: jobmanager_Status_JVM_CPU)
# TYPE flink_jobmanager_Status_JVM_CPU_Load gauge
flink_jobmanager_Status_JVM_CPU_Load{host=\"jm-0\",} 0.0125
";

const TM_BODY: &str = "\
# HELP flink_taskmanager_Status_JVM_CPU_Load Load (scope: taskmanager_Status_JVM_CPU)
# TYPE flink_taskmanager_Status_JVM_CPU_Load gauge
flink_taskmanager_Status_JVM_CPU_Load{host=\"tm-1\",tm_id=\"10_0_3_17:37261-6a3f2e\",} 0.37
# HELP flink_taskmanager_Status_JVM_Memory_Heap_Used Used (scope: taskmanager_Status_JVM_Memory_Heap)
# TYPE flink_taskmanager_Status_JVM_Memory_Heap_Used gauge
flink_taskmanager_Status_JVM_Memory_Heap_Used{host=\"tm-1\",tm_id=\"10_0_3_17:37261-6a3f2e\",} 1.23731968E8
# HELP flink_taskmanager_job_task_numRecordsIn numRecordsIn (scope: taskmanager_job_task)
# TYPE flink_taskmanager_job_task_numRecordsIn gauge
flink_taskmanager_job_task_numRecordsIn{host=\"tm-1\",job_id=\"8a5e3c1d0f7b42e6a9d4c2b1e0f3a7d5\",job_name=\"WordCount\",subtask_index=\"0\",task_attempt_num=\"0\",task_id=\"cbc357ccb763df2852fee8c4fc7d55f2\",task_name=\"Source:_Socket_Stream\",tm_id=\"10_0_3_17:37261-6a3f2e\",} 48213.0
";

/// Added later with POST, which keeps the group's other metrics (PUT replaces them).
const TM_EXTRA_BODY: &str = "\
# HELP flink_taskmanager_Status_Network_AvailableMemorySegments AvailableMemorySegments (scope: taskmanager_Status_Network)
# TYPE flink_taskmanager_Status_Network_AvailableMemorySegments gauge
flink_taskmanager_Status_Network_AvailableMemorySegments{host=\"tm-1\",tm_id=\"10_0_3_17:37261-6a3f2e\",} 4096.0
";

fn push_as_flink(gateway: &Exporter) {
    let jm = format!("/metrics/job/{JM_JOB}/cluster/{CLUSTER}/host/jm-0");
    let tm = format!("/metrics/job/{TM_JOB}/cluster/{CLUSTER}/host/tm-1");
    for (method, path, body) in [
        ("PUT", &jm, JM_BODY),
        ("PUT", &tm, TM_BODY),
        ("POST", &tm, TM_EXTRA_BODY),
    ] {
        let r = http::request(
            gateway.port,
            method,
            path,
            &[("Content-Type", CONTENT_TYPE)],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(
            r.is_success(),
            "{method} {path}: {} {}\n{}",
            r.status,
            r.text(),
            gateway.log_tail()
        );
    }
}

fn mem_total_bytes() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("MemTotal in /proc/meminfo");
    kib * 1024.0
}

fn label<'a>(series: &'a serde_json::Map<String, Value>, name: &str) -> &'a str {
    series.get(name).and_then(Value::as_str).unwrap_or("")
}

#[test]
fn scrapes_node_exporter_pushgateway_and_itself() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let node = Exporter::node_exporter(tmp.path());
    let gateway = Exporter::pushgateway(tmp.path());
    push_as_flink(&gateway);

    let port = common::free_port();
    let config = format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: self
    static_configs:
      - targets: ['127.0.0.1:{port}']
  - job_name: node
    static_configs:
      - targets: ['{node}']
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ['{gateway}']
",
        node = node.address(),
        gateway = gateway.address(),
    );
    let server = Server::start(tmp.path(), port, &config);
    let jobs = [
        ("self", format!("127.0.0.1:{port}")),
        ("node", node.address()),
        ("pushgateway", gateway.address()),
    ];

    // `up` is 1 for all three targets, each under its own job and instance.
    let mut last = Vec::new();
    let all_up = wait_until(PATIENCE, || {
        last = server.federate("up");
        jobs.iter()
            .all(|(job, instance)| {
                one(&last, "up", &[("job", job), ("instance", instance)])
                    .is_some_and(|s| s.value == 1.0)
            })
            .then_some(())
    });
    assert!(
        all_up.is_some(),
        "up is not 1 for every job: {last:?}\ntargets: {:?}",
        server.active_targets()
    );

    // node_exporter's series are stored with their own labels and the target's.
    let cpu = server.series(r#"node_cpu_seconds_total{job="node"}"#);
    assert!(!cpu.is_empty(), "no node_cpu_seconds_total");
    for s in &cpu {
        assert_eq!(label(s, "instance"), node.address(), "{s:?}");
        assert!(
            !label(s, "cpu").is_empty() && !label(s, "mode").is_empty(),
            "{s:?}"
        );
    }
    assert!(cpu.iter().any(|s| label(s, "mode") == "idle"), "{cpu:?}");
    let mem = server.series(r#"node_memory_MemTotal_bytes{job="node"}"#);
    assert_eq!(mem.len(), 1, "{mem:?}");
    let scraped = server.federate(r#"node_memory_MemTotal_bytes{job="node"}"#);
    let mem_total =
        one(&scraped, "node_memory_MemTotal_bytes", &[]).unwrap_or_else(|| panic!("{scraped:?}"));
    assert_eq!(
        mem_total.value,
        mem_total_bytes(),
        "read from the same /proc/meminfo"
    );

    // The pushed metrics keep the pushed job and grouping labels, not the scrape job's.
    let pushed = |name: &str, job: &str, host: &str, value: f64| {
        let series = server.series(name);
        assert_eq!(series.len(), 1, "{name}: {series:?}");
        let s = &series[0];
        assert_eq!(
            (label(s, "job"), label(s, "cluster"), label(s, "host")),
            (job, CLUSTER, host),
            "{name}: {s:?}"
        );
        let latest = server.federate(name);
        let sample = one(&latest, name, &[("job", job)])
            .unwrap_or_else(|| panic!("{name} not federated: {latest:?}"));
        assert_eq!(sample.value, value, "{name}");
    };
    pushed("flink_jobmanager_numRunningJobs", JM_JOB, "jm-0", 2.0);
    pushed(
        "flink_jobmanager_Status_JVM_CPU_Load",
        JM_JOB,
        "jm-0",
        0.0125,
    );
    pushed(
        "flink_taskmanager_Status_JVM_CPU_Load",
        TM_JOB,
        "tm-1",
        0.37,
    );
    pushed(
        "flink_taskmanager_Status_JVM_Memory_Heap_Used",
        TM_JOB,
        "tm-1",
        123_731_968.0,
    );
    pushed(
        "flink_taskmanager_Status_Network_AvailableMemorySegments",
        TM_JOB,
        "tm-1",
        4096.0,
    );
    let task = server.series("flink_taskmanager_job_task_numRecordsIn");
    assert_eq!(task.len(), 1, "{task:?}");
    for (name, value) in [
        ("job_name", "WordCount"),
        ("task_name", "Source:_Socket_Stream"),
        ("subtask_index", "0"),
        ("tm_id", "10_0_3_17:37261-6a3f2e"),
        ("job", TM_JOB),
    ] {
        assert_eq!(label(&task[0], name), value, "{task:?}");
    }
    let relabelled = server.series(r#"{__name__=~"flink_.+", job="pushgateway"}"#);
    assert!(
        relabelled.is_empty(),
        "pushed job overwritten: {relabelled:?}"
    );
    // The Pushgateway's own metrics have no job: they get the scrape job's.
    let own = server.federate(r#"pushgateway_build_info"#);
    assert!(
        one(&own, "pushgateway_build_info", &[("job", "pushgateway")]).is_some(),
        "{own:?}"
    );

    // The server scraped itself.
    let self_metrics = server.federate(r#"{job="self"}"#);
    let reload_ok = one(
        &self_metrics,
        "prometheus_config_last_reload_successful",
        &[("instance", &format!("127.0.0.1:{port}"))],
    );
    assert_eq!(reload_ok.map(|s| s.value), Some(1.0), "{self_metrics:?}");

    // /api/v1/targets: three active targets, all healthy.
    let targets = server.active_targets();
    assert_eq!(targets.len(), 3, "{targets:?}");
    let mut by_job = BTreeMap::new();
    for t in &targets {
        by_job.insert(t["labels"]["job"].as_str().unwrap_or("").to_string(), t);
    }
    for (job, instance) in &jobs {
        let t = by_job
            .get(*job)
            .unwrap_or_else(|| panic!("no target for {job}: {targets:?}"));
        assert_eq!(t["health"], "up", "{t}");
        assert_eq!(t["lastError"], "", "{t}");
        assert_eq!(t["scrapePool"], *job, "{t}");
        assert_eq!(t["labels"]["instance"], instance.as_str(), "{t}");
        assert_eq!(
            t["scrapeUrl"],
            format!("http://{instance}/metrics").as_str(),
            "{t}"
        );
        let last_scrape = t["lastScrape"].as_str().unwrap_or("");
        assert!(
            !last_scrape.is_empty() && !last_scrape.starts_with("0001-"),
            "never scraped: {t}"
        );
    }

    // The metadata endpoints know node_exporter's and the pushed names.
    let labels = server.strings("/api/v1/labels");
    for name in [
        "__name__", "job", "instance", "cpu", "mode", "cluster", "host",
    ] {
        assert!(labels.iter().any(|l| l == name), "{name} not in {labels:?}");
    }
    let names = server.strings("/api/v1/label/__name__/values");
    for name in [
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "flink_jobmanager_numRunningJobs",
        "up",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} not in label values"
        );
    }
    let modes = server.strings("/api/v1/label/mode/values");
    for mode in ["idle", "system", "user"] {
        assert!(modes.iter().any(|m| m == mode), "{mode} not in {modes:?}");
    }
    let job_values = server.strings("/api/v1/label/job/values");
    for job in ["self", "node", "pushgateway", JM_JOB, TM_JOB] {
        assert!(
            job_values.iter().any(|j| j == job),
            "{job} not in {job_values:?}"
        );
    }
    let scoped = server.strings(&format!(
        "/api/v1/label/host/values?match[]={}",
        common::urlencode(&format!(r#"{{job="{TM_JOB}"}}"#))
    ));
    assert_eq!(scoped, vec!["tm-1".to_string()]);

    // The status endpoints describe this server.
    let config_yaml = server.api("/api/v1/status/config");
    let yaml = config_yaml["yaml"].as_str().unwrap_or("");
    assert!(yaml.contains("job_name: pushgateway"), "{yaml}");
    assert!(yaml.contains("honor_labels: true"), "{yaml}");
    let flags = server.api("/api/v1/status/flags");
    let data_flag = flags["storage.tsdb.path"].as_str().unwrap_or("");
    assert_eq!(
        data_flag.trim_end_matches('/'),
        server.data.to_string_lossy(),
        "{flags}"
    );
    let build = server.api("/api/v1/status/buildinfo");
    assert!(
        build["version"].as_str().is_some_and(|v| !v.is_empty()),
        "{build}"
    );
}
