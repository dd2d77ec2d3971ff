//! Log lines in promcore's logfmt shape on stderr:
//! `ts=2026-11-23T11:31:39.123Z level=info component=loadgen msg="ready" targets=1000`.
//!
//! Only for start-up, reports and failures; never called per scrape.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

pub fn info(msg: &str, kv: &[(&str, &dyn std::fmt::Display)]) {
    line("info", msg, kv);
}

pub fn error(msg: &str, kv: &[(&str, &dyn std::fmt::Display)]) {
    line("error", msg, kv);
}

fn line(level: &str, msg: &str, kv: &[(&str, &dyn std::fmt::Display)]) {
    let mut out = format!("ts={} level={level} component=loadgen msg={msg:?}", now());
    for (k, v) in kv {
        let v = v.to_string();
        if v.is_empty() || v.contains([' ', '"', '=']) {
            let _ = write!(out, " {k}={v:?}");
        } else {
            let _ = write!(out, " {k}={v}");
        }
    }
    eprintln!("{out}");
}

/// RFC 3339 in UTC with milliseconds, from the civil-from-days algorithm (no time crate).
pub fn now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}
