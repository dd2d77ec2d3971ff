//! Passing requests from the executor that accepted them to the one that answers them: a
//! bounded shared channel of requests one way and of responses back, per pair of executors,
//! with a table of requests waiting for their answers on the forwarding side (as the router's
//! links to the shards).
//!
//! The serving side answers each request in a task of its own, so one slow request does not
//! hold back the others, with its own [`Handler`]: a forwarded request gets exactly the
//! response a request accepted there would get, and the connection of the forwarding side
//! writes it. It owns the channels and the waiting table; it never looks into a request.

use std::rc::Rc;

use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};

use super::{Handler, Request, Response};
use crate::waiting_replies::WaitingReplies;

/// Requests queued before a forwarding connection waits (back-pressure), and answers back.
const QUEUE: usize = 256;

pub struct Forwarded {
    id: u64,
    request: Request,
}

pub struct Answered {
    id: u64,
    response: Response,
}

/// The forwarding executor's ends, not yet connected.
pub struct ForwardEnds {
    requests: SharedSender<Forwarded>,
    answers: SharedReceiver<Answered>,
}

/// The serving executor's ends, not yet connected.
pub struct ServeEnds {
    requests: SharedReceiver<Forwarded>,
    answers: SharedSender<Answered>,
}

/// A pair of ends; move each to its executor.
pub fn channel() -> (ForwardEnds, ServeEnds) {
    let (req_tx, req_rx) = shared_channel::new_bounded(QUEUE);
    let (ans_tx, ans_rx) = shared_channel::new_bounded(QUEUE);
    (
        ForwardEnds {
            requests: req_tx,
            answers: ans_rx,
        },
        ServeEnds {
            requests: req_rx,
            answers: ans_tx,
        },
    )
}

/// The forwarding side, connected.
pub struct Forwarder {
    requests: ConnectedSender<Forwarded>,
    pending: Rc<WaitingReplies<Response>>,
}

impl Forwarder {
    /// Connects (once the serving side connects too) and starts the task that hands each
    /// answer to its waiting request, on this executor.
    pub async fn connect(ends: ForwardEnds) -> Rc<Forwarder> {
        let requests = ends.requests.connect().await;
        let answers = ends.answers.connect().await;
        Rc::new(Forwarder {
            requests,
            pending: WaitingReplies::start(answers, |a: Answered| (a.id, a.response)),
        })
    }

    /// The serving side's response to `request`; `None` when it stopped serving.
    pub async fn forward(&self, request: Request) -> Option<Response> {
        let (id, rx) = self.pending.wait();
        if self.requests.send(Forwarded { id, request }).await.is_err() {
            self.pending.forget(id);
            return None;
        }
        rx.recv().await
    }
}

/// Answers forwarded requests with `handler` until the forwarding side closes its end; must
/// run on the serving executor.
pub async fn serve_forwarded<H: Handler>(ends: ServeEnds, handler: Rc<H>) {
    let requests: ConnectedReceiver<Forwarded> = ends.requests.connect().await;
    let answers = Rc::new(ends.answers.connect().await);
    while let Some(Forwarded { id, request }) = requests.recv().await {
        let (handler, answers) = (handler.clone(), answers.clone());
        glommio::spawn_local(async move {
            let response = handler.handle(request).await;
            // The forwarding side may have stopped meanwhile.
            let _ = answers.send(Answered { id, response }).await;
        })
        .detach();
    }
}
