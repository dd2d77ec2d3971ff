//! What the API shows about a target: its labels before and after relabeling, and how its last
//! scrape went. Written by the target's scrape loop, read by `/api/v1/targets`; both run on the
//! router executor, so it is plain `RefCell` state behind an `Rc`.

use std::time::SystemTime;

use shards::labels::Labels;

/// Prometheus's target health: "unknown" until the first scrape ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TargetStatus {
    pub job: String,
    /// Labels before relabeling (`discoveredLabels`).
    pub discovered: Labels,
    /// Labels attached to the target's series (`labels`).
    pub labels: Labels,
    pub scrape_url: String,
    pub interval: std::time::Duration,
    pub timeout: std::time::Duration,
    pub health: Health,
    /// Empty when the last scrape succeeded.
    pub last_error: String,
    /// Start of the last scrape; `None` before the first.
    pub last_scrape: Option<SystemTime>,
    pub last_scrape_duration: f64,
    /// Series in the target's scrape cache.
    pub cached_series: usize,
}

/// A target discovered but dropped by `relabel_configs` (`droppedTargets`).
#[derive(Debug, Clone)]
pub struct DroppedTarget {
    pub job: String,
    pub discovered: Labels,
}
