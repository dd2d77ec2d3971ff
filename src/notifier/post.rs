//! `POST`s of JSON bodies to one Alertmanager over HTTP/1.1 or HTTPS, on one kept-alive
//! connection per Alertmanager (as Go's transport keeps Prometheus's), each bounded in time as
//! a whole (connect, TLS handshake, write, response). The response body is read and dropped
//! so the connection can carry the next batch. A reused connection that the Alertmanager
//! closed while idle is noticed when the request gets no byte back, and the batch is sent
//! once more on a new connection; after any other error the connection is dropped.
//!
//! It never blocks the executor (name lookups go to glommio's blocking pool) and never looks
//! at the answer beyond its status and framing.

use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use thiserror::Error;

use crate::scrape::client::{
    parse_response, BodyBuffers, BodyDecoder, Connection, ParsedResponse, ResponseHead,
};
use crate::tls::TlsClient;

/// Longest response head read; Alertmanager's are a few hundred bytes.
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PostError {
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    Io(String),
    #[error("bad response status {0}")]
    Status(String),
    #[error("context deadline exceeded")]
    Timeout,
    #[error("malformed response")]
    Malformed,
    #[error("unsupported scheme {0:?}")]
    Scheme(String),
    /// A `*_file` secret or the TLS files could not be used: nothing is sent without them.
    #[error("{0}")]
    Credentials(String),
}

/// One Alertmanager's request.
#[derive(Debug, Clone, Copy)]
pub struct PostRequest<'a> {
    pub address: &'a str,
    pub path: &'a str,
    pub body: &'a [u8],
    pub user_agent: &'a str,
    /// The whole `Authorization` value.
    pub authorization: Option<&'a str>,
    /// `Some` for `https`.
    pub tls: Option<&'a TlsClient>,
    pub timeout: Duration,
}

/// The client of one Alertmanager: its kept-alive connection and buffers.
#[derive(Default)]
pub struct AlertmanagerClient {
    conn: Option<Connection>,
    /// Whether `conn` was opened with TLS: a scheme change opens a new one.
    conn_tls: bool,
    buf: Vec<u8>,
    bodies: BodyBuffers,
    /// Connections opened so far (for tests and the keep-alive check).
    opened: u64,
}

/// How an attempt failed.
enum Failure {
    /// Nothing came back on a reused connection: it was closed while idle.
    Stale(PostError),
    Failed(PostError),
}

impl AlertmanagerClient {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many connections this client has opened.
    pub fn connections_opened(&self) -> u64 {
        self.opened
    }

    /// Posts the body; Ok for a 2xx answer. Must run inside a glommio executor.
    pub async fn post_json(&mut self, req: &PostRequest<'_>) -> Result<(), PostError> {
        let exchange = self.exchange(req);
        let expired = async {
            glommio::timer::sleep(req.timeout).await;
            Err(PostError::Timeout)
        };
        // On timeout the exchange, and the connection it had taken, are dropped.
        futures_lite::future::or(exchange, expired).await
    }

    async fn exchange(&mut self, req: &PostRequest<'_>) -> Result<(), PostError> {
        let credentials = req
            .authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let mut out = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\n{credentials}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            req.path,
            req.address,
            req.user_agent,
            req.body.len()
        )
        .into_bytes();
        out.extend_from_slice(req.body);
        let mut kept = self
            .conn
            .take()
            .filter(|_| self.conn_tls == req.tls.is_some());
        loop {
            let reused = kept.is_some();
            let mut conn = match kept.take() {
                Some(c) => c,
                None => {
                    self.opened += 1;
                    Connection::open(req.address, req.tls)
                        .await
                        .map_err(|e| PostError::Connect(e.to_string()))?
                }
            };
            match self.round_trip(&mut conn, &out).await {
                Ok(reusable) => {
                    if reusable {
                        self.conn = Some(conn);
                        self.conn_tls = req.tls.is_some();
                    }
                    return Ok(());
                }
                Err(Failure::Stale(_)) if reused => continue,
                Err(Failure::Stale(e) | Failure::Failed(e)) => return Err(e),
            }
        }
    }

    /// Sends the request, reads the whole response; Ok(whether the connection is reusable)
    /// for a 2xx status.
    async fn round_trip(&mut self, conn: &mut Connection, out: &[u8]) -> Result<bool, Failure> {
        let sent = match conn.stream.write_all(out).await {
            Ok(()) => conn.stream.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            return Err(Failure::Stale(PostError::Io(e.to_string())));
        }
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        let head: ResponseHead = loop {
            let n = conn.stream.read(&mut chunk).await;
            let nothing_yet = self.buf.is_empty();
            match n {
                Ok(0) if nothing_yet => return Err(Failure::Stale(PostError::Io("EOF".into()))),
                Ok(0) => return Err(Failure::Failed(PostError::Malformed)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if nothing_yet => return Err(Failure::Stale(PostError::Io(e.to_string()))),
                Err(e) => return Err(Failure::Failed(PostError::Io(e.to_string()))),
            }
            match parse_response(&self.buf) {
                Ok(ParsedResponse::Complete(head)) => break head,
                Ok(ParsedResponse::Interim(len)) => {
                    self.buf.drain(..len);
                }
                Ok(ParsedResponse::Partial) if self.buf.len() < MAX_HEAD => {}
                _ => return Err(Failure::Failed(PostError::Malformed)),
            }
        };
        let status = head.status;
        let reusable = self.drain_body(conn, &head).await;
        if (200..300).contains(&status) {
            Ok(reusable)
        } else {
            Err(Failure::Failed(PostError::Status(head.status_text)))
        }
    }

    /// Reads the body and drops it; whether the connection can carry the next request.
    async fn drain_body(&mut self, conn: &mut Connection, head: &ResponseHead) -> bool {
        let Ok(mut decoder) = BodyDecoder::new(head.framing, false, 0, &mut self.bodies) else {
            return false;
        };
        let mut sink = Vec::new();
        let mut rest = self.buf.split_off(head.len);
        let mut consumed_all = true;
        let mut chunk = [0u8; 4096];
        loop {
            if !rest.is_empty() && !decoder.is_done() {
                match decoder.feed(&rest, &mut self.bodies, &mut sink) {
                    Ok(fed) => consumed_all = fed.consumed == rest.len(),
                    Err(_) => return false,
                }
                sink.clear();
                rest.clear();
            }
            if decoder.is_done() {
                return head.keep_alive && consumed_all;
            }
            match conn.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A plain socket server that accepts `connections` connections and answers
    /// `per_connection` POSTs (2-byte body `[]`) on each; returns the request heads.
    fn server(
        connections: usize,
        per_connection: usize,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let mut heads = Vec::new();
            for _ in 0..connections {
                let (mut conn, _) = listener.accept().unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                for _ in 0..per_connection {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 1];
                    while !got.ends_with(b"\r\n\r\n[]") {
                        let n = conn.read(&mut buf).unwrap();
                        assert!(n > 0, "client closed early");
                        got.extend_from_slice(&buf[..n]);
                    }
                    // A body, as Alertmanager may send one: it must be read past.
                    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .unwrap();
                    heads.push(String::from_utf8(got).unwrap());
                }
            }
            heads
        });
        (address, handle)
    }

    /// Posts `[]` `times` times with one client; the results and connections opened.
    fn post_times(
        address: String,
        authorization: Option<&'static str>,
        times: usize,
    ) -> (Vec<Result<(), PostError>>, u64) {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name("notifier-post-test")
            .spawn(move || async move {
                let mut client = AlertmanagerClient::new();
                let mut results = Vec::new();
                for _ in 0..times {
                    let req = PostRequest {
                        address: &address,
                        path: "/api/v2/alerts",
                        body: b"[]",
                        user_agent: "promcore-test",
                        authorization,
                        tls: None,
                        timeout: Duration::from_secs(10),
                    };
                    results.push(client.post_json(&req).await);
                }
                (results, client.connections_opened())
            })
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn sends_the_credentials_header_only_when_configured() {
        let (address, answered) = server(1, 1);
        let (results, _) = post_times(address, Some("Basic dTpw"), 1);
        assert_eq!(results, vec![Ok(())]);
        let head = &answered.join().unwrap()[0];
        assert!(
            head.starts_with("POST /api/v2/alerts HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nAuthorization: Basic dTpw\r\n"), "{head}");
        let (address, answered) = server(1, 1);
        let (results, _) = post_times(address, None, 1);
        assert_eq!(results, vec![Ok(())]);
        assert!(!answered.join().unwrap()[0].contains("Authorization"));
    }

    #[test]
    fn batches_share_one_kept_alive_connection() {
        // The server accepts a single connection: a second one would never be answered.
        let (address, server) = server(1, 3);
        let (results, opened) = post_times(address, None, 3);
        assert_eq!(results, vec![Ok(()), Ok(()), Ok(())]);
        assert_eq!(opened, 1);
        assert_eq!(server.join().unwrap().len(), 3);
    }

    #[test]
    fn a_connection_closed_while_idle_is_replaced() {
        // One request per connection, then the server closes it: the client notices on the
        // next batch and sends it again on a new connection.
        let (address, server) = server(2, 1);
        let (results, opened) = post_times(address, None, 2);
        assert_eq!(results, vec![Ok(()), Ok(())]);
        assert_eq!(opened, 2);
        assert_eq!(server.join().unwrap().len(), 2);
    }
}
