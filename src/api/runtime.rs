//! `/api/v1/status/runtimeinfo` and `/api/v1/status/walreplay`: the process's own state in
//! Prometheus's field names. Go-runtime fields are filled with what they mean for this process
//! (`goroutineCount`: its OS threads; `GOMAXPROCS`: the CPUs it may run on) or left at
//! Go's "unset" value where nothing corresponds (`GOGC`, `GODEBUG` empty; `GOMEMLIMIT`
//! unlimited). The data is gathered by the caller; this module formats.

use std::time::SystemTime;

use super::json::write_string;
use super::rfc3339::{self, Instant};

/// Everything `/status/runtimeinfo` shows, in Prometheus 3's field order.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeInfo {
    pub start_time: SystemTime,
    pub cwd: String,
    pub hostname: String,
    pub server_time: SystemTime,
    pub reload_config_success: bool,
    /// Whole seconds since the epoch, as Prometheus reads it back from its gauge.
    pub last_config_time: i64,
    /// WAL corruptions repaired since start. promcore counts none yet: 0.
    pub corruption_count: u64,
    pub thread_count: u64,
    pub cpus: u64,
    pub storage_retention: String,
}

fn instant(t: SystemTime) -> Instant {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => Instant {
            secs: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
        },
        Err(_) => Instant { secs: 0, nanos: 0 },
    }
}

fn write_time(out: &mut Vec<u8>, t: Instant) {
    out.push(b'"');
    rfc3339::format_nano(out, t);
    out.push(b'"');
}

pub fn write_runtime_info(out: &mut Vec<u8>, info: &RuntimeInfo) {
    out.extend_from_slice(br#"{"startTime":"#);
    write_time(out, instant(info.start_time));
    out.extend_from_slice(br#","CWD":"#);
    write_string(out, &info.cwd);
    out.extend_from_slice(br#","hostname":"#);
    write_string(out, &info.hostname);
    out.extend_from_slice(br#","serverTime":"#);
    write_time(out, instant(info.server_time));
    out.extend_from_slice(br#","reloadConfigSuccess":"#);
    out.extend_from_slice(if info.reload_config_success {
        b"true"
    } else {
        b"false"
    });
    out.extend_from_slice(br#","lastConfigTime":"#);
    write_time(
        out,
        Instant {
            secs: info.last_config_time,
            nanos: 0,
        },
    );
    out.extend_from_slice(
        format!(
            r#","corruptionCount":{},"goroutineCount":{},"GOMAXPROCS":{},"GOMEMLIMIT":{},"GOGC":"","GODEBUG":"","storageRetention":"#,
            info.corruption_count,
            info.thread_count,
            info.cpus,
            i64::MAX
        )
        .as_bytes(),
    );
    write_string(out, &info.storage_retention);
    out.push(b'}');
}

/// `storageRetention` as Prometheus words it: the time, the size, or `<time> or <size>`.
pub fn storage_retention(time: &str, size: Option<&str>) -> String {
    match size {
        Some(size) if time.is_empty() => size.to_string(),
        Some(size) => format!("{time} or {size}"),
        None => time.to_string(),
    }
}

/// The OS threads of this process (`Threads:` of `/proc/self/status`); 0 if unreadable.
pub fn thread_count() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The host's name, as Go's `os.Hostname` reads it on Linux; empty if unreadable.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The WAL segments replayed at start-up: `{"min":..,"max":..,"current":..}`. Once replay
/// has finished, `current` equals `max`.
pub fn write_wal_replay(out: &mut Vec<u8>, min: u64, max: u64, current: u64) {
    out.extend_from_slice(format!(r#"{{"min":{min},"max":{max},"current":{current}}}"#).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn runtime_info_shape() {
        let info = RuntimeInfo {
            start_time: SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_000_000),
            cwd: "/".into(),
            hostname: "h".into(),
            server_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100),
            reload_config_success: true,
            last_config_time: 1_700_000_000,
            corruption_count: 0,
            thread_count: 5,
            cpus: 2,
            storage_retention: storage_retention("15d", None),
        };
        let mut out = Vec::new();
        write_runtime_info(&mut out, &info);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"startTime":"2023-11-14T22:13:20.123Z","CWD":"/","hostname":"h","serverTime":"2023-11-14T22:15:00Z","reloadConfigSuccess":true,"lastConfigTime":"2023-11-14T22:13:20Z","corruptionCount":0,"goroutineCount":5,"GOMAXPROCS":2,"GOMEMLIMIT":9223372036854775807,"GOGC":"","GODEBUG":"","storageRetention":"15d"}"#
        );
    }

    #[test]
    fn retention_wording() {
        assert_eq!(storage_retention("15d", Some("512MiB")), "15d or 512MiB");
        assert_eq!(storage_retention("", Some("1GiB")), "1GiB");
        assert!(thread_count() >= 1);
    }
}
