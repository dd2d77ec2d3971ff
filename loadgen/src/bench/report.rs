//! The benchmark's output: a table on stdout, the whole result as JSON, and a markdown
//! section spliced into BENCHMARKS.md between markers (replacing the previous run's section
//! of the same mode, or appended when there is none).
//!
//! Formatting and splicing are pure; `write_json` and `write_markdown` are the only file I/O.
//! This module never measures.

use std::fmt::Write as _;
use std::path::Path;

use super::measure::ServerResult;
use super::saturation::{MAX_MISSED_SHARE, MIN_INGESTED_SHARE};

/// One step of a saturation search.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Step {
    pub targets: usize,
    pub offered_samples_per_s: f64,
    pub result: Option<ServerResult>,
    pub error: Option<String>,
    pub falls_behind: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Saturation {
    pub server: &'static str,
    pub steps: Vec<Step>,
    pub highest_sustained_targets: Option<usize>,
    pub highest_sustained_samples_per_s: Option<f64>,
    /// The bracket's other end: the lowest load it fell behind at, so the ceiling lies
    /// between the two.
    pub lowest_failed_targets: Option<usize>,
    pub lowest_failed_offered_samples_per_s: Option<f64>,
    /// The search stopped at its target limit with the server still keeping up.
    pub capped: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub started: String,
    pub mode: &'static str,
    pub command: String,
    pub machine: Machine,
    pub skipped: Vec<String>,
    pub fixed: Vec<ServerResult>,
    pub saturation: Vec<Saturation>,
}

/// The machine, from /proc (fields left empty when unreadable).
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Machine {
        cpu: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(String::new, |(_, v)| v.trim().to_string()),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes: meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.decimals$}"))
}

/// Thousands separated with a thin comma, as the rest of BENCHMARKS.md writes numbers.
pub fn grouped(x: f64) -> String {
    let n = x.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// Rows of a table: a header and cells, rendered as markdown (which also reads as plain
/// text on a terminal).
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header.iter().map(|_| "---|").collect::<String>()
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out
}

fn restart_cells(r: &ServerResult) -> (String, String) {
    match (&r.restart, &r.restart_error) {
        (Some(t), _) => (
            format!("{:.1} / {:.1}", t.clean_ready_s, t.clean_first_query_s),
            format!("{:.1} / {:.1}", t.kill_ready_s, t.kill_first_query_s),
        ),
        (None, Some(e)) => (format!("failed: {}", first_line(e)), "–".into()),
        (None, None) => ("–".into(), "–".into()),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// The fixed-load tables: one row per server, then query latencies.
pub fn fixed_tables(results: &[ServerResult]) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let (clean, kill) = restart_cells(r);
            let (p50, p99, missed) = match &r.scrape {
                Some(h) => (
                    format!("{:.1}", h.duration_p50_ms),
                    format!("{:.1}", h.duration_p99_ms),
                    format!(
                        "{} / {}",
                        h.missed_scrapes + h.failed_scrapes,
                        h.expected_scrapes
                    ),
                ),
                None => ("–".into(), "–".into(), "–".into()),
            };
            vec![
                r.server.to_string(),
                format!(
                    "{} ({:.0} %)",
                    grouped(r.samples_per_s),
                    100.0 * r.samples_per_s / r.offered_samples_per_s.max(1e-9)
                ),
                opt(r.cpu_s_per_million_samples, 2),
                format!("{:.2}", r.cores_used),
                format!("{:.0}", r.rss_bytes_per_series),
                format!("{p50} / {p99}"),
                missed,
                clean,
                kill,
                format!("{:.2}", r.loadgen_cores_used),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "server",
            "samples/s ingested (of offered)",
            "CPU-s per M samples",
            "cores",
            "RSS B/series",
            "scrape p50 / p99 ms",
            "missed scrapes",
            "restart clean: ready / query s",
            "restart SIGKILL: ready / query s",
            "loadgen cores",
        ],
        &rows,
    );
    if let Some(first) = results.iter().find(|r| !r.queries.is_empty()) {
        out.push('\n');
        let mut header = vec!["query (median of 3, ms)".to_string()];
        header.extend(results.iter().map(|r| r.server.to_string()));
        let rows: Vec<Vec<String>> = first
            .queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let mut row = vec![format!("`{}`{}", q.query, range_mark(q.name))];
                row.extend(results.iter().map(|r| match r.queries.get(i) {
                    Some(l) if l.error.is_none() => {
                        format!("{:.1} ({} series)", l.median_ms, l.series.unwrap_or(0))
                    }
                    Some(_) => "failed".to_string(),
                    None => "–".to_string(),
                }));
                row
            })
            .collect();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        out.push_str(&table(&header, &rows));
    }
    out
}

fn range_mark(name: &str) -> &'static str {
    if name.starts_with("range_") {
        " (range, 15 s step)"
    } else {
        ""
    }
}

/// The saturation table: each server's highest sustained load and its steps.
pub fn saturation_table(results: &[Saturation]) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|s| {
            let steps = s
                .steps
                .iter()
                .map(|st| {
                    let got = st
                        .result
                        .as_ref()
                        .map_or_else(|| "error".to_string(), |r| grouped(r.samples_per_s));
                    let missed = st
                        .result
                        .as_ref()
                        .and_then(|r| r.scrape.as_ref())
                        .map(|h| h.missed_scrapes + h.failed_scrapes)
                        .filter(|m| *m > 0)
                        .map_or_else(String::new, |m| format!(" ({m} scrapes missed)"));
                    format!(
                        "{}→{}{}{missed}",
                        grouped(st.offered_samples_per_s),
                        got,
                        if st.falls_behind { " ✗" } else { " ✓" }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                s.server.to_string(),
                format!(
                    "{}{}",
                    s.highest_sustained_samples_per_s
                        .map_or_else(|| "none".to_string(), grouped),
                    if s.capped { " (cap reached)" } else { "" }
                ),
                s.highest_sustained_targets
                    .map_or_else(|| "–".to_string(), |t| t.to_string()),
                match (
                    s.lowest_failed_offered_samples_per_s,
                    s.lowest_failed_targets,
                ) {
                    (Some(offered), Some(t)) => format!("{} ({t})", grouped(offered)),
                    _ => "–".to_string(),
                },
                steps,
            ]
        })
        .collect();
    table(
        &[
            "server",
            "highest sustained samples/s",
            "targets",
            "fell behind at, offered (targets)",
            "steps: offered→ingested samples/s",
        ],
        &rows,
    )
}

/// The section for BENCHMARKS.md, without markers.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let _ = writeln!(
        out,
        "Run {} on {} ({} cores, {:.1} GiB, Linux {}).\n",
        report.started,
        m.cpu,
        m.cores,
        m.memory_bytes as f64 / (1u64 << 30) as f64,
        m.kernel
    );
    let _ = writeln!(out, "Command: `{}`\n", report.command);
    let versions: Vec<String> = report
        .fixed
        .iter()
        .map(|r| format!("{}: {}", r.server, r.version))
        .chain(report.saturation.iter().filter_map(|s| {
            s.steps
                .iter()
                .find_map(|st| st.result.as_ref())
                .map(|r| format!("{}: {}", r.server, r.version))
        }))
        .collect();
    if !versions.is_empty() {
        let _ = writeln!(out, "Versions: {}.\n", versions.join("; "));
    }
    for s in &report.skipped {
        let _ = writeln!(out, "Skipped: {s}.\n");
    }
    if let Some(r) = report.fixed.first() {
        let _ = writeln!(
            out,
            "Load: {} targets × {} series every {} s = {} samples/s offered; {} s measured after warm-up.\n",
            r.load.targets,
            r.load.series_per_target,
            r.load.interval.as_secs_f64(),
            grouped(r.offered_samples_per_s),
            r.window_s.round()
        );
        out.push_str(&fixed_tables(&report.fixed));
    }
    if !report.saturation.is_empty() {
        let _ = writeln!(
            out,
            "Falls behind = ingested < {:.0} % of offered, or > {:.0} % of due scrapes missed or failed, or the server failed.\n",
            MIN_INGESTED_SHARE * 100.0,
            MAX_MISSED_SHARE * 100.0
        );
        out.push_str(&saturation_table(&report.saturation));
    }
    out
}

fn markers(mode: &str) -> (String, String) {
    (
        format!("<!-- loadgen-bench:{mode}:begin -->"),
        format!("<!-- loadgen-bench:{mode}:end -->"),
    )
}

/// `doc` with the section of `mode` replaced by `section` (or appended).
pub fn splice(doc: &str, mode: &str, section: &str) -> String {
    let (begin, end) = markers(mode);
    let block = format!("{begin}\n{}{end}\n", ensure_newline(section));
    if let (Some(b), Some(e)) = (doc.find(&begin), doc.find(&end)) {
        if b < e {
            let after = doc[e + end.len()..]
                .strip_prefix('\n')
                .unwrap_or(&doc[e + end.len()..]);
            return format!("{}{block}{after}", &doc[..b]);
        }
    }
    let mut out = ensure_newline(doc);
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&block);
    out
}

fn ensure_newline(s: &str) -> String {
    let mut s = s.to_string();
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

pub fn write_json(path: &Path, report: &Report) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}

pub fn write_markdown(path: &Path, report: &Report) -> std::io::Result<()> {
    let doc = match std::fs::read_to_string(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    std::fs::write(path, splice(&doc, report.mode, &markdown(report)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_between_markers_or_appends() {
        let doc = "# Benchmarks\n\nintro\n";
        let once = splice(doc, "fixed", "table 1\n");
        assert_eq!(
            once,
            "# Benchmarks\n\nintro\n\n<!-- loadgen-bench:fixed:begin -->\ntable 1\n<!-- loadgen-bench:fixed:end -->\n"
        );
        let twice = splice(&format!("{once}\n## Later\n"), "fixed", "table 2");
        assert_eq!(
            twice,
            "# Benchmarks\n\nintro\n\n<!-- loadgen-bench:fixed:begin -->\ntable 2\n<!-- loadgen-bench:fixed:end -->\n\n## Later\n"
        );
        // Another mode's section is left alone.
        let both = splice(&twice, "saturation", "sat");
        assert!(
            both.contains("table 2")
                && both.ends_with("sat\n<!-- loadgen-bench:saturation:end -->\n")
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(grouped(1_234_567.4), "1,234,567");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(-1000.0), "-1,000");
        assert_eq!(opt(None, 2), "–");
        assert_eq!(opt(Some(1.005), 1), "1.0");
    }

    fn result(samples_per_s: f64, missed: u64) -> ServerResult {
        ServerResult {
            server: "promcore",
            version: "promcore, version 0.1.0".into(),
            load: crate::bench::load::Load {
                targets: 100,
                series_per_target: 1000,
                interval: std::time::Duration::from_secs(1),
            },
            window_s: 15.0,
            offered_samples_per_s: 100_500.0,
            samples_ingested: samples_per_s * 15.0,
            samples_per_s,
            cpu_seconds: 1.5,
            cpu_s_per_million_samples: Some(1.0),
            cores_used: 0.1,
            rss_bytes: 1 << 30,
            active_series: 100_500,
            rss_bytes_per_series: 10684.0,
            loadgen_cpu_seconds: 0.3,
            loadgen_cores_used: 0.02,
            scrape: Some(crate::bench::scrape_health::ScrapeHealth {
                scrapes: 1500 - missed,
                expected_scrapes: 1500,
                missed_scrapes: missed,
                failed_scrapes: 0,
                duration_p50_ms: 1.25,
                duration_p99_ms: 9.5,
                duration_max_ms: 12.0,
            }),
            scrape_error: None,
            falls_behind: missed > 15,
            restart: None,
            restart_error: Some("promcore was not ready within 300s\nlog".into()),
            queries: Vec::new(),
        }
    }

    #[test]
    fn fixed_and_saturation_rows() {
        let fixed = fixed_tables(&[result(100_476.0, 0)]);
        assert!(
            fixed.contains(
                "| promcore | 100,476 (100 %) | 1.00 | 0.10 | 10684 | 1.2 / 9.5 | 0 / 1500 | failed: promcore was not ready within 300s | – | 0.02 |"
            ),
            "{fixed}"
        );
        let step = |targets, r: Option<ServerResult>| Step {
            targets,
            offered_samples_per_s: 100_500.0 * targets as f64 / 100.0,
            falls_behind: r.as_ref().is_none_or(|r| r.falls_behind),
            error: r.is_none().then(|| "exited".to_string()),
            result: r,
        };
        let sat = saturation_table(&[Saturation {
            server: "promcore",
            steps: vec![
                step(100, Some(result(100_476.0, 0))),
                step(200, Some(result(190_000.0, 527))),
                step(400, None),
            ],
            highest_sustained_targets: Some(100),
            highest_sustained_samples_per_s: Some(100_476.0),
            lowest_failed_targets: Some(200),
            lowest_failed_offered_samples_per_s: Some(201_000.0),
            capped: false,
        }]);
        assert!(
            sat.contains(
                "| promcore | 100,476 | 100 | 201,000 (200) | 100,500→100,476 ✓, 201,000→190,000 ✗ (527 scrapes missed), 402,000→error ✗ |"
            ),
            "{sat}"
        );
    }

    #[test]
    fn tables_are_markdown() {
        let t = table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }
}
