//! Structured log lines in Prometheus's logfmt shape, on stderr:
//! `ts=2026-11-23T11:31:39.123Z level=info component=shard-000 msg="WAL replay done" key=value`.
//! One global level, set once at start-up; nothing here allocates unless a line is written.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::flags::LogLevel;

static LEVEL: AtomicU8 = AtomicU8::new(1);

pub fn set_level(l: LogLevel) {
    LEVEL.store(l as u8, Ordering::Relaxed);
}

pub fn enabled(l: LogLevel) -> bool {
    l as u8 >= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line. `kv` values are quoted when they contain spaces, quotes or `=`.
pub fn log(level: LogLevel, component: &str, msg: &str, kv: &[(&str, &dyn std::fmt::Display)]) {
    if !enabled(level) {
        return;
    }
    let lvl = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let mut line = format!(
        "ts={} level={lvl} component={component} msg={:?}",
        rfc3339_now(),
        msg
    );
    for (k, v) in kv {
        let v = v.to_string();
        if v.is_empty() || v.contains([' ', '"', '=']) {
            let _ = write!(line, " {k}={v:?}");
        } else {
            let _ = write!(line, " {k}={v}");
        }
    }
    eprintln!("{line}");
}

fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = crate::http::date::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        use crate::http::date::civil_from_days;
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
