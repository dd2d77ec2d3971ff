//! loadgen's own CPU use, read from `/proc/self/stat`, so every benchmark can show that the
//! load generator was not the bottleneck.
//!
//! Parsing is pure and tested on pinned lines; reading the file and the clock-tick size are
//! the only system calls. Never used per scrape: it is read every few seconds.

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CpuError {
    #[error("reading /proc/self/stat: {0}")]
    Read(#[from] std::io::Error),
    #[error("unexpected /proc/self/stat format: {0:?}")]
    Format(String),
}

/// CPU time and memory of the process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub user: Duration,
    pub system: Duration,
    pub rss_bytes: u64,
}

impl Usage {
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }
}

/// Parses a `/proc/<pid>/stat` line. Fields are counted after the command name's closing
/// parenthesis, because the command name itself may contain spaces and parentheses.
pub fn parse_stat(line: &str, ticks_per_second: u64, page_size: u64) -> Result<Usage, CpuError> {
    let bad = || CpuError::Format(line.chars().take(200).collect());
    let (_, rest) = line.rsplit_once(')').ok_or_else(bad)?;
    // rest starts at field 3 (state): utime is field 14, stime 15, rss 24.
    let fields: Vec<&str> = rest.split_ascii_whitespace().take(22).collect();
    let field = |n: usize| -> Result<u64, CpuError> {
        fields
            .get(n - 3)
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)
    };
    let ticks = ticks_per_second.max(1);
    let to_duration = |t: u64| Duration::from_nanos(t.saturating_mul(1_000_000_000 / ticks));
    Ok(Usage {
        user: to_duration(field(14)?),
        system: to_duration(field(15)?),
        rss_bytes: field(24)?.saturating_mul(page_size),
    })
}

/// The process's usage now.
pub fn read() -> Result<Usage, CpuError> {
    let line = std::fs::read_to_string("/proc/self/stat")?;
    // SAFETY: sysconf only reads configuration values.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    parse_stat(
        &line,
        u64::try_from(ticks).unwrap_or(100),
        u64::try_from(page).unwrap_or(4096),
    )
}

/// Share of one core used between two readings `wall` apart (100 = one full core).
pub fn percent(before: &Usage, after: &Usage, wall: Duration) -> f64 {
    if wall.is_zero() {
        return 0.0;
    }
    let cpu = after.cpu().saturating_sub(before.cpu());
    100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "4242 (load gen) (x)) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 75 0 0 20 0 3 0 123456 123456789 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn parses_utime_stime_rss_after_a_tricky_command_name() {
        let u = parse_stat(LINE, 100, 4096).unwrap();
        assert_eq!(u.user, Duration::from_millis(2500));
        assert_eq!(u.system, Duration::from_millis(750));
        assert_eq!(u.cpu(), Duration::from_millis(3250));
        assert_eq!(u.rss_bytes, 2560 * 4096);
    }

    #[test]
    fn refuses_garbage() {
        assert!(parse_stat("no parenthesis", 100, 4096).is_err());
        assert!(parse_stat("1 (x) S 1 2", 100, 4096).is_err());
    }

    #[test]
    fn percent_of_a_core() {
        let a = Usage::default();
        let b = Usage {
            user: Duration::from_millis(300),
            system: Duration::from_millis(200),
            rss_bytes: 0,
        };
        assert!((percent(&a, &b, Duration::from_secs(2)) - 25.0).abs() < 1e-9);
        assert_eq!(percent(&a, &b, Duration::ZERO), 0.0);
    }

    #[test]
    fn reads_this_process() {
        let u = read().unwrap();
        assert!(u.rss_bytes > 0);
    }
}
