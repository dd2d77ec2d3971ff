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
    /// A `*_file` secret could not be read: nothing is sent without the credentials.
    #[error("{0}")]
    Credentials(String),
}

/// Posts `body` to `http://{address}{path}`, with `authorization` as the `Authorization`
/// header when given; Ok for a 2xx answer.
pub async fn post_json(
    address: &str,
    path: &str,
    body: &[u8],
    user_agent: &str,
    authorization: Option<&str>,
    timeout: Duration,
) -> Result<(), PostError> {
    let exchange = exchange(address, path, body, user_agent, authorization);
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
    authorization: Option<&str>,
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
    let credentials = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: {user_agent}\r\n{credentials}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// One POST to a plain socket server: the request head it received.
    fn received_head(authorization: Option<&'static str>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Head and the 2-byte body `[]`.
            while !got.ends_with(b"\r\n\r\n[]") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "client closed early");
                got.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let result = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name("notifier-post-test")
            .spawn(move || async move {
                post_json(
                    &address,
                    "/api/v2/alerts",
                    b"[]",
                    "promcore-test",
                    authorization,
                    Duration::from_secs(10),
                )
                .await
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(result, Ok(()));
        server.join().unwrap()
    }

    #[test]
    fn sends_the_credentials_header_only_when_configured() {
        let head = received_head(Some("Basic dTpw"));
        assert!(
            head.starts_with("POST /api/v2/alerts HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nAuthorization: Basic dTpw\r\n"), "{head}");
        let head = received_head(None);
        assert!(!head.contains("Authorization"), "{head}");
    }
}
