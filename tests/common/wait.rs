//! Bounded polling: every wait in the end-to-end tests goes through here, so none can hang
//! a CI run. It never sleeps long enough to matter and never asserts on how long things took.

use std::time::{Duration, Instant};

/// How long a test waits for anything that should happen within a few scrape intervals
/// (1 s in these tests) on a busy 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(100);

/// Calls `probe` until it returns `Some`, for at most `within`; `None` when time ran out.
pub fn wait_until<T>(within: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}
