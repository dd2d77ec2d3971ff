//! Requests sent to another executor over a shared channel and waiting for their replies: an
//! id per request, a table from id to the waiter's local channel, and the dispatcher task that
//! drains the reply channel all the time and hands each reply to its waiter. The router's
//! links to the shards (`router::shard_link`) and the fronts' forwarding to the router
//! (`http::forward`) both wait this way.
//!
//! It owns ids, the table and the dispatcher; it never sends a request and never looks into
//! a reply. When the reply channel closes (the other side stopped), every waiter still
//! waiting gets `None`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::channels::shared_channel::ConnectedReceiver;

pub struct WaitingReplies<T> {
    waiting: RefCell<HashMap<u64, LocalSender<T>>>,
    next_id: Cell<u64>,
}

impl<T: 'static> WaitingReplies<T> {
    /// An empty table whose dispatcher, on this executor, reads `replies` and finds each
    /// reply's id with `id_of`. The dispatcher ends when the channel closes or the table is
    /// dropped.
    pub fn start<M: Send + Sized + 'static>(
        replies: ConnectedReceiver<M>,
        id_of: fn(M) -> (u64, T),
    ) -> Rc<WaitingReplies<T>> {
        let table = Rc::new(WaitingReplies {
            waiting: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
        });
        let weak = Rc::downgrade(&table);
        glommio::spawn_local(async move {
            while let Some(reply) = replies.recv().await {
                let Some(table) = weak.upgrade() else { break };
                let (id, reply) = id_of(reply);
                let waiter = table.waiting.borrow_mut().remove(&id);
                if let Some(tx) = waiter {
                    // The waiter may have given up (its scrape or connection is gone).
                    let _ = tx.try_send(reply);
                }
            }
            // The other side is gone: every waiter still waiting is woken with `None`.
            if let Some(table) = weak.upgrade() {
                table.waiting.borrow_mut().clear();
            }
        })
        .detach();
        table
    }

    /// A new request's id, and where its reply will arrive.
    pub fn wait(&self) -> (u64, LocalReceiver<T>) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        self.waiting.borrow_mut().insert(id, tx);
        (id, rx)
    }

    /// Forgets `id`, whose request could not be sent.
    pub fn forget(&self, id: u64) {
        self.waiting.borrow_mut().remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::channels::shared_channel;
    use glommio::LocalExecutorBuilder;

    #[test]
    fn replies_reach_their_waiters_in_any_order_and_a_closed_channel_wakes_the_rest() {
        LocalExecutorBuilder::default()
            .spawn(|| async {
                let (tx, rx) = shared_channel::new_bounded::<(u64, &'static str)>(8);
                // Each end's connect waits for the other's.
                let (tx, rx) = futures_lite::future::zip(tx.connect(), rx.connect()).await;
                let table = WaitingReplies::start(rx, |m| m);
                let (a, ra) = table.wait();
                let (b, rb) = table.wait();
                let (c, rc) = table.wait();
                assert_ne!(a, b);
                let (d, rd) = table.wait();
                table.forget(d);
                tx.send((b, "b")).await.ok();
                tx.send((d, "d")).await.ok();
                tx.send((a, "a")).await.ok();
                assert_eq!(ra.recv().await, Some("a"));
                assert_eq!(rb.recv().await, Some("b"));
                drop(tx);
                assert_eq!(rc.recv().await, None);
                // A forgotten id's reply is dropped, not delivered.
                assert_eq!(rd.recv().await, None);
                let _ = c;
            })
            .expect("executor")
            .join()
            .expect("join");
    }
}
