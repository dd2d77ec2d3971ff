//! The scrape HTTP client: one per target, running on the scrape loop's glommio executor. It
//! sends Prometheus's `GET` over one kept-alive connection, reads the response into the
//! caller's body buffer (gunzipped, under the body size limit) and bounds the whole exchange,
//! connect and body included, by the scrape timeout.
//!
//! It owns its connection and reuses it from scrape to scrape; the buffers of an exchange
//! (socket reads, gunzip state, the body) are the caller's, lent for one scrape (see
//! `scrape_buffers`), so that idle targets hold none. A reused
//! connection that the server closed while idle is noticed when the request gets no byte
//! back, and the request is sent once more on a new connection, as Go's client retries an
//! idempotent request. After any error or timeout the connection is dropped, never reused
//! half-read. For `https` targets the connection is TLS (the job's `tls_config`, loaded by the
//! `tls` module) and is kept alive the same way. It never
//! parses the body and never blocks the executor (name lookups go to glommio's blocking pool).

mod address;
mod body;
mod error;
mod gunzip;
mod request;
mod response;
mod whole_gunzip;

#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use self::request::RequestHead;
use self::response::Parsed;
use crate::scrape::scrape_buffers::ScrapeBuffers;
use crate::tls::{ClientStream, TlsClient};

pub use self::address::resolve;
pub use self::body::{BodyBuffers, BodyDecoder};
pub use self::error::{os_reason, BodyError, RequestError, ScrapeError};
pub use self::gunzip::{Gunzip, GunzipError};
pub use self::response::{parse as parse_response, Parsed as ParsedResponse, ResponseHead};

/// Socket reads go into a buffer of this size; exporters' gzipped bodies take a few reads.
const READ_BUFFER: usize = 16 * 1024;
/// Go's default `MaxResponseHeaderBytes`-like bound on a response head (Go: 10 MiB; no
/// exporter comes near 1 MiB).
const MAX_HEAD: usize = 1024 * 1024;

/// One scrape's request. Values are used as given: the caller has built the path and query
/// (see [`crate::config::target::Target::path_and_query`]) and the header values.
#[derive(Debug, Clone, Copy)]
pub struct ScrapeRequest<'a> {
    /// `host:port`, `[v6]:port`, or a host alone (port 80).
    pub address: &'a str,
    /// `/metrics?x=y`, already percent-encoded.
    pub path_and_query: &'a str,
    /// The `Accept` header (Prometheus's, from the scrape protocols).
    pub accept: &'a str,
    /// The whole exchange, connect and body included: the scrape timeout.
    pub timeout: Duration,
    /// Fails a body whose decompressed size reaches this; 0 means no limit.
    pub body_size_limit: u64,
    /// `enable_compression`: asks for gzip; a gzipped answer is decoded either way.
    pub accept_gzip: bool,
    /// The whole `Authorization` value (`Basic ...`, `Bearer ...`).
    pub authorization: Option<&'a str>,
    pub user_agent: &'a str,
    /// `Some` for an `https` target: the job's loaded `tls_config`.
    pub tls: Option<&'a TlsClient>,
}

impl ScrapeRequest<'_> {
    /// The URL as Go's client names it in errors.
    fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{}", self.address, self.path_and_query)
    }

    fn failed(&self, cause: RequestError) -> ScrapeError {
        ScrapeError::Request {
            url: self.url(),
            cause,
        }
    }
}

/// What the scrape loop needs from a successful response besides the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeResponse {
    /// The `Content-Type` header; empty when absent.
    pub content_type: String,
}

/// One open connection to a peer, plain or TLS; the notifier opens its own with it too.
pub struct Connection {
    pub stream: ClientStream,
    /// The target address it was opened for: a target whose address changed reconnects.
    address: String,
    local: Option<SocketAddr>,
    peer: SocketAddr,
}

impl Connection {
    /// Connects to the first of the address's peers that answers, with TLS over it for
    /// `https`.
    pub async fn open(address: &str, tls: Option<&TlsClient>) -> Result<Connection, RequestError> {
        let default_port = if tls.is_some() {
            address::HTTPS_PORT
        } else {
            address::HTTP_PORT
        };
        let mut first_error = None;
        for peer in address::resolve(address, default_port).await? {
            match TcpStream::connect(peer).await {
                Ok(tcp) => {
                    // The request goes out in one write; Nagle could only delay it.
                    let _ = tcp.set_nodelay(true);
                    let local = tcp.local_addr().ok();
                    let stream = match tls {
                        None => ClientStream::Plain(tcp),
                        Some(tls) => tls
                            .connect(address::host(address), tcp)
                            .await
                            .map_err(RequestError::Tls)?,
                    };
                    return Ok(Connection {
                        local,
                        stream,
                        address: address.to_string(),
                        peer,
                    });
                }
                // Go reports the first address's error when all fail.
                Err(e) => {
                    first_error.get_or_insert_with(|| RequestError::Connect {
                        addr: peer.to_string(),
                        reason: error::os_reason(&io::Error::from(e)),
                    });
                }
            }
        }
        Err(first_error.unwrap_or_else(|| RequestError::Lookup {
            host: address.to_string(),
            reason: "no such host".into(),
        }))
    }

    /// `127.0.0.1:41234->127.0.0.1:9100`, as Go names a connection in I/O errors.
    pub fn name(&self) -> String {
        match self.local {
            Some(local) => format!("{local}->{}", self.peer),
            None => self.peer.to_string(),
        }
    }
}

/// How an attempt to get a response head failed.
enum HeadFailure {
    /// Nothing came back: on a reused connection, the server had closed it while idle.
    NoResponse(RequestError),
    Failed(RequestError),
}

/// The HTTP client of one target.
pub struct ScrapeClient {
    conn: Option<Connection>,
    /// Received bytes not yet used are `read[start..end]` of the lent buffers.
    start: usize,
    end: usize,
    /// The encoded request.
    out: Vec<u8>,
}

impl Default for ScrapeClient {
    fn default() -> Self {
        Self::new()
    }
}

impl ScrapeClient {
    /// A client without a connection; the first [`ScrapeClient::get`] opens one.
    pub fn new() -> Self {
        ScrapeClient {
            conn: None,
            start: 0,
            end: 0,
            out: Vec::new(),
        }
    }

    /// Whether a kept-alive connection waits for the next scrape.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Scrapes once: writes the (decompressed) body into `bufs.body`, which is cleared first
    /// and keeps its capacity. Must run inside a glommio executor.
    pub async fn get(
        &mut self,
        req: &ScrapeRequest<'_>,
        bufs: &mut ScrapeBuffers,
    ) -> Result<ScrapeResponse, ScrapeError> {
        bufs.body.clear();
        // Which error a timeout is depends on how far the exchange got.
        let head_received = Cell::new(false);
        let exchange = self.exchange(req, bufs, &head_received);
        let expired = async {
            glommio::timer::sleep(req.timeout).await;
            Err(if head_received.get() {
                ScrapeError::Timeout
            } else {
                req.failed(RequestError::Timeout)
            })
        };
        // Dropping the exchange on timeout drops its connection: `self.conn` is only set
        // back once a response was read completely.
        futures_lite::future::or(exchange, expired).await
    }

    async fn exchange(
        &mut self,
        req: &ScrapeRequest<'_>,
        bufs: &mut ScrapeBuffers,
        head_received: &Cell<bool>,
    ) -> Result<ScrapeResponse, ScrapeError> {
        let head = RequestHead {
            host: req.address,
            path_and_query: req.path_and_query,
            accept: req.accept,
            accept_gzip: req.accept_gzip,
            authorization: req.authorization,
            user_agent: req.user_agent,
            timeout: req.timeout,
        };
        request::encode(&head, &mut self.out).map_err(|e| req.failed(e))?;
        if bufs.read.len() < READ_BUFFER {
            bufs.read.resize(READ_BUFFER, 0);
        }
        let mut kept = self.conn.take().filter(|c| c.address == req.address);
        let (mut conn, head) = loop {
            let reused = kept.is_some();
            let mut conn = match kept.take() {
                Some(c) => c,
                None => Connection::open(req.address, req.tls)
                    .await
                    .map_err(|e| req.failed(e))?,
            };
            match self.round_trip(&mut conn, &mut bufs.read).await {
                Ok(head) => break (conn, head),
                // The stale connection is dropped here; the retry opens a new one.
                Err(HeadFailure::NoResponse(_)) if reused => continue,
                Err(HeadFailure::NoResponse(e) | HeadFailure::Failed(e)) => {
                    return Err(req.failed(e))
                }
            }
        };
        head_received.set(true);
        if head.status != 200 {
            // Prometheus does not read an error's body; its connection is not reused either.
            return Err(ScrapeError::Status(head.status_text));
        }
        let reusable = self.read_body(&mut conn, &head, req, bufs).await?;
        if reusable {
            self.conn = Some(conn);
        }
        Ok(ScrapeResponse {
            content_type: head.content_type,
        })
    }

    /// Sends the request and reads up to the end of the response head.
    async fn round_trip(
        &mut self,
        conn: &mut Connection,
        buf: &mut Vec<u8>,
    ) -> Result<ResponseHead, HeadFailure> {
        self.start = 0;
        self.end = 0;
        // TLS buffers records: the flush puts the request on the wire.
        let sent = match conn.stream.write_all(&self.out).await {
            Ok(()) => conn.stream.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            return Err(HeadFailure::NoResponse(io_error("write", conn, &e)));
        }
        loop {
            match response::parse(&buf[self.start..self.end]).map_err(HeadFailure::Failed)? {
                Parsed::Complete(head) => {
                    self.start += head.len;
                    return Ok(head);
                }
                Parsed::Interim(len) => {
                    self.start += len;
                    continue;
                }
                Parsed::Partial => {}
            }
            if self.end == buf.len() {
                self.make_room(buf).map_err(HeadFailure::Failed)?;
            }
            let read = conn.stream.read(&mut buf[self.end..]).await;
            let nothing_yet = self.end == 0;
            match read {
                Ok(0) if nothing_yet => return Err(HeadFailure::NoResponse(RequestError::Eof)),
                Ok(0) => return Err(HeadFailure::Failed(RequestError::TruncatedHead)),
                Ok(n) => self.end += n,
                Err(e) => {
                    let e = io_error("read", conn, &e);
                    return Err(if nothing_yet {
                        HeadFailure::NoResponse(e)
                    } else {
                        HeadFailure::Failed(e)
                    });
                }
            }
        }
    }

    /// Frees buffer space for a head that does not fit yet.
    fn make_room(&mut self, buf: &mut Vec<u8>) -> Result<(), RequestError> {
        if self.start > 0 {
            buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        } else if buf.len() >= MAX_HEAD {
            return Err(RequestError::HeadTooLarge(MAX_HEAD));
        } else {
            let len = (buf.len() * 2).min(MAX_HEAD);
            buf.resize(len, 0);
        }
        Ok(())
    }

    /// Reads the body into `bufs.body`; returns whether the connection can carry the next
    /// scrape.
    async fn read_body(
        &mut self,
        conn: &mut Connection,
        head: &ResponseHead,
        req: &ScrapeRequest<'_>,
        bufs: &mut ScrapeBuffers,
    ) -> Result<bool, ScrapeError> {
        let ScrapeBuffers { read, bodies, body } = bufs;
        let mut decoder = BodyDecoder::new(head.framing, head.gzip, req.body_size_limit, bodies)?;
        let mut closed = false;
        if self.start < self.end && !decoder.is_done() {
            let fed = decoder.feed(&read[self.start..self.end], bodies, body)?;
            self.start += fed.consumed;
        }
        while !decoder.is_done() {
            match conn.stream.read(&mut read[..]).await {
                Ok(0) => {
                    decoder.end_of_stream(bodies, body)?;
                    closed = true;
                }
                Ok(n) => {
                    let fed = decoder.feed(&read[..n], bodies, body)?;
                    (self.start, self.end) = (fed.consumed, n);
                }
                Err(e) => {
                    return Err(ScrapeError::Body(BodyError::Io {
                        addr: conn.name(),
                        reason: crate::tls::io_reason(&e),
                    }))
                }
            }
        }
        // Bytes after the body were not asked for: the connection's state is unknown.
        Ok(head.keep_alive && !closed && self.start == self.end)
    }
}

fn io_error(op: &'static str, conn: &Connection, e: &io::Error) -> RequestError {
    RequestError::Io {
        op,
        addr: conn.name(),
        // A TLS peer's refusal (an alert after the handshake) arrives as a read error.
        reason: format!("{op}: {}", crate::tls::io_reason(e)),
    }
}
