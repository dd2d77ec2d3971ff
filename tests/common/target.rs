//! Scrape targets served by the test itself on 127.0.0.1: a thread accepting connections
//! and answering each request as the test's closure says — a page of metrics, any bytes with
//! any content type, or nothing at all (the connection held open, never answered). Every
//! connection is answered then closed, so each scrape is one counted request.
//!
//! The thread stops, and held connections close, when the target is dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const ACCEPT_POLL: Duration = Duration::from_millis(10);
const READ_TIMEOUT: Duration = Duration::from_secs(2);

pub enum Reply {
    /// Text format 0.0.4.
    Metrics(String),
    /// A body with its Content-Type.
    Body(&'static str, Vec<u8>),
    /// Accept and never answer.
    Silence,
}

pub struct TestTarget {
    pub port: u16,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestTarget {
    /// Serves every request with `answer(n)`, `n` counting requests from 1.
    pub fn serve(answer: impl Fn(u64) -> Reply + Send + 'static) -> TestTarget {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let requests = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut held = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
                            if let Some(conn) = handle(conn, answer(n)) {
                                held.push(conn);
                            }
                        }
                        Err(_) => std::thread::sleep(ACCEPT_POLL),
                    }
                }
            })
        };
        TestTarget {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// A target answering every request with the same metrics page.
    pub fn metrics(page: String) -> TestTarget {
        TestTarget::serve(move |_| Reply::Metrics(page.clone()))
    }

    /// `host:port`, as a static target.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TestTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one connection; returns it when it must be held open unanswered. Errors are the
/// scraper's business (it may give up mid-body, as on a body size limit): ignored.
fn handle(mut conn: TcpStream, reply: Reply) -> Option<TcpStream> {
    let _ = conn.set_nonblocking(false);
    let (content_type, body) = match reply {
        Reply::Silence => return Some(conn),
        Reply::Metrics(page) => (
            "text/plain; version=0.0.4; charset=utf-8",
            page.into_bytes(),
        ),
        Reply::Body(content_type, body) => (content_type, body),
    };
    let _ = conn.set_read_timeout(Some(READ_TIMEOUT));
    let _ = conn.set_write_timeout(Some(READ_TIMEOUT));
    read_request_head(&mut conn);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
    None
}

/// Reads until the end of the request head (a GET has no body), or EOF, or the timeout.
fn read_request_head(conn: &mut TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
}
