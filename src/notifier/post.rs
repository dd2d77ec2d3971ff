//! One `POST` of a JSON body to an Alertmanager over plain HTTP/1.1, bounded in time as a
//! whole (connect, write, response head). The connection is closed after each request:
//! notifications are a few per evaluation interval, so keep-alive would save little and
//! would need the stale-connection handling the scrape client has.
//!
//! It never blocks the executor (name lookups go to glommio's blocking pool) and reads only
//! the status line of the answer.

use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use thiserror::Error;

use crate::scrape::client::resolve;

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
    #[error("unsupported scheme {0:?} (promcore speaks plain http to Alertmanager)")]
    Scheme(String),
}

/// Posts `body` to `http://{address}{path}`; Ok for a 2xx answer.
pub async fn post_json(
    address: &str,
    path: &str,
    body: &[u8],
    user_agent: &str,
    timeout: Duration,
) -> Result<(), PostError> {
    let exchange = exchange(address, path, body, user_agent);
    let expired = async {
        glommio::timer::sleep(timeout).await;
        Err(PostError::Timeout)
    };
    futures_lite::future::or(exchange, expired).await
}

async fn exchange(
    address: &str,
    path: &str,
    body: &[u8],
    user_agent: &str,
) -> Result<(), PostError> {
    let peers = resolve(address)
        .await
        .map_err(|e| PostError::Connect(e.to_string()))?;
    let mut stream = None;
    let mut last = String::from("no address");
    for p in peers {
        match TcpStream::connect(p).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("dial tcp {p}: {e}"),
        }
    }
    let mut stream = stream.ok_or(PostError::Connect(last))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: {user_agent}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut req = head.into_bytes();
    req.extend_from_slice(body);
    stream
        .write_all(&req)
        .await
        .map_err(|e| PostError::Io(e.to_string()))?;
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    loop {
        if got == buf.len() {
            return Err(PostError::Malformed);
        }
        let n = stream
            .read(&mut buf[got..])
            .await
            .map_err(|e| PostError::Io(e.to_string()))?;
        got += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf[..got]) {
            Ok(httparse::Status::Complete(_)) | Ok(httparse::Status::Partial)
                if resp.code.is_some() =>
            {
                let code = resp.code.unwrap_or(0);
                if (200..300).contains(&code) {
                    return Ok(());
                }
                return Err(PostError::Status(format!(
                    "{code} {}",
                    resp.reason.unwrap_or("")
                )));
            }
            Ok(_) if n > 0 => continue,
            _ => return Err(PostError::Malformed),
        }
    }
}
