//! The router's queue of appends for one shard: the batches of the scrapes that finished
//! within a short window go to the shard as one message, so the shard is woken, and writes
//! its WAL, once per window instead of once per scrape.
//!
//! Why: with thousands of targets, each scrape's batch is small and scrapes are spread over
//! the interval, so a message per scrape meant a cross-core wake-up, an executor sleep and
//! wake on both sides and a WAL write per scrape, which cost more CPU than the samples. The
//! window adds at most `window` to a scrape's acknowledgement, never to its timestamp.
//!
//! It owns the waiting batches and one flusher task per shard; it never reorders the
//! batches of a shard (one sender at a time, in queue order), never drops one (the link's
//! back-pressure makes the flusher wait), and never looks inside a batch. `flush` sends
//! what is queued at once, so that a request sent after it (a delete, a snapshot) reaches
//! the shard after every batch pushed before it: the link and the shard keep that order.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::sync::Semaphore;
use shards::head::{AppendBatch, AppendOutcome};

use super::protocol::{ShardRequest, ShardResponse};
use super::shard_link::{LinkError, ShardLink};
use super::RouterError;

/// How long the first batch of a group waits for others. Scrape intervals are seconds: a
/// tenth of a second more before the acknowledgement is not seen (a scrape's timestamp and
/// duration are taken before), and at 1,000 targets every 10 s a window gathers about ten
/// scrapes per shard. Measured at 50, 100 and 200 ms (BENCHMARKS.md, issue 3).
pub const APPEND_WINDOW: Duration = Duration::from_millis(100);

/// A group this large is sent without waiting for the window to end, bounding the memory
/// held and the size of one WAL write.
const FLUSH_SAMPLES: usize = 256 * 1024;

type Outcome = Result<AppendOutcome, RouterError>;

/// An append queued with [`AppendOutbox::push`], not yet acknowledged.
pub struct PendingAppend {
    shard: usize,
    rx: LocalReceiver<Outcome>,
}

impl PendingAppend {
    /// Waits for the shard's answer to this batch.
    pub async fn wait(self) -> Outcome {
        self.rx
            .recv()
            .await
            .unwrap_or(Err(RouterError::Link(LinkError::Closed(self.shard))))
    }
}

#[derive(Default)]
struct Queue {
    batches: Vec<AppendBatch>,
    waiters: Vec<LocalSender<Outcome>>,
    samples: usize,
}

pub struct AppendOutbox {
    shard: usize,
    link: Rc<ShardLink>,
    queue: RefCell<Queue>,
    /// One permit: held while a group is taken from the queue and put on the link, so that
    /// `flush` returns only once groups taken earlier by the flusher are on the link too.
    sending: Semaphore,
    /// Wakes the flusher when the queue stops being empty, fills up, or on close.
    wake: LocalSender<()>,
    closed: Cell<bool>,
}

impl AppendOutbox {
    /// Creates the outbox of `link`'s shard and starts its flusher on this executor.
    pub fn start(link: Rc<ShardLink>, window: Duration) -> Rc<AppendOutbox> {
        let (wake, woken) = local_channel::new_bounded(1);
        let outbox = Rc::new(AppendOutbox {
            shard: link.shard(),
            link,
            queue: RefCell::new(Queue::default()),
            sending: Semaphore::new(1),
            wake,
            closed: Cell::new(false),
        });
        let weak = Rc::downgrade(&outbox);
        glommio::spawn_local(async move {
            while woken.recv().await.is_some() {
                let Some(outbox) = weak.upgrade() else { break };
                let full = outbox.queue.borrow().samples >= FLUSH_SAMPLES;
                if !full && !outbox.closed.get() {
                    glommio::timer::sleep(window).await;
                }
                outbox.send_queued().await;
                if outbox.closed.get() {
                    break;
                }
            }
        })
        .detach();
        outbox
    }

    /// Queues `batch`; the returned append resolves once the shard acknowledged it.
    pub fn push(&self, batch: AppendBatch) -> PendingAppend {
        let (tx, rx) = local_channel::new_bounded(1);
        let pending = PendingAppend {
            shard: self.shard,
            rx,
        };
        if self.closed.get() {
            // Dropping `tx` answers the waiter with `Closed`.
            return pending;
        }
        let mut q = self.queue.borrow_mut();
        let was_empty = q.batches.is_empty();
        q.samples += batch.samples.len();
        q.batches.push(batch);
        q.waiters.push(tx);
        if was_empty || q.samples >= FLUSH_SAMPLES {
            // Full means a wake is already pending: nothing is lost by ignoring it.
            let _ = self.wake.try_send(());
        }
        pending
    }

    /// No more batches: later pushes are refused, and the flusher ends after sending what is
    /// queued (if the link is still open).
    pub fn close(&self) {
        self.closed.set(true);
        let _ = self.wake.try_send(());
    }

    /// Puts every batch pushed so far on the link now, without waiting for the window;
    /// their acknowledgements still come through their `PendingAppend`s.
    pub async fn flush(&self) {
        self.send_queued().await;
    }

    async fn send_queued(&self) {
        // Fails only once the semaphore is closed, which nothing does.
        let Ok(_sending) = self.sending.acquire_permit(1).await else {
            return;
        };
        let link = &self.link;
        let Queue {
            batches, waiters, ..
        } = std::mem::take(&mut *self.queue.borrow_mut());
        if batches.is_empty() {
            return;
        }
        let shard = self.shard;
        let pending = link.send(ShardRequest::AppendGroup(batches)).await;
        // The answer is awaited apart, so the next group can be sent meanwhile.
        glommio::spawn_local(async move {
            let answer = match pending {
                Ok(p) => p.wait().await.map_err(RouterError::from),
                Err(e) => Err(e.into()),
            };
            match answer {
                Ok(ShardResponse::AppendedGroup(Ok(outcomes)))
                    if outcomes.len() == waiters.len() =>
                {
                    for (tx, o) in waiters.into_iter().zip(outcomes) {
                        // The scrape may have been cancelled meanwhile: nothing to tell.
                        let _ = tx.try_send(Ok(o));
                    }
                }
                Ok(ShardResponse::AppendedGroup(Err(reason))) => {
                    for tx in waiters {
                        let reason = reason.clone();
                        let _ = tx.try_send(Err(RouterError::Storage { shard, reason }));
                    }
                }
                Ok(_) => {
                    for tx in waiters {
                        let _ = tx.try_send(Err(RouterError::Protocol(shard)));
                    }
                }
                Err(e) => {
                    for tx in waiters {
                        let _ = tx.try_send(Err(e.clone()));
                    }
                }
            }
        })
        .detach();
    }
}
