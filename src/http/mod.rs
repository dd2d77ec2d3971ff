//! The HTTP/1.1 server: a listener on one glommio executor that accepts connections up to a
//! cap (`--web.max-connections`) and serves each in its own task on the same executor, passing
//! every request to a [`Handler`]. Several executors can each serve a listener of one
//! SO_REUSEPORT group (`listeners`: connections steered to the client's core), sharing the
//! cap (`connection_slots`); a handler on one executor can pass requests to another's
//! (`forward`).
//!
//! This module owns sockets, limits and the wire protocol. It never routes, never knows what
//! an endpoint means and never blocks the executor; the API plugs in as a `Handler`.

// The scrape client reads chunked response bodies with the same decoder.
pub(crate) mod chunked;
mod compression;
mod config;
mod connection;
mod connection_slots;
pub(crate) mod date;
pub(crate) mod form;
pub mod forward;
mod head;
pub mod listeners;
mod request;
mod response;
mod shared_body;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use std::sync::Arc;

use glommio::net::TcpListener;
use socket2::Socket;
use thiserror::Error;

pub use self::{
    compression::ContentCoding,
    config::ServerConfig,
    connection::ServerState,
    connection_slots::ConnectionSlots,
    form::{FormError, Params},
    head::Headers,
    request::{Method, ParseRequestError, Request, TargetError, Version},
    response::{Response, StatusCode},
    shared_body::SharedBody,
};

/// Answers requests. Implementations are executor-local (they hold `Rc` state, never cross
/// threads), which is why the future is not required to be `Send`.
#[allow(async_fn_in_trait)]
pub trait Handler: 'static {
    async fn handle(&self, request: Request) -> Response;
}

impl<H: Handler> Handler for Rc<H> {
    async fn handle(&self, request: Request) -> Response {
        (**self).handle(request).await
    }
}

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("accepting connections failed: {0}")]
    Accept(io::Error),
}

/// A bound listener and what its connections share. Create and run it inside the executor that
/// serves it.
pub struct Server<H> {
    listener: TcpListener,
    handler: Rc<H>,
    config: Rc<ServerConfig>,
    state: Rc<ServerState>,
    slots: Arc<ConnectionSlots>,
}

impl<H: Handler> Server<H> {
    /// Binds `addr`; must run inside the glommio executor that will serve it. Port 0 picks a
    /// free port; see [`Server::local_addr`].
    pub fn bind(addr: SocketAddr, config: ServerConfig, handler: H) -> Result<Self, ServerError> {
        let mut sockets = listeners::bind_listeners(addr, 1)
            .map_err(|source| ServerError::Bind { addr, source })?;
        let slots = ConnectionSlots::new(config.max_connections);
        Ok(Self::from_listener(
            sockets.remove(0),
            config,
            handler,
            slots,
        ))
    }

    /// Serves `socket`, a listening socket from [`listeners::bind_listeners`], with the
    /// connection cap `slots` shared with the other listeners; must run inside the glommio
    /// executor that will serve it.
    pub fn from_listener(
        socket: Socket,
        config: ServerConfig,
        handler: H,
        slots: Arc<ConnectionSlots>,
    ) -> Self {
        // SAFETY: the descriptor is a bound, listening TCP socket that we own and hand over.
        let listener = unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) };
        Server {
            listener,
            handler: Rc::new(handler),
            config: Rc::new(config),
            state: Rc::new(ServerState::default()),
            slots,
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr().map_err(Into::into)
    }

    /// Counters shared with the connections (open connections, requests in handlers).
    pub fn state(&self) -> Rc<ServerState> {
        self.state.clone()
    }

    /// Serves until the listener fails for good.
    pub async fn serve(self) -> Result<(), ServerError> {
        self.serve_until(std::future::pending()).await
    }

    /// Serves until `stop` completes, then stops accepting, closes idle connections, lets busy
    /// ones finish their current exchange, and waits up to `drain_timeout` for all to close.
    pub async fn serve_until(self, stop: impl Future<Output = ()>) -> Result<(), ServerError> {
        let accepting = self.accept_loop();
        let stopped = async {
            stop.await;
            Ok(())
        };
        let result = futures_lite::future::or(accepting, stopped).await;
        self.state.stop();
        let deadline = Instant::now() + self.config.drain_timeout;
        while self.state.connections.get() > 0 && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        result
    }

    async fn accept_loop(&self) -> Result<(), ServerError> {
        let mut backoff = Duration::from_millis(5);
        loop {
            // Waiting for a free slot before accepting leaves excess clients in the kernel's
            // backlog, as Go's LimitListener does, instead of accepting and dropping them.
            // The slot is taken only once a connection is there: a listener waiting in
            // `accept` must not hold one that another listener's client needs.
            self.slots.wait_free().await;
            let stream = match self.listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    let e = io::Error::from(e);
                    if !is_transient(&e) {
                        return Err(ServerError::Accept(e));
                    }
                    // Out of file descriptors or memory: retry later rather than spin.
                    glommio::timer::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            backoff = Duration::from_millis(5);
            // Another listener may have taken the last slot meanwhile: this client then waits,
            // accepted but not served, as it would have waited in the backlog.
            let permit = self.slots.take().await;
            let (handler, config, state) = (
                self.handler.clone(),
                self.config.clone(),
                self.state.clone(),
            );
            glommio::spawn_local(async move {
                connection::serve(stream, &*handler, &config, &state).await;
                drop(permit);
            })
            .detach();
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::ECONNABORTED
                | libc::EINTR
                | libc::EAGAIN
                | libc::EPROTO
                | libc::EPERM
        )
    ) || e.kind() == io::ErrorKind::Interrupted
}
