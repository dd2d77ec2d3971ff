//! The byte buffers a scrape needs only while it runs — the socket read buffer, the gunzip
//! state with its 32 KiB window, the decompressed body — lent to one scrape at a time from a
//! pool of the executor's thread and given back when the scrape is done.
//!
//! Kept per target between scrapes, these cost about 200 KiB a target whatever the scrape
//! interval: with a thousand targets, ~200 MB of resident memory for buffers of which only
//! the few scrapes in flight at any moment use any. The pool holds what the busiest moment
//! needed (bounded by `MAX_POOLED`), so a buffer keeps its grown capacity and a scrape still
//! allocates nothing once warm. A body never reaches the next borrower: it is cleared when
//! its set comes back. This module never does I/O.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use crate::scrape::client::BodyBuffers;

/// Sets kept for reuse at most; sets given back beyond this are freed. Scrapes in flight at
/// once are few (loops start spread over the interval and a scrape takes milliseconds), so
/// this only bounds a burst.
const MAX_POOLED: usize = 64;

/// One scrape's buffers.
#[derive(Default)]
pub struct ScrapeBuffers {
    /// Socket reads.
    pub read: Vec<u8>,
    /// Chunked-encoding and gunzip state.
    pub bodies: BodyBuffers,
    /// The decompressed body.
    pub body: Vec<u8>,
}

thread_local! {
    /// The pool of the scrape executor's thread (every scrape loop runs on the router's).
    static POOL: RefCell<Vec<ScrapeBuffers>> = const { RefCell::new(Vec::new()) };
}

/// A set of buffers on loan; back to the pool when dropped, also when the scrape holding it
/// is cancelled.
pub struct Lent(Option<ScrapeBuffers>);

impl Lent {
    /// A pooled set (the most recently returned, whose memory is likeliest still cached),
    /// or a fresh empty one.
    pub fn take() -> Lent {
        let pooled = POOL.with(|p| p.borrow_mut().pop());
        Lent(Some(pooled.unwrap_or_default()))
    }
}

impl Deref for Lent {
    type Target = ScrapeBuffers;

    fn deref(&self) -> &ScrapeBuffers {
        // Only `drop` takes the set out.
        self.0.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut ScrapeBuffers {
        self.0.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(mut set) = self.0.take() else {
            return;
        };
        set.body.clear();
        // During thread teardown the pool may be gone: the set is then just freed.
        let _ = POOL.try_with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < MAX_POOLED {
                pool.push(set);
            }
        });
    }
}

/// Sets waiting in this thread's pool.
pub fn pooled() -> usize {
    POOL.with(|p| p.borrow().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_set_is_lent_again_with_its_capacity() {
        // Each test runs on its own thread, so the pool starts empty.
        assert_eq!(pooled(), 0);
        {
            let mut a = Lent::take();
            a.body.extend_from_slice(&[1; 1000]);
            let b = Lent::take();
            assert_eq!(b.body.capacity(), 0);
        }
        assert_eq!(pooled(), 2);
        let again = Lent::take();
        let other = Lent::take();
        assert_eq!(pooled(), 0);
        // The grown body comes back empty, its capacity kept.
        let grown = if again.body.capacity() > 0 {
            &again
        } else {
            &other
        };
        assert!(grown.body.capacity() >= 1000);
        assert!(again.body.is_empty() && other.body.is_empty());
    }

    #[test]
    fn the_pool_keeps_at_most_max_pooled_sets() {
        let sets: Vec<Lent> = (0..MAX_POOLED + 5).map(|_| Lent::take()).collect();
        drop(sets);
        assert_eq!(pooled(), MAX_POOLED);
    }
}
