//! Counters and gauges: the values of promcore's own metrics, held by the struct whose work
//! they count (a router, a scrape loop) on its executor. Plain `Cell`s, never atomics and
//! never shared across threads: each executor's values are summed or labelled by the
//! `/metrics` handler when it writes them.

use std::cell::Cell;

/// A monotonically increasing count of events.
#[derive(Debug, Default)]
pub struct Counter(Cell<u64>);

impl Counter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        // Wrapping would show as a counter reset; 2^64 events never happen, so saturate.
        self.0.set(self.0.get().saturating_add(n));
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(Cell<f64>);

impl Gauge {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&self, v: f64) {
        self.0.set(v);
    }

    pub fn add(&self, delta: f64) {
        self.0.set(self.0.get() + delta);
    }

    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_counts_and_saturates() {
        let c = Counter::new();
        c.inc();
        c.add(41);
        assert_eq!(c.get(), 42);
        c.add(u64::MAX);
        assert_eq!(c.get(), u64::MAX);
    }

    #[test]
    fn gauge_moves_both_ways() {
        let g = Gauge::new();
        g.set(10.0);
        g.add(-2.5);
        assert_eq!(g.get(), 7.5);
    }
}
