//! The `process_*` metrics of client_golang's process collector, read from `/proc`: CPU time,
//! file descriptors, memory and start time of the whole promcore process (every executor
//! thread), with the same names, types and help texts, so the dashboards made for Prometheus
//! show promcore as they show Prometheus.
//!
//! A `/proc` file that cannot be read or parsed leaves its metrics out and never fails the
//! scrape, as client_golang does by default. The reads are synchronous: `/proc` is generated
//! in memory by the kernel and answers in microseconds, so they do not stall the executor the
//! way a disk read would. Parsing is pure and tested on fixed texts.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::exposition::{Kind, MetricsWriter};

/// Why one `/proc` source gave nothing.
#[derive(Debug, Error)]
pub enum ProcError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{file}: {what} not found or not a number")]
    Format {
        file: &'static str,
        what: &'static str,
    },
    #[error("sysconf({0}) gave no value")]
    Sysconf(&'static str),
}

/// One reading of the process's metrics; a `None` is left out of the exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds_total: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
    pub virtual_memory_bytes: Option<f64>,
    pub virtual_memory_max_bytes: Option<f64>,
    pub resident_memory_bytes: Option<f64>,
    pub start_time_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads this process's metrics from `/proc`.
    pub fn read() -> Self {
        Self::read_from(
            Path::new("/proc"),
            "self",
            clock_ticks().ok(),
            page_size().ok(),
        )
    }

    /// Reads the metrics of process `pid` under the procfs mounted at `proc`, given the
    /// kernel's clock ticks per second and page size (`None`: metrics needing them are left
    /// out).
    pub fn read_from(
        proc: &Path,
        pid: &str,
        clock_ticks: Option<f64>,
        page_size: Option<f64>,
    ) -> Self {
        let process = proc.join(pid);
        let mut stats = ProcessStats::default();
        if let Ok(stat) = read(&process.join("stat")).and_then(|t| ProcStat::parse(&t)) {
            stats.virtual_memory_bytes = Some(stat.vsize as f64);
            stats.resident_memory_bytes = page_size.map(|p| stat.rss_pages as f64 * p);
            if let Some(ticks) = clock_ticks {
                stats.cpu_seconds_total = Some((stat.utime + stat.stime) as f64 / ticks);
                stats.start_time_seconds = read(&proc.join("stat"))
                    .and_then(|t| parse_boot_time(&t))
                    .ok()
                    .map(|boot| boot as f64 + stat.starttime as f64 / ticks);
            }
        }
        if let Ok(limits) = read(&process.join("limits")) {
            stats.max_fds = parse_soft_limit(&limits, "Max open files").ok();
            stats.virtual_memory_max_bytes = parse_soft_limit(&limits, "Max address space").ok();
        }
        stats.open_fds = count_entries(&process.join("fd")).ok().map(|n| n as f64);
        stats
    }

    /// The families present, in name order as client_golang's registry writes them.
    pub fn write(&self, w: &mut MetricsWriter) {
        let families = [
            (
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                Kind::Counter,
                self.cpu_seconds_total,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                Kind::Gauge,
                self.max_fds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                Kind::Gauge,
                self.open_fds,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                Kind::Gauge,
                self.resident_memory_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                Kind::Gauge,
                self.start_time_seconds,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                Kind::Gauge,
                self.virtual_memory_bytes,
            ),
            (
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                Kind::Gauge,
                self.virtual_memory_max_bytes,
            ),
        ];
        for (name, help, kind, value) in families {
            if let Some(value) = value {
                w.family(name, help, kind);
                w.sample(name, &[], value);
            }
        }
    }
}

/// The fields of `/proc/<pid>/stat` the metrics need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    /// Clock ticks in user and kernel mode (fields 14 and 15).
    utime: u64,
    stime: u64,
    /// Clock ticks after boot the process started at (field 22).
    starttime: u64,
    /// Bytes (field 23).
    vsize: u64,
    /// Pages (field 24).
    rss_pages: u64,
}

impl ProcStat {
    fn parse(text: &str) -> Result<Self, ProcError> {
        // The command name (field 2) is in parentheses and may itself hold spaces and
        // parentheses; the fields after the last `)` are plain numbers and letters.
        let after_name = text
            .rfind(')')
            .map(|at| &text[at + 1..])
            .ok_or(ProcError::Format {
                file: "/proc/<pid>/stat",
                what: "command name",
            })?;
        let fields: Vec<&str> = after_name.split_ascii_whitespace().collect();
        // `fields[0]` is field 3 (state).
        let field = |number: usize, what: &'static str| {
            fields
                .get(number - 3)
                .and_then(|f| f.parse::<u64>().ok())
                .ok_or(ProcError::Format {
                    file: "/proc/<pid>/stat",
                    what,
                })
        };
        Ok(ProcStat {
            utime: field(14, "utime")?,
            stime: field(15, "stime")?,
            starttime: field(22, "starttime")?,
            vsize: field(23, "vsize")?,
            rss_pages: field(24, "rss")?,
        })
    }
}

/// The boot time in seconds since the epoch: the `btime` line of `/proc/stat`.
fn parse_boot_time(text: &str) -> Result<u64, ProcError> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(ProcError::Format {
            file: "/proc/stat",
            what: "btime",
        })
}

/// The soft limit of the `/proc/<pid>/limits` row `name`; `unlimited` is the largest u64, as
/// client_golang reports it (`1.8446744073709552e+19`).
fn parse_soft_limit(text: &str, name: &'static str) -> Result<f64, ProcError> {
    let soft = text
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_ascii_whitespace().next());
    match soft {
        Some("unlimited") => Some(u64::MAX as f64),
        Some(v) => v.parse::<u64>().map(|v| v as f64).ok(),
        None => None,
    }
    .ok_or(ProcError::Format {
        file: "/proc/<pid>/limits",
        what: name,
    })
}

fn read(path: &Path) -> Result<String, ProcError> {
    fs::read_to_string(path).map_err(|source| ProcError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Entries of `/proc/<pid>/fd`: the open descriptors, counting the one listing them, as
/// client_golang counts them.
fn count_entries(dir: &Path) -> Result<usize, ProcError> {
    let entries = fs::read_dir(dir).map_err(|source| ProcError::Read {
        path: dir.to_owned(),
        source,
    })?;
    Ok(entries.filter(|e| e.is_ok()).count())
}

fn clock_ticks() -> Result<f64, ProcError> {
    sysconf(libc::_SC_CLK_TCK, "_SC_CLK_TCK")
}

fn page_size() -> Result<f64, ProcError> {
    sysconf(libc::_SC_PAGESIZE, "_SC_PAGESIZE")
}

fn sysconf(name: libc::c_int, label: &'static str) -> Result<f64, ProcError> {
    // SAFETY: sysconf only reads a configuration value; it takes no pointer.
    let value = unsafe { libc::sysconf(name) };
    if value > 0 {
        Ok(value as f64)
    } else {
        Err(ProcError::Sysconf(label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    const STAT: &str =
        "25851 (cat) R 25849 25849 16031 0 -1 4194304 100 0 0 0 250 70 0 0 20 0 1 0 \
                        1035415 3133440 382 18446744073709551615 94553052151808 0 0 0 0 0 0 0 0 0 \
                        17 1 0 0 0 0 0\n";

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max open files            1024                 1048576              files     
Max address space         unlimited            unlimited            bytes     
";

    #[test]
    fn stat_fields() {
        let stat = ProcStat::parse(STAT).unwrap();
        assert_eq!(
            stat,
            ProcStat {
                utime: 250,
                stime: 70,
                starttime: 1035415,
                vsize: 3133440,
                rss_pages: 382,
            }
        );
    }

    #[test]
    fn command_names_with_spaces_and_parentheses() {
        let tricky = STAT.replacen("(cat)", "(a) b (c))", 1);
        assert_eq!(ProcStat::parse(&tricky).unwrap().utime, 250);
    }

    #[test]
    fn truncated_stat_refused() {
        assert!(ProcStat::parse("1 (x) R 1 1 1").is_err());
        assert!(ProcStat::parse("garbage").is_err());
        let bad = STAT.replacen(" 250 ", " x ", 1);
        assert!(ProcStat::parse(&bad).is_err());
    }

    #[test]
    fn boot_time() {
        let text = "cpu  1 2 3\nintr 5\nbtime 1795432293\nprocesses 9\n";
        assert_eq!(parse_boot_time(text).unwrap(), 1795432293);
        assert!(parse_boot_time("cpu 1\n").is_err());
    }

    #[test]
    fn soft_limits() {
        assert_eq!(parse_soft_limit(LIMITS, "Max open files").unwrap(), 1024.0);
        assert_eq!(
            parse_soft_limit(LIMITS, "Max address space").unwrap(),
            18446744073709551615.0
        );
        assert!(parse_soft_limit(LIMITS, "Max locked memory").is_err());
    }

    #[test]
    fn reads_a_procfs_tree() {
        let root = tempfile::tempdir().unwrap();
        let process = root.path().join("42");
        fs::create_dir_all(process.join("fd")).unwrap();
        for fd in ["0", "1", "2"] {
            fs::write(process.join("fd").join(fd), "").unwrap();
        }
        fs::write(process.join("stat"), STAT).unwrap();
        fs::write(process.join("limits"), LIMITS).unwrap();
        fs::write(root.path().join("stat"), "btime 1700000000\n").unwrap();
        let stats = ProcessStats::read_from(root.path(), "42", Some(100.0), Some(4096.0));
        assert_eq!(
            stats,
            ProcessStats {
                cpu_seconds_total: Some(3.2),
                open_fds: Some(3.0),
                max_fds: Some(1024.0),
                virtual_memory_bytes: Some(3133440.0),
                virtual_memory_max_bytes: Some(18446744073709551615.0),
                resident_memory_bytes: Some(382.0 * 4096.0),
                start_time_seconds: Some(1700000000.0 + 10354.15),
            }
        );
        let mut w = MetricsWriter::new();
        stats.write(&mut w);
        assert_eq!(
            w.finish(),
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
             # TYPE process_cpu_seconds_total counter\n\
             process_cpu_seconds_total 3.2\n\
             # HELP process_max_fds Maximum number of open file descriptors.\n\
             # TYPE process_max_fds gauge\n\
             process_max_fds 1024\n\
             # HELP process_open_fds Number of open file descriptors.\n\
             # TYPE process_open_fds gauge\n\
             process_open_fds 3\n\
             # HELP process_resident_memory_bytes Resident memory size in bytes.\n\
             # TYPE process_resident_memory_bytes gauge\n\
             process_resident_memory_bytes 1.564672e+06\n\
             # HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n\
             # TYPE process_start_time_seconds gauge\n\
             process_start_time_seconds 1.70001035415e+09\n\
             # HELP process_virtual_memory_bytes Virtual memory size in bytes.\n\
             # TYPE process_virtual_memory_bytes gauge\n\
             process_virtual_memory_bytes 3.13344e+06\n\
             # HELP process_virtual_memory_max_bytes Maximum amount of virtual memory available in bytes.\n\
             # TYPE process_virtual_memory_max_bytes gauge\n\
             process_virtual_memory_max_bytes 1.8446744073709552e+19\n"
        );
    }

    #[test]
    fn missing_sources_are_left_out() {
        let root = tempfile::tempdir().unwrap();
        let process = root.path().join("42");
        fs::create_dir_all(&process).unwrap();
        fs::write(process.join("stat"), STAT).unwrap();
        // No /proc/stat (so no start time), no limits, no fd directory, no page size.
        let stats = ProcessStats::read_from(root.path(), "42", Some(100.0), None);
        assert_eq!(
            stats,
            ProcessStats {
                cpu_seconds_total: Some(3.2),
                virtual_memory_bytes: Some(3133440.0),
                ..ProcessStats::default()
            }
        );
        let mut w = MetricsWriter::new();
        stats.write(&mut w);
        let body = w.finish();
        assert!(!body.contains("process_open_fds"));
        assert!(body.contains("process_virtual_memory_bytes 3.13344e+06\n"));
        assert_eq!(
            ProcessStats::read_from(&root.path().join("none"), "self", None, None),
            ProcessStats::default()
        );
    }

    #[test]
    fn this_process_reads_sane() {
        let stats = ProcessStats::read();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(stats.cpu_seconds_total.unwrap() >= 0.0);
        assert!(stats.open_fds.unwrap() >= 3.0, "{stats:?}");
        assert!(stats.max_fds.unwrap() >= stats.open_fds.unwrap());
        assert!(stats.virtual_memory_bytes.unwrap() > 0.0);
        assert!(stats.virtual_memory_max_bytes.unwrap() > 0.0);
        let rss = stats.resident_memory_bytes.unwrap();
        assert!(rss > 0.0 && rss <= stats.virtual_memory_bytes.unwrap());
        // The test binary started moments ago: boot time is whole seconds and start ticks
        // are 1/CLK_TCK, so allow a little ahead; an hour back is far beyond any slow run.
        let start = stats.start_time_seconds.unwrap();
        assert!(
            start <= now + 2.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
    }
}
