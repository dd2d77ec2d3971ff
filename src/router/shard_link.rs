//! The router's end of one router–shard link: a bounded request channel to the shard, a reply
//! channel back, and the table of requests waiting for their replies (`waiting_replies`).
//!
//! One pair of `shared_channel`s per link (not glommio's `channel_mesh`, which has an open
//! deadlock report). A dispatcher task drains the reply channel all the time, so a shard never
//! waits on a reply send while the router waits on a request send. A full request channel
//! makes the sender wait: that wait is the back-pressure of a slow shard, counted, never a
//! drop.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use glommio::channels::local_channel::LocalReceiver;
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use shards::label_generation::{LabelGeneration, LabelScope, LabelSources};
use thiserror::Error;

use super::protocol::{Envelope, Reply, ShardRequest, ShardResponse};
use crate::waiting_replies::WaitingReplies;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LinkError {
    #[error("shard {0} is shutting down")]
    Closed(usize),
}

/// Counters of one link, for `/metrics`.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub requests: Cell<u64>,
    /// Sends that found the channel full and had to wait for the shard.
    pub send_waits: Cell<u64>,
    /// Nanoseconds spent in those waits.
    pub send_wait_nanos: Cell<u64>,
}

pub struct ShardLink {
    shard: usize,
    /// What the shard publishes for label answers (read without a round trip).
    labels: Arc<LabelGeneration>,
    requests: ConnectedSender<Envelope>,
    /// Requests waiting for their replies; a closed shard wakes them with an error.
    pending: Rc<WaitingReplies<ShardResponse>>,
    pub stats: LinkStats,
}

/// A reply not yet received.
pub struct PendingReply {
    shard: usize,
    rx: LocalReceiver<ShardResponse>,
}

impl PendingReply {
    pub async fn wait(self) -> Result<ShardResponse, LinkError> {
        self.rx.recv().await.ok_or(LinkError::Closed(self.shard))
    }
}

impl ShardLink {
    /// Takes connected channel ends and the shard's published label generation, and starts
    /// the reply dispatcher on this executor.
    pub fn start(
        shard: usize,
        requests: ConnectedSender<Envelope>,
        replies: ConnectedReceiver<Reply>,
        labels: Arc<LabelGeneration>,
    ) -> Rc<ShardLink> {
        Rc::new(ShardLink {
            shard,
            labels,
            requests,
            pending: WaitingReplies::start(replies, |r: Reply| (r.id, r.response)),
            stats: LinkStats::default(),
        })
    }

    pub fn shard(&self) -> usize {
        self.shard
    }

    /// The shard's label sources over `[mint, maxt]` as it last published them, at the
    /// generation of what `scope` reads.
    pub fn label_sources(&self, scope: LabelScope<'_>, mint: i64, maxt: i64) -> LabelSources {
        self.labels.sources(scope, mint, maxt)
    }

    /// What the shard publishes for label answers (`router::published_label_lists`).
    pub fn label_generation(&self) -> &LabelGeneration {
        &self.labels
    }

    /// The same, to read from another thread (`api::front`).
    pub fn shared_label_generation(&self) -> Arc<LabelGeneration> {
        self.labels.clone()
    }

    /// Sends `request` (waiting while the channel is full) and returns the reply to await.
    /// Send all requests of a fan-out before awaiting any reply, so shards work in parallel.
    pub async fn send(&self, request: ShardRequest) -> Result<PendingReply, LinkError> {
        let (id, rx) = self.pending.wait();
        self.stats.requests.set(self.stats.requests.get() + 1);
        let env = Envelope { id, request };
        let sent = match self.requests.try_send(env) {
            Ok(()) => Ok(()),
            Err(glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(env))) => {
                let started = std::time::Instant::now();
                self.stats.send_waits.set(self.stats.send_waits.get() + 1);
                let r = self.requests.send(env).await.map_err(|_| ());
                let waited = started.elapsed().as_nanos() as u64;
                let total = self.stats.send_wait_nanos.get();
                self.stats.send_wait_nanos.set(total + waited);
                r
            }
            Err(_) => Err(()),
        };
        if sent.is_err() {
            self.pending.forget(id);
            return Err(LinkError::Closed(self.shard));
        }
        Ok(PendingReply {
            shard: self.shard,
            rx,
        })
    }

    /// Tells the shard no more requests come: it finishes what it has and closes.
    pub fn close(&self) {
        self.requests.close();
    }
}
