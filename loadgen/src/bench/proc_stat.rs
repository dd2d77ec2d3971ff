//! CPU time and resident memory of another process (a server under test, or loadgen's own
//! `serve` child), read from `/proc/<pid>/stat`, and what a window between two readings cost.
//!
//! The line format is parsed by `crate::cpu::parse_stat` (pure, tested there); this module
//! only reads the file and does the arithmetic of a window. It never signals the process.

use std::time::Duration;

use crate::cpu::{self, CpuError, Usage};

/// `/proc/<pid>/stat` now.
pub fn read(pid: u32) -> Result<Usage, CpuError> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // SAFETY: sysconf only reads configuration values.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    cpu::parse_stat(
        &line,
        u64::try_from(ticks).unwrap_or(100),
        u64::try_from(page).unwrap_or(4096),
    )
}

/// CPU seconds spent between two readings of the same process.
pub fn cpu_seconds(before: &Usage, after: &Usage) -> f64 {
    after.cpu().saturating_sub(before.cpu()).as_secs_f64()
}

/// CPU seconds per million samples; `None` when nothing was ingested (no honest ratio).
pub fn cpu_per_million(cpu_seconds: f64, samples: f64) -> Option<f64> {
    (samples > 0.0).then(|| cpu_seconds / (samples / 1e6))
}

/// Cores used on average over `wall` (1.0 = one full core).
pub fn cores(cpu_seconds: f64, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        cpu_seconds / wall.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_arithmetic() {
        let a = Usage {
            user: Duration::from_secs(1),
            system: Duration::from_millis(500),
            rss_bytes: 0,
        };
        let b = Usage {
            user: Duration::from_secs(3),
            system: Duration::from_millis(1500),
            rss_bytes: 4096,
        };
        assert!((cpu_seconds(&a, &b) - 3.0).abs() < 1e-9);
        // A counter that went backwards (a restarted process) costs nothing, not a panic.
        assert_eq!(cpu_seconds(&b, &a), 0.0);
        assert_eq!(cpu_per_million(3.0, 2_000_000.0), Some(1.5));
        assert_eq!(cpu_per_million(3.0, 0.0), None);
        assert!((cores(3.0, Duration::from_secs(6)) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn reads_this_process_by_pid() {
        let u = read(std::process::id()).unwrap();
        assert!(u.rss_bytes > 0);
        assert!(read(u32::MAX).is_err());
    }
}
