//! `--web.max-connections` across every listener of the process: one count of open
//! connections shared by the executors that accept.
//!
//! A listener waits for a free slot before it accepts, so that at the cap further clients
//! wait in the kernel's backlog (Go's LimitListener), and takes it for the accepted
//! connection. A slot freed on another core cannot wake this one's
//! executor, so a listener at the cap looks again after a short sleep: the wait only happens
//! at the cap, where clients are already waiting for a connection to close.
//! It counts; it never accepts or closes anything.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a listener at the cap sleeps before it looks for a free slot again.
const RETRY: Duration = Duration::from_millis(1);

#[derive(Debug)]
pub struct ConnectionSlots {
    max: usize,
    used: AtomicUsize,
}

/// One taken slot, given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<ConnectionSlots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionSlots {
    /// At least one slot, whatever `max` says.
    pub fn new(max: usize) -> Arc<ConnectionSlots> {
        Arc::new(ConnectionSlots {
            max: max.max(1),
            used: AtomicUsize::new(0),
        })
    }

    /// A slot if one is free now.
    pub fn try_take(self: &Arc<Self>) -> Option<Slot> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }

    /// Waits for a free slot (on the calling glommio executor).
    pub async fn take(self: &Arc<Self>) -> Slot {
        loop {
            if let Some(slot) = self.try_take() {
                return slot;
            }
            glommio::timer::sleep(RETRY).await;
        }
    }

    /// Waits until a slot is free, without taking it.
    pub async fn wait_free(&self) {
        while self.used() >= self.max {
            glommio::timer::sleep(RETRY).await;
        }
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_shared_and_given_back() {
        let slots = ConnectionSlots::new(2);
        let a = slots.try_take().unwrap();
        let other = slots.clone();
        let b = std::thread::spawn(move || other.try_take()).join().unwrap();
        assert!(b.is_some());
        assert!(slots.try_take().is_none());
        drop(a);
        assert_eq!(slots.used(), 1);
        assert!(slots.try_take().is_some());
        assert!(ConnectionSlots::new(0).try_take().is_some());
    }
}
