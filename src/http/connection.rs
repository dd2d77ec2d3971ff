//! One HTTP/1.1 connection, from accept to close: reads request heads and bodies under size
//! limits and deadlines, hands each request to the handler in arrival order, writes the
//! responses (batched while pipelined requests are already buffered), keeps the connection
//! alive when both sides allow it, and closes it without losing the last answer.
//!
//! It owns the socket and its buffers and nothing else: parsing, body decoding and response
//! encoding are the pure modules' job, and it never interprets a request. It must never panic
//! or allocate without bound on what a client sends; every wait on the client has a deadline.

use std::borrow::Cow;
use std::cell::Cell;
use std::io;
use std::net::Shutdown;
use std::time::Instant;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;

use super::chunked::{ChunkedDecoder, ChunkedError};
use super::compression::{negotiate, Compressor};
use super::config::ServerConfig;
use super::head::{parse_head, Framing, Head, HeadError};
use super::request::{Method, Request, Version};
use super::response::{encode_head, BodySource, Exchange, Response, StatusCode};
use super::Handler;

/// Read buffer size to start with; heads of API requests fit easily.
const INITIAL_BUFFER: usize = 8 * 1024;
/// Pending output is written once it reaches this size, and bodies this large skip the copy
/// into the output buffer.
const FLUSH_AT: usize = 64 * 1024;
/// A content-length body grows by at most this much per read before data arrives, so that a
/// client announcing 32 MiB and sending nothing costs nothing.
const BODY_STEP: usize = 64 * 1024;
/// Bytes read and dropped while lingering before a close.
const LINGER_MAX_BYTES: usize = 1024 * 1024;
/// The compression buffer is released after a response larger than this.
const SCRATCH_KEEP: usize = 1024 * 1024;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Server-wide state shared by the connections of one executor.
pub struct ServerState {
    /// Requests inside a handler right now.
    pub busy: Cell<usize>,
    /// Connections open right now.
    pub connections: Cell<usize>,
    /// Set on shutdown: connections close after their current exchange.
    stopping: Cell<bool>,
    /// Never signalled, only closed on shutdown: closing wakes every idle connection at once.
    stop: Semaphore,
}

impl Default for ServerState {
    fn default() -> Self {
        ServerState {
            busy: Cell::new(0),
            connections: Cell::new(0),
            stopping: Cell::new(false),
            stop: Semaphore::new(0),
        }
    }
}

impl ServerState {
    pub fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Makes connections close: idle ones now, busy ones after their current exchange.
    pub fn stop(&self) {
        self.stopping.set(true);
        self.stop.close();
    }

    /// Completes once [`ServerState::stop`] was called.
    async fn stopped(&self) {
        let _ = self.stop.acquire(1).await;
    }
}

/// Why a connection ends.
enum End {
    /// After a response that closes the connection: flush, half-close, linger.
    Close,
    /// The client left between requests, or stayed idle too long: nothing to say.
    Quiet,
    /// Answer with this error and close.
    Reject(StatusCode, Cow<'static, str>),
    /// I/O failed or the client vanished mid-request: just drop the socket.
    Abort,
}

enum ReadError {
    TimedOut,
    Io,
    Stopped,
}

/// Serves one accepted connection until it ends.
pub async fn serve<H: Handler>(
    stream: TcpStream,
    handler: &H,
    config: &ServerConfig,
    state: &ServerState,
) {
    state.connections.set(state.connections.get() + 1);
    let _open = Decrement(&state.connections);
    // Responses are batched by hand, so Nagle would only add latency.
    let _ = stream.set_nodelay(true);
    if stream
        .set_write_timeout(Some(config.write_timeout))
        .is_err()
    {
        return;
    }
    let mut conn = Connection {
        stream,
        config,
        buf: vec![0; INITIAL_BUFFER],
        start: 0,
        end: 0,
        out: Vec::with_capacity(1024),
        scratch: Vec::new(),
        compressor: Compressor::default(),
    };
    let end = conn.exchanges(handler, state).await;
    conn.finish(end).await;
}

struct Connection<'a> {
    stream: TcpStream,
    config: &'a ServerConfig,
    /// Bytes received and not yet consumed are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Encoded responses not yet written.
    out: Vec<u8>,
    /// Compressed body of the current response.
    scratch: Vec<u8>,
    compressor: Compressor,
}

impl Connection<'_> {
    async fn exchanges<H: Handler>(&mut self, handler: &H, state: &ServerState) -> End {
        loop {
            let (head, first_byte) = match self.read_head(state).await {
                Ok(h) => h,
                Err(end) => return end,
            };
            let body = match self.read_body(&head, first_byte).await {
                Ok(b) => b,
                Err(end) => return end,
            };
            let keep_alive = head.keep_alive;
            let mut exchange = Exchange {
                version: head.version,
                head_request: head.method == Method::Head,
                keep_alive,
                coding: head.headers.get("accept-encoding").and_then(negotiate),
            };
            let request = match Request::new(head, body) {
                Ok(r) => r,
                Err(e) => return End::Reject(StatusCode::BAD_REQUEST, e.to_string().into()),
            };
            let response = {
                state.busy.set(state.busy.get() + 1);
                let _busy = Decrement(&state.busy);
                handler.handle(request).await
            };
            // Decided after the handler: a shutdown may have begun while it ran.
            exchange.keep_alive = keep_alive && !state.is_stopping();
            if self.write_response(&response, &exchange).await.is_err() {
                return End::Abort;
            }
            if !exchange.keep_alive {
                return End::Close;
            }
        }
    }

    /// Waits for and parses the next request head, flushing pending responses before any wait.
    async fn read_head(&mut self, state: &ServerState) -> Result<(Head, Instant), End> {
        let mut first_byte = (self.start < self.end).then(Instant::now);
        loop {
            if self.start < self.end {
                match parse_head(&self.buf[self.start..self.end], self.config.max_head_bytes) {
                    Ok(Some((head, len))) => {
                        self.start += len;
                        return Ok((head, first_byte.unwrap_or_else(Instant::now)));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(reject_head(e)),
                }
            } else if state.is_stopping() {
                return Err(End::Quiet);
            }
            if self.flush().await.is_err() {
                return Err(End::Abort);
            }
            let deadline = match first_byte {
                None => Instant::now() + self.config.idle_timeout,
                Some(t) => t + self.config.header_timeout,
            };
            let read = if first_byte.is_none() {
                // Between requests, shutdown need not wait for the client.
                let stopped = async {
                    state.stopped().await;
                    Err(ReadError::Stopped)
                };
                futures_lite::future::or(self.fill(deadline), stopped).await
            } else {
                self.fill(deadline).await
            };
            match read {
                Ok(0) if first_byte.is_none() => return Err(End::Quiet),
                Ok(0) => return Err(End::Abort),
                Ok(_) => {
                    first_byte.get_or_insert_with(Instant::now);
                }
                Err(ReadError::TimedOut) if first_byte.is_none() => return Err(End::Quiet),
                Err(ReadError::TimedOut) => {
                    return Err(End::Reject(StatusCode::REQUEST_TIMEOUT, "".into()))
                }
                Err(ReadError::Io) => return Err(End::Abort),
                Err(ReadError::Stopped) => return Err(End::Quiet),
            }
        }
    }

    async fn read_body(&mut self, head: &Head, first_byte: Instant) -> Result<Vec<u8>, End> {
        let deadline = first_byte + self.config.read_timeout;
        let limit = self.config.max_body_bytes;
        match head.framing {
            Framing::Empty => Ok(Vec::new()),
            Framing::Length(n) => {
                let n = usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= limit)
                    .ok_or_else(|| too_large(limit))?;
                self.send_continue(head).await?;
                let have = (self.end - self.start).min(n);
                let mut body = Vec::with_capacity(n.min(BODY_STEP).max(have));
                body.extend_from_slice(&self.buf[self.start..self.start + have]);
                self.start += have;
                while body.len() < n {
                    let filled = body.len();
                    let step = (n - filled).min(filled.max(BODY_STEP));
                    body.resize(filled + step, 0);
                    let got = read_before(&mut self.stream, deadline, &mut body[filled..])
                        .await
                        .map_err(read_error_end)?;
                    if got == 0 {
                        return Err(End::Abort);
                    }
                    body.truncate(filled + got);
                }
                Ok(body)
            }
            Framing::Chunked => {
                self.send_continue(head).await?;
                let mut decoder = ChunkedDecoder::new(limit);
                let mut body = Vec::new();
                loop {
                    let input = &self.buf[self.start..self.end];
                    match decoder.decode(input, &mut body) {
                        Ok(d) => {
                            self.start += d.consumed;
                            if d.done {
                                return Ok(body);
                            }
                        }
                        Err(ChunkedError::TooLarge { limit }) => return Err(too_large(limit)),
                        Err(e) => {
                            return Err(End::Reject(StatusCode::BAD_REQUEST, e.to_string().into()))
                        }
                    }
                    match self.fill(deadline).await {
                        Ok(0) => return Err(End::Abort),
                        Ok(_) => {}
                        Err(e) => return Err(read_error_end(e)),
                    }
                }
            }
        }
    }

    /// Tells a client that waits for permission to send its body to go ahead; one that
    /// already started sending needs no answer.
    async fn send_continue(&mut self, head: &Head) -> Result<(), End> {
        if head.expect_continue && self.start == self.end {
            self.out.extend_from_slice(CONTINUE);
            self.flush().await.map_err(|_| End::Abort)?;
        }
        Ok(())
    }

    async fn write_response(&mut self, response: &Response, exchange: &Exchange) -> io::Result<()> {
        let source = encode_head(
            response,
            exchange,
            &mut self.compressor,
            &mut self.scratch,
            &mut self.out,
        );
        let body: &[u8] = match source {
            BodySource::None => &[],
            BodySource::Identity => response.body(),
            BodySource::Compressed => &self.scratch,
        };
        if body.len() >= FLUSH_AT {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
            self.stream.write_all(body).await?;
        } else {
            self.out.extend_from_slice(body);
            if self.out.len() >= FLUSH_AT {
                self.flush().await?;
            }
        }
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        Ok(())
    }

    async fn finish(&mut self, end: End) {
        match end {
            End::Abort => {}
            // Responses to pipelined requests may still be pending.
            End::Quiet => {
                let _ = self.flush().await;
            }
            End::Close => self.close().await,
            End::Reject(status, detail) => {
                let text = if detail.is_empty() {
                    format!("{} {}", status.as_u16(), status.reason())
                } else {
                    format!("{} {}: {detail}", status.as_u16(), status.reason())
                };
                let exchange = Exchange {
                    version: Version::Http11,
                    head_request: false,
                    keep_alive: false,
                    coding: None,
                };
                let response = Response::text(status, text);
                if self.write_response(&response, &exchange).await.is_ok() {
                    self.close().await;
                }
            }
        }
    }

    /// Sends what is pending, half-closes, and reads what the client still sends until it
    /// closes too (or the linger time is over): closing with unread input would make the
    /// kernel reset the connection, and the client could lose our last response.
    async fn close(&mut self) {
        if self.flush().await.is_err() {
            return;
        }
        if self.stream.shutdown(Shutdown::Write).await.is_err() {
            return;
        }
        let deadline = Instant::now() + self.config.linger;
        let mut dropped = 0;
        while dropped < LINGER_MAX_BYTES {
            match read_before(&mut self.stream, deadline, &mut self.buf).await {
                Ok(n) if n > 0 => dropped += n,
                _ => return,
            }
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads more bytes into the buffer, making room first; returns how many (0 at EOF).
    async fn fill(&mut self, deadline: Instant) -> Result<usize, ReadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // Only a head can need this: parse_head refuses one past the limit, which
                // bounds the buffer at twice the head limit.
                let len = self.buf.len() * 2;
                self.buf.resize(len, 0);
            }
        }
        let n = read_before(&mut self.stream, deadline, &mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

/// One read that fails with `TimedOut` if nothing arrives before `deadline`.
async fn read_before(
    stream: &mut TcpStream,
    deadline: Instant,
    dst: &mut [u8],
) -> Result<usize, ReadError> {
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(ReadError::TimedOut)?;
    stream
        .set_read_timeout(Some(left))
        .map_err(|_| ReadError::Io)?;
    match stream.read(dst).await {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(ReadError::TimedOut),
        Err(_) => Err(ReadError::Io),
    }
}

fn read_error_end(e: ReadError) -> End {
    match e {
        ReadError::TimedOut => End::Reject(StatusCode::REQUEST_TIMEOUT, "".into()),
        ReadError::Io | ReadError::Stopped => End::Abort,
    }
}

fn too_large(limit: usize) -> End {
    End::Reject(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body larger than {limit} bytes").into(),
    )
}

fn reject_head(e: HeadError) -> End {
    let status = StatusCode::new(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    match e {
        HeadError::Malformed(reason) => End::Reject(status, reason.into()),
        _ => End::Reject(status, "".into()),
    }
}

/// Decrements a counter when dropped, so that a cancelled task still gives its slot back.
struct Decrement<'a>(&'a Cell<usize>);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}
