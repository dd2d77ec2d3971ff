//! The HTTP listener on every core: a connection made from core 1 is served by core 1's
//! front, which answers small label requests from the shards' published tables and forwards
//! the rest to the router (core 0). Clients pinned to each core send the same raw requests:
//! the answers must be byte-for-byte the same (the `Date` field aside), and the front's
//! counter must show that every small request from core 1 was answered there (it would not
//! if connections were not steered to the client's core, or the local path were gone), and
//! the HTTP metrics must count those answers. Needs two cores; on one it only says so.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::exposition;
use common::{wait_until, Reply, Server, TestTarget, PATIENCE};

const PAGE: &str = "fixed_metric{colour=\"red\"} 1\nfixed_metric{colour=\"blue\"} 2\n";

/// Answered by core 1's front itself.
const LOCAL: &[&str] = &[
    "GET /api/v1/labels HTTP/1.1\r\n\r\n",
    "GET /api/v1/label/colour/values HTTP/1.1\r\n\r\n",
    "GET /api/v1/labels?limit=2 HTTP/1.1\r\nOrigin: http://grafana\r\n\r\n",
    "GET /api/v1/label/job/values?start=0&end=4000000000 HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
    "POST /api/v1/labels HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nlimit=1",
    "GET /-/healthy HTTP/1.1\r\n\r\n",
    "HEAD /-/healthy HTTP/1.1\r\n\r\n",
];

/// Forwarded to the router.
const FORWARDED: &[&str] = &[
    "GET /api/v1/series?match[]=fixed_metric HTTP/1.1\r\n\r\n",
    "GET /api/v1/labels?match[]=fixed_metric HTTP/1.1\r\n\r\n",
    "GET /api/v1/label/colour/values?match[]=fixed_metric HTTP/1.1\r\n\r\n",
    "GET /api/v1/labels?start=yesterday HTTP/1.1\r\n\r\n",
    "POST /api/v1/label/colour/values HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    "OPTIONS /api/v1/labels HTTP/1.1\r\nOrigin: http://grafana\r\n\r\n",
    "GET /-/ready HTTP/1.1\r\n\r\n",
    "GET /nowhere HTTP/1.1\r\n\r\n",
];

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f` on a thread pinned to `cpu`: its connections' SYNs are processed there.
fn on_core<T: Send + 'static>(cpu: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            assert_eq!(rc, 0, "cannot pin the client to core {cpu}");
        }
        f()
    })
    .join()
    .unwrap()
}

/// One request on a connection of its own (`Host` and `Connection: close` added); the whole
/// answer with its `Date` field removed.
fn exchange(port: u16, request: &'static str) -> Vec<u8> {
    let (head, body) = request.split_once("\r\n\r\n").unwrap();
    let raw = format!("{head}\r\nHost: x\r\nConnection: close\r\n\r\n{body}");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)
        .expect("no complete answer in time");
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no head in the answer");
    let (head, rest) = answer.split_at(end);
    let head: Vec<&[u8]> = head
        .split(|&b| b == b'\n')
        .filter(|l| !l.to_ascii_lowercase().starts_with(b"date:"))
        .collect();
    let mut out = head.join(&b'\n');
    out.extend_from_slice(rest);
    out
}

/// A sample of `/metrics`, asked from core 0.
fn metric(server: &Server, name: &str, pairs: &[(&str, &str)]) -> f64 {
    let port = server.port;
    let text = on_core(0, move || {
        common::http::get(port, "/metrics").unwrap().text()
    });
    let samples = exposition::parse(&text).unwrap();
    exposition::one(&samples, name, pairs).map_or(0.0, |s| s.value)
}

/// Core 1's front: requests it answered, and those it forwarded.
fn front_counts(server: &Server) -> (f64, f64) {
    let name = "promcore_http_front_requests_total";
    let locally = metric(server, name, &[("answered", "locally"), ("core", "1")]);
    let forwarded = metric(server, name, &[("answered", "forwarded"), ("core", "1")]);
    (locally, forwarded)
}

#[test]
fn every_core_gives_the_routers_answers_and_small_ones_stay_on_the_clients_core() {
    if cores() < 2 {
        eprintln!("one core: no front listeners to test");
        return;
    }
    let target = TestTarget::serve(|_| Reply::Metrics(PAGE.to_string()));
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fixed\n    static_configs:\n      - targets: ['{}']\n",
        target.address()
    );
    let server = Server::start(dir.path(), port, &config);
    let scraped = wait_until(PATIENCE, || {
        let values = server.api("/api/v1/label/colour/values");
        (values.as_array()?.len() == 2).then_some(())
    });
    assert!(scraped.is_some(), "the target was not scraped");

    let labels = [("code", "200"), ("handler", "/api/v1/labels")];
    let labels_before = metric(&server, "prometheus_http_requests_total", &labels);
    for (i, request) in LOCAL.iter().chain(FORWARDED).enumerate() {
        let is_local = i < LOCAL.len();
        let before = front_counts(&server);
        let router = on_core(0, move || exchange(port, request));
        let after_router = front_counts(&server);
        let front = on_core(1, move || exchange(port, request));
        let after_front = front_counts(&server);
        assert_eq!(
            String::from_utf8_lossy(&router),
            String::from_utf8_lossy(&front),
            "{request:?}"
        );
        assert!(router.starts_with(b"HTTP/1.1 "), "{request:?}");
        // Each count is read from core 0, so by the router alone.
        assert_eq!(after_router, before, "core 0's {request:?} went to a front");
        let expected = if is_local {
            (before.0 + 1.0, before.1)
        } else {
            (before.0, before.1 + 1.0)
        };
        assert_eq!(
            after_front, expected,
            "core 1's {request:?}: (answered by core 1, forwarded by core 1)"
        );
    }
    // Four successful `labels` requests from each core (three answered by core 1's front),
    // counted wherever they were answered.
    let labels_after = metric(&server, "prometheus_http_requests_total", &labels);
    assert_eq!(labels_after - labels_before, 8.0);
    drop(target);
}
