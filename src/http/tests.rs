//! End-to-end tests of the server on a real glommio executor, with blocking std clients on
//! 127.0.0.1. Every client read has a timeout, so no test can hang.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};

use super::{Handler, Request, Response, Server, ServerConfig, StatusCode};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Echoes what the server understood of the request; `/big` answers a large JSON body.
struct Echo;

pub(super) fn big_body() -> Vec<u8> {
    b"{\"metric\":{\"__name__\":\"up\",\"job\":\"node\"},\"value\":[1700000000,\"1\"]},".repeat(200)
}

impl Handler for Echo {
    async fn handle(&self, req: Request) -> Response {
        match req.path() {
            "/big" => Response::json(StatusCode::OK, big_body()),
            "/empty" => Response::new(StatusCode::NO_CONTENT),
            "/slow" => {
                glommio::timer::sleep(Duration::from_millis(300)).await;
                Response::text(StatusCode::OK, "slow")
            }
            _ => {
                let mut text = format!("{} {}\n", req.method(), req.path());
                for (k, v) in req.params().iter() {
                    text.push_str(&format!("{k}={v}\n"));
                }
                text.push_str(&format!("body={}", String::from_utf8_lossy(req.body())));
                Response::text(StatusCode::OK, text)
            }
        }
    }
}

pub(super) struct TestServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<ExecutorJoinHandle<()>>,
}

impl TestServer {
    pub fn start(config: ServerConfig) -> TestServer {
        Self::start_with(config, || Echo)
    }

    pub fn start_with<H: Handler, F: FnOnce() -> H + Send + 'static>(
        config: ServerConfig,
        make_handler: F,
    ) -> TestServer {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let flag = stop.clone();
        let thread = LocalExecutorBuilder::new(Placement::Unbound)
            .name("http-test")
            .spawn(move || async move {
                let server =
                    Server::bind("127.0.0.1:0".parse().unwrap(), config, make_handler()).unwrap();
                tx.send(server.local_addr().unwrap()).unwrap();
                let stop = async move {
                    while !flag.load(Ordering::Relaxed) {
                        glommio::timer::sleep(Duration::from_millis(5)).await;
                    }
                };
                server.serve_until(stop).await.unwrap();
            })
            .unwrap();
        let addr = rx.recv_timeout(CLIENT_TIMEOUT).unwrap();
        TestServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Asks the server to shut down, without waiting.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn connect(&self) -> Client {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
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

pub(super) struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug)]
pub(super) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn get(&mut self, path: &str) -> Reply {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.reply(false)
    }

    /// Reads one response; `head_request` says not to expect body bytes.
    pub fn reply(&mut self, head_request: bool) -> Reply {
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut slots);
            if let httparse::Status::Complete(len) = resp.parse(&self.buf).unwrap() {
                let status = resp.code.unwrap();
                let headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8(h.value.to_vec()).unwrap(),
                        )
                    })
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let length = if head_request { 0 } else { length };
                self.buf.drain(..len);
                while self.buf.len() < length {
                    self.fill_or_panic();
                }
                let body = self.buf.drain(..length).collect();
                return Reply {
                    status,
                    headers,
                    body,
                };
            }
            self.fill_or_panic();
        }
    }

    fn fill_or_panic(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).expect("read timed out");
        assert!(n > 0, "connection closed early");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// True when the server closed the connection (EOF or reset) with nothing more to read.
    pub fn closed(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

fn quick() -> ServerConfig {
    ServerConfig {
        linger: Duration::from_millis(200),
        drain_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    }
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = TestServer::start(quick());
    let mut c = server.connect();
    for i in 0..5 {
        let r = c.get(&format!("/echo?i={i}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("GET /echo\ni={i}\nbody="));
        assert!(r.header("Date").is_some());
        assert_eq!(r.header("Connection"), None);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::start(quick());
    let mut c = server.connect();
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.extend_from_slice(format!("GET /p{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    batch.extend_from_slice(b"POST /last HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    c.send(&batch);
    for i in 0..20 {
        assert_eq!(c.reply(false).text(), format!("GET /p{i}\nbody="));
    }
    assert_eq!(c.reply(false).text(), "POST /last\nbody=abc");
}

#[test]
fn connection_close_and_http10() {
    let server = TestServer::start(quick());
    let mut c = server.connect();
    c.send(b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.reply(false);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(c.closed());

    let mut c = server.connect();
    c.send(b"GET /b HTTP/1.0\r\n\r\n");
    assert_eq!(c.reply(false).text(), "GET /b\nbody=");
    assert!(c.closed());

    let mut c = server.connect();
    for _ in 0..2 {
        c.send(b"GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.reply(false);
        assert_eq!(r.header("Connection"), Some("keep-alive"));
        assert_eq!(r.text(), "GET /c\nbody=");
    }
}

#[test]
fn post_form_chunked_and_expect_continue() {
    let server = TestServer::start(quick());
    let mut c = server.connect();
    let body = "query=rate(x%5B5m%5D)&match%5B%5D=b";
    c.send(
        format!(
            "POST /api?query=url&match[]=u HTTP/1.1\r\nHost: t\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(
        c.reply(false).text(),
        format!("POST /api\nquery=rate(x[5m])\nmatch[]=b\nquery=url\nmatch[]=u\nbody={body}")
    );

    c.send(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    std::thread::sleep(Duration::from_millis(20));
    c.send(b"2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n");
    assert_eq!(c.reply(false).text(), "POST /c\nbody=abcde");

    c.send(b"POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    let interim = c.reply(false);
    assert_eq!(interim.status, 100);
    c.send(b"wxyz");
    assert_eq!(c.reply(false).text(), "POST /e\nbody=wxyz");
}

#[test]
fn gzip_when_accepted_and_worth_it() {
    let server = TestServer::start(quick());
    let mut c = server.connect();
    c.send(b"GET /big HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br, gzip\r\n\r\n");
    let r = c.reply(false);
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, big_body());

    let r = c.get("/big");
    assert_eq!(r.header("Content-Encoding"), None);
    assert_eq!(r.body, big_body());

    c.send(b"GET /small HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n");
    let r = c.reply(false);
    assert_eq!(r.header("Content-Encoding"), None);
    assert_eq!(r.text(), "GET /small\nbody=");
}

#[test]
fn head_has_length_but_no_body_and_204_has_neither() {
    let server = TestServer::start(quick());
    let mut c = server.connect();
    c.send(b"HEAD /big HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.reply(true);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Length"),
        Some(big_body().len().to_string().as_str())
    );
    // Had a body been sent, this response would be read from its bytes.
    assert_eq!(c.get("/after").text(), "GET /after\nbody=");
    let r = c.get("/empty");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Content-Length"), None);
    assert_eq!(c.get("/after").status, 200);
}

#[test]
fn malformed_requests_get_400_and_a_close() {
    let server = TestServer::start(quick());
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut c = server.connect();
        c.send(bad);
        let r = c.reply(false);
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(bad));
        assert_eq!(r.header("Connection"), Some("close"));
        assert!(r.text().starts_with("400 Bad Request"));
        assert!(c.closed());
    }
    let mut c = server.connect();
    c.send(b"GET / HTTP/2.0\r\n\r\n");
    assert_eq!(c.reply(false).status, 505);
}

#[test]
fn size_limits() {
    let server = TestServer::start(ServerConfig {
        max_head_bytes: 1024,
        max_body_bytes: 1000,
        ..quick()
    });
    let mut c = server.connect();
    c.send(format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(2000)).as_bytes());
    assert_eq!(c.reply(false).status, 414);
    assert!(c.closed());

    let mut c = server.connect();
    c.send(
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
            "a".repeat(2000)
        )
        .as_bytes(),
    );
    assert_eq!(c.reply(false).status, 431);
    assert!(c.closed());

    // The body is sent anyway: the server must answer before reading it, then close
    // without resetting the connection under the client's feet.
    let mut c = server.connect();
    let mut req = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 100_000));
    c.send(&req);
    assert_eq!(c.reply(false).status, 413);

    let mut c = server.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n");
    c.send(&[b'y'; 1000]);
    c.send(b"\r\n1\r\nz\r\n0\r\n\r\n");
    assert_eq!(c.reply(false).status, 413);

    // Exactly at the limit is fine.
    let mut c = server.connect();
    let mut req = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 1000));
    c.send(&req);
    assert_eq!(c.reply(false).status, 200);
}

#[test]
fn slow_and_idle_clients_are_cut_off() {
    let server = TestServer::start(ServerConfig {
        header_timeout: Duration::from_millis(300),
        read_timeout: Duration::from_millis(600),
        idle_timeout: Duration::from_millis(400),
        ..quick()
    });
    // Slowloris: a byte at a time never completes the head in time.
    let mut c = server.connect();
    let t = Instant::now();
    c.send(b"GET / HTTP/1.1\r\n");
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(100));
        if c.stream.write_all(b"X").is_err() {
            break;
        }
    }
    let r = c.reply(false);
    assert_eq!(r.status, 408);
    assert!(t.elapsed() < Duration::from_secs(3));

    // A body that never arrives.
    let mut c = server.connect();
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(c.reply(false).status, 408);

    // An idle kept-alive connection is closed silently.
    let mut c = server.connect();
    assert_eq!(c.get("/x").status, 200);
    let t = Instant::now();
    assert!(c.closed());
    let idle = t.elapsed();
    assert!(
        idle >= Duration::from_millis(300) && idle < Duration::from_secs(3),
        "{idle:?}"
    );
}

#[test]
fn connection_cap_holds_excess_clients_in_the_backlog() {
    let server = TestServer::start(ServerConfig {
        max_connections: 2,
        ..quick()
    });
    let mut a = server.connect();
    let mut b = server.connect();
    assert_eq!(a.get("/a").status, 200);
    assert_eq!(b.get("/b").status, 200);

    let mut third = server.connect();
    third.send(b"GET /third HTTP/1.1\r\nHost: t\r\n\r\n");
    third
        .stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let waited = third.stream.read(&mut byte);
    assert!(
        matches!(&waited, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "third connection served over the cap: {waited:?}"
    );

    a.send(b"GET /bye HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(a.reply(false).status, 200);
    drop(a);
    third.stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    assert_eq!(third.reply(false).text(), "GET /third\nbody=");
    assert_eq!(b.get("/b2").status, 200);
}

#[test]
fn stopping_closes_idle_connections_and_lets_busy_ones_finish() {
    let server = TestServer::start(ServerConfig {
        drain_timeout: Duration::from_secs(3),
        ..quick()
    });
    let mut idle = server.connect();
    assert_eq!(idle.get("/x").status, 200);
    let mut busy = server.connect();
    busy.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    server.stop();
    assert!(idle.closed());
    assert!(t.elapsed() < Duration::from_secs(2));
    let r = busy.reply(false);
    assert_eq!(r.text(), "slow");
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(busy.closed());
    drop(server);
    assert!(TcpStream::connect_timeout(&"127.0.0.1:1".parse().unwrap(), CLIENT_TIMEOUT).is_err());
}

#[test]
fn a_second_server_on_the_same_port_fails_to_bind() {
    let server = TestServer::start(quick());
    let addr = server.addr;
    let refused = LocalExecutorBuilder::new(Placement::Unbound)
        .spawn(move || async move {
            match Server::bind(addr, quick(), Echo) {
                Err(e) => e.to_string(),
                Ok(_) => "bound".to_string(),
            }
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(refused.contains("cannot listen on"), "{refused}");
    assert_eq!(server.connect().get("/still").status, 200);
}

#[test]
fn many_concurrent_keep_alive_clients() {
    let server = TestServer::start(quick());
    let clients: Vec<_> = (0..32)
        .map(|t| {
            let mut c = server.connect();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let r = c.get(&format!("/c?t={t}&i={i}"));
                    assert_eq!(r.text(), format!("GET /c\nt={t}\ni={i}\nbody="));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}
