//! The client on a real glommio executor against scripted std servers on 127.0.0.1. Server
//! threads poll a stop flag and every socket read has a timeout, so no test can hang; client
//! waits are bounded by the scrape timeout under test.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use glommio::{LocalExecutorBuilder, Placement};

use super::*;
use crate::http::chunked::encode_chunked;
use crate::scrape::scrape_buffers::ScrapeBuffers;

const POLL: Duration = Duration::from_millis(5);

/// What the server does with one request.
enum Reply {
    /// Writes the bytes and waits for the next request.
    Send(Vec<u8>),
    /// Writes the bytes and closes the connection.
    SendAndClose(Vec<u8>),
    /// Closes the connection without answering.
    Close,
    /// Never answers.
    Silence,
    /// Writes `prefix` at once, then `rest` a byte at a time, `gap` apart.
    Trickle {
        prefix: Vec<u8>,
        rest: Vec<u8>,
        gap: Duration,
    },
}

type Script = dyn Fn(usize) -> Reply + Send + Sync;

struct TestServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// The request heads received, in order.
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Answers the n-th request (counted over all connections) with `script(n)`.
    fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let (acc, reqs, flag) = (accepted.clone(), requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        acc.fetch_add(1, Ordering::Relaxed);
                        let (reqs, flag, script) = (reqs.clone(), flag.clone(), script.clone());
                        conns.push(std::thread::spawn(move || {
                            serve(stream, &reqs, &flag, &*script)
                        }));
                    }
                    Err(_) => std::thread::sleep(POLL),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        TestServer {
            addr,
            accepted,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn address(&self) -> String {
        self.addr.to_string()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut stream: TcpStream, requests: &Mutex<Vec<String>>, stop: &AtomicBool, script: &Script) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(POLL)).unwrap();
    let stopped = || stop.load(Ordering::Relaxed);
    let mut buf = Vec::new();
    loop {
        // Read one request head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if stopped() {
                return;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let n = {
            let mut r = requests.lock().unwrap();
            r.push(head);
            r.len() - 1
        };
        match script(n) {
            Reply::Send(bytes) => {
                if stream.write_all(&bytes).is_err() {
                    return;
                }
            }
            Reply::SendAndClose(bytes) => {
                let _ = stream.write_all(&bytes);
                return;
            }
            Reply::Close => return,
            Reply::Silence => {
                while !stopped() {
                    std::thread::sleep(POLL);
                }
                return;
            }
            Reply::Trickle { prefix, rest, gap } => {
                let _ = stream.write_all(&prefix);
                for b in rest {
                    if stopped() || stream.write_all(&[b]).is_err() {
                        return;
                    }
                    std::thread::sleep(gap);
                }
            }
        }
    }
}

/// Runs `f` on a fresh glommio executor and returns its output.
fn on_executor<T, F>(f: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = T> + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("scrape-client-test")
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn request(address: &str) -> ScrapeRequest<'_> {
    ScrapeRequest {
        address,
        path_and_query: "/metrics",
        accept: "text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
        timeout: Duration::from_secs(10),
        body_size_limit: 0,
        accept_gzip: true,
        authorization: None,
        user_agent: "promcore-test",
        tls: None,
    }
}

fn exposition() -> Vec<u8> {
    (0..400)
        .map(|i| {
            format!(
                "node_network_receive_bytes_total{{device=\"eth{i}\"}} {}\n",
                i * 977
            )
        })
        .collect::<String>()
        .into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn with_length(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{head}\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

fn ok_plain(body: &[u8]) -> Vec<u8> {
    with_length(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4",
        body,
    )
}

/// node_exporter's shape: gzip inside chunked.
fn ok_gzip_chunked(body: &[u8]) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    out.extend_from_slice(&encode_chunked(&gzip(body), &[4096, 100]));
    out
}

/// Runs `gets` scrapes of `req` with one client; returns each result and the bodies.
fn scrape(
    req: impl Fn(&str) -> ScrapeRequest<'_> + Send + 'static,
    address: String,
    gets: usize,
) -> Vec<(Result<ScrapeResponse, String>, Vec<u8>)> {
    on_executor(move || async move {
        let mut client = ScrapeClient::new();
        let mut out = Vec::new();
        let mut bufs = ScrapeBuffers::default();
        for _ in 0..gets {
            let r = client.get(&req(&address), &mut bufs).await;
            if r.is_err() {
                assert!(!client.is_connected(), "connection kept after an error");
            }
            out.push((r.map_err(|e| e.to_string()), bufs.body.clone()));
        }
        out
    })
}

#[test]
fn plain_body_and_request_headers() {
    let text = exposition();
    let reply = ok_plain(&text);
    let server = TestServer::start(move |_| Reply::Send(reply.clone()));
    let results = scrape(
        |a| ScrapeRequest {
            accept_gzip: false,
            authorization: Some("Bearer secret"),
            timeout: Duration::from_millis(2500),
            ..request(a)
        },
        server.address(),
        1,
    );
    let (result, body) = &results[0];
    assert_eq!(
        result.as_ref().unwrap().content_type,
        "text/plain; version=0.0.4"
    );
    assert_eq!(body, &text);
    let head = &server.requests()[0];
    for line in [
        "GET /metrics HTTP/1.1\r\n".to_string(),
        format!("Host: {}\r\n", server.addr),
        "Accept: text/plain;version=0.0.4;q=0.3,*/*;q=0.2\r\n".into(),
        "Accept-Encoding: identity\r\n".into(),
        "Authorization: Bearer secret\r\n".into(),
        "User-Agent: promcore-test\r\n".into(),
        "X-Prometheus-Scrape-Timeout-Seconds: 2.5\r\n".into(),
    ] {
        assert!(head.contains(&line), "{line:?} missing from {head:?}");
    }
}

#[test]
fn chunked_body() {
    let text = exposition();
    let mut reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    reply.extend_from_slice(&encode_chunked(&text, &[1, 1000, 333]));
    let server = TestServer::start(move |_| Reply::Send(reply.clone()));
    let results = scrape(request, server.address(), 2);
    for (result, body) in results {
        assert_eq!(result.unwrap().content_type, "");
        assert_eq!(body, text);
    }
    assert_eq!(server.accepted(), 1);
}

#[test]
fn gzip_bodies_in_every_framing() {
    let text = exposition();
    let zipped = gzip(&text);
    let replies = [
        ok_gzip_chunked(&text),
        with_length("HTTP/1.1 200 OK\r\nContent-Encoding: gzip", &zipped),
        // Read to close: the connection cannot be reused.
        [
            &b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n"[..],
            &zipped,
        ]
        .concat(),
    ];
    let server = TestServer::start(move |n| match n {
        0 | 1 => Reply::Send(replies[n].clone()),
        _ => Reply::SendAndClose(replies[2].clone()),
    });
    let results = scrape(request, server.address(), 3);
    for (result, body) in results {
        result.unwrap();
        assert_eq!(body, text);
    }
    assert!(server.requests()[0].contains("Accept-Encoding: gzip\r\n"));
    assert_eq!(server.accepted(), 1);
}

#[test]
fn keep_alive_reuses_one_connection() {
    let text = exposition();
    let reply = ok_gzip_chunked(&text);
    let server = TestServer::start(move |_| Reply::Send(reply.clone()));
    let results = scrape(request, server.address(), 2);
    assert!(results.iter().all(|(r, b)| r.is_ok() && b == &text));
    assert_eq!(server.accepted(), 1);
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn reconnects_when_the_server_closed_the_idle_connection() {
    let text = exposition();
    let reply = ok_plain(&text);
    // Each response announces keep-alive, then the server closes the connection anyway.
    let server = TestServer::start(move |_| Reply::SendAndClose(reply.clone()));
    let results = scrape(request, server.address(), 3);
    for (result, body) in &results {
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(body, &text);
    }
    assert_eq!(server.accepted(), 3);
}

#[test]
fn retries_a_stale_connection_only_once() {
    let reply = ok_plain(b"up 1\n");
    // The first request is answered; every later connection is closed without an answer.
    let server = TestServer::start(move |n| match n {
        0 => Reply::SendAndClose(reply.clone()),
        _ => Reply::Close,
    });
    let results = scrape(request, server.address(), 2);
    assert!(results[0].0.is_ok());
    assert_eq!(
        results[1].0,
        Err(format!("Get \"http://{}/metrics\": EOF", server.addr))
    );
    // The stale connection, then one retry on a new one.
    assert_eq!(server.accepted(), 2);
}

#[test]
fn error_status_and_a_new_connection_after_it() {
    let text = exposition();
    let ok = ok_plain(&text);
    let server = TestServer::start(move |n| match n {
        0 => Reply::Send(with_length(
            "HTTP/1.1 404 Not Found",
            b"404 page not found\n",
        )),
        _ => Reply::Send(ok.clone()),
    });
    let results = scrape(request, server.address(), 2);
    assert_eq!(
        results[0].0,
        Err("server returned HTTP status 404 Not Found".into())
    );
    assert_eq!(results[1].1, text);
    assert_eq!(server.accepted(), 2);
}

#[test]
fn body_size_limit_plain_and_gzipped() {
    let text = exposition();
    let plain = ok_plain(&text);
    let zipped = ok_gzip_chunked(&text);
    let server = TestServer::start(move |n| {
        Reply::Send(if n % 2 == 0 {
            plain.clone()
        } else {
            zipped.clone()
        })
    });
    let n = text.len() as u64;
    let results = scrape(
        move |a| ScrapeRequest {
            body_size_limit: n,
            ..request(a)
        },
        server.address(),
        2,
    );
    for (result, _) in &results {
        assert_eq!(result, &Err("body size limit exceeded".into()));
    }
    let results = scrape(
        move |a| ScrapeRequest {
            body_size_limit: n + 1,
            ..request(a)
        },
        server.address(),
        2,
    );
    for (result, body) in results {
        result.unwrap();
        assert_eq!(body, text);
    }
}

#[test]
fn a_server_that_never_answers_times_out() {
    let server = TestServer::start(|_| Reply::Silence);
    let results = scrape(
        |a| ScrapeRequest {
            timeout: Duration::from_millis(200),
            ..request(a)
        },
        server.address(),
        1,
    );
    assert_eq!(
        results[0].0,
        Err(format!(
            "Get \"http://{}/metrics\": context deadline exceeded",
            server.addr
        ))
    );
}

#[test]
fn a_trickling_body_times_out() {
    let text = exposition();
    let full = ok_plain(&text);
    let split = full.len() - text.len() + 10;
    let server = TestServer::start(move |_| Reply::Trickle {
        prefix: full[..split].to_vec(),
        rest: full[split..].to_vec(),
        gap: Duration::from_millis(10),
    });
    let results = scrape(
        |a| ScrapeRequest {
            timeout: Duration::from_millis(300),
            ..request(a)
        },
        server.address(),
        1,
    );
    assert_eq!(results[0].0, Err("context deadline exceeded".into()));
}

#[test]
fn connection_refused_names_the_address() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let address = format!("127.0.0.1:{port}");
    let results = scrape(request, address.clone(), 1);
    assert_eq!(
        results[0].0,
        Err(format!(
            "Get \"http://{address}/metrics\": dial tcp {address}: connect: connection refused"
        ))
    );
}

#[test]
fn localhost_and_malformed_responses() {
    let server = TestServer::start(|n| match n {
        0 => Reply::Send(ok_plain(b"up 1\n")),
        _ => Reply::SendAndClose(b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()),
    });
    let results = scrape(request, format!("localhost:{}", server.addr.port()), 2);
    assert_eq!(results[0].1, b"up 1\n");
    let err = results[1].0.clone().unwrap_err();
    assert!(
        err.ends_with("malformed HTTP response \"SSH-2.0-OpenSSH_9.2\""),
        "{err}"
    );
}

#[test]
fn corrupt_gzip_fails_the_scrape() {
    let mut zipped = gzip(&exposition());
    let n = zipped.len();
    zipped[n - 6] ^= 0xff;
    let reply = with_length("HTTP/1.1 200 OK\r\nContent-Encoding: gzip", &zipped);
    let server = TestServer::start(move |_| Reply::Send(reply.clone()));
    let results = scrape(request, server.address(), 1);
    assert_eq!(results[0].0, Err("gzip: invalid checksum".into()));
}

#[test]
fn host_names_go_to_the_resolver_off_the_executor() {
    // `localhost` is answered without a lookup by `resolve`; asking the resolver for it
    // exercises the blocking-pool path with a name every system knows.
    let found = on_executor(|| async { address::lookup("localhost", 9100).await });
    let found = found.unwrap();
    assert!(
        found
            .iter()
            .any(|a| a.ip().is_loopback() && a.port() == 9100),
        "{found:?}"
    );
}
