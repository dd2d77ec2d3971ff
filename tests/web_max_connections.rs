//! `--web.max-connections`: at the cap the server stops accepting, so a further client waits
//! (in the kernel's backlog) until a served connection closes — Prometheus's LimitListener
//! behaviour — and is then served. Real sockets; no timing decides the outcome: the held-back
//! client's request is sent before a served client's request, and must still be unanswered
//! when that one's answer has arrived; once a served connection closes it is answered.
//! `E2E_SERVER_BIN=/usr/bin/prometheus` runs the same test against Prometheus.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{free_port, Binary, Server, PATIENCE};

const REQUEST: &[u8] = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads one response (head and a `Content-Length` body) from a kept-alive connection,
/// bounded by the harness's patience.
fn read_response(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).expect("no answer in time");
        assert!(n > 0, "connection closed before an answer");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + length {
                return text;
            }
        }
    }
}

fn has_pending_bytes(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let pending = matches!(s.peek(&mut b), Ok(n) if n > 0);
    s.set_nonblocking(false).unwrap();
    pending
}

#[test]
fn clients_beyond_the_cap_wait_for_a_free_slot() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
    )
    .unwrap();
    let port = free_port();
    let mut server = Server::spawn(
        &Binary::under_test(),
        &config,
        &dir.path().join("data"),
        port,
        &["--web.max-connections=2"],
    );
    server.wait_ready();

    // Two served, kept-alive connections fill the cap. Whatever connection the readiness
    // probe used is closed; until the server sees that, `a` may wait: wait for its answer.
    let mut a = TcpStream::connect(("127.0.0.1", port)).unwrap();
    a.write_all(REQUEST).unwrap();
    assert!(read_response(&mut a).starts_with("HTTP/1.1 200"));
    let mut b = TcpStream::connect(("127.0.0.1", port)).unwrap();
    b.write_all(REQUEST).unwrap();
    assert!(read_response(&mut b).starts_with("HTTP/1.1 200"));

    // The third connects (the kernel's backlog) and asks first ...
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(REQUEST).unwrap();
    // ... but the served `b` is answered, and `c` is not.
    b.write_all(REQUEST).unwrap();
    assert!(read_response(&mut b).starts_with("HTTP/1.1 200"));
    assert!(
        !has_pending_bytes(&c),
        "a connection beyond --web.max-connections=2 was served"
    );

    // A slot frees up: `c` is served.
    drop(a);
    assert!(read_response(&mut c).starts_with("HTTP/1.1 200"));
    // `b` still works: the cap counts connections, not requests.
    b.write_all(REQUEST).unwrap();
    assert!(read_response(&mut b).starts_with("HTTP/1.1 200"));
}
