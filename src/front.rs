//! A front executor: the HTTP listener of one core besides the router's, so that a client's
//! connection is served on the core that already processes its packets (`http::listeners`
//! steers it there) instead of waking the router's core for every request.
//!
//! This extends `../shared/DESIGN.md`'s "router executor: http server": the router still owns
//! all state and answers every request that needs it; a front only accepts, answers from
//! published immutable tables (`api::front`), and forwards the rest to the router over a
//! shared channel (`http::forward`). It stops with the server: start-up closes its end of the
//! front's stop socket (`FrontStart::stop`) once the process stops. A front waits on that
//! socket instead of polling a flag, because its executor spins before parking (to answer
//! back-to-back requests without a wake-up) and a periodic timer would pay that spin every
//! time: ~5 ms of CPU a second for an idle front with a 50 ms poll.

use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::rc::Rc;
use std::sync::Arc;

use futures_lite::future;
use glommio::net::UnixStream;
use socket2::Socket;

use crate::api::cors::Cors;
use crate::api::front::{FrontHandler, FrontShared};
use crate::flags::LogLevel;
use crate::http::forward::{ForwardEnds, Forwarder};
use crate::http::{ConnectionSlots, Server, ServerConfig};
use crate::log::log;

/// Everything a front executor is started with.
pub struct FrontStart {
    pub core: usize,
    /// This core's listener of the group (`http::listeners::bind_listeners`).
    pub listener: Socket,
    pub http: ServerConfig,
    /// `--web.max-connections`, shared with every listener.
    pub slots: Arc<ConnectionSlots>,
    pub forward: ForwardEnds,
    pub shared: Arc<FrontShared>,
    /// `handler::api_policy` of the flags.
    pub policy: (Cors, String),
    /// The front's end of a socket pair whose other end start-up holds while the process
    /// runs: end of file on it means "stop".
    pub stop: StdUnixStream,
}

/// The front executor's main: serves until the process stops.
pub async fn run_front(start: FrontStart) {
    let FrontStart {
        core,
        listener,
        http,
        slots,
        forward,
        shared,
        policy,
        stop,
    } = start;
    // SAFETY: the descriptor was just taken out of an owned std stream, so nothing else
    // owns or closes it.
    let stop = Rc::new(unsafe { UnixStream::from_raw_fd(stop.into_raw_fd()) });
    let stopped = || {
        let stop = stop.clone();
        async move {
            // Nothing is ever written: the read ends at end of file (or on an error, which
            // can only mean the socket is gone), either way the process is stopping.
            let mut byte = [0u8; 1];
            let _ = stop.peek(&mut byte).await;
        }
    };
    // The router connects its end as it starts; it may never (it failed to start).
    let connect = async { Some(Forwarder::connect(forward).await) };
    let cancelled = async {
        stopped().await;
        None
    };
    let Some(forwarder) = future::or(connect, cancelled).await else {
        return;
    };
    let handler = FrontHandler::new(core, shared, policy, forwarder);
    let server = Server::from_listener(listener, http, handler, slots);
    if let Err(e) = server.serve_until(stopped()).await {
        log(
            LogLevel::Error,
            &format!("http-{core}"),
            "listener failed",
            &[("err", &e)],
        );
    }
}
