//! A front executor: the HTTP listener of one core besides the router's, so that a client's
//! connection is served on the core that already processes its packets (`http::listeners`
//! steers it there) instead of waking the router's core for every request.
//!
//! This extends `../shared/DESIGN.md`'s "router executor: http server": the router still owns
//! all state and answers every request that needs it; a front only accepts, answers from
//! published immutable tables (`api::front`), and forwards the rest to the router over a
//! shared channel (`http::forward`). It stops with the server (`Control::stop`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use socket2::Socket;

use crate::api::cors::Cors;
use crate::api::front::{FrontHandler, FrontShared};
use crate::flags::LogLevel;
use crate::http::forward::{ForwardEnds, Forwarder};
use crate::http::{ConnectionSlots, Server, ServerConfig};
use crate::log::log;
use crate::server::Control;

/// How often a front looks whether the process is stopping.
const CONTROL_POLL: Duration = Duration::from_millis(50);

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
    pub control: Arc<Control>,
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
        control,
    } = start;
    let stopped = || async {
        while !control.stop.load(Ordering::SeqCst) {
            glommio::timer::sleep(CONTROL_POLL).await;
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
