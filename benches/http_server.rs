//! The HTTP server's cost per request:
//! - `parse_request`: a Grafana-shaped `query_range` POST parsed into a `Request`, no socket;
//! - `keepalive_roundtrip`: one request, one response, over a kept-alive loopback connection
//!   to the server on its own glommio executor (latency-bound: both sides wait in turn);
//! - `pipelined_16`: sixteen requests per write on one connection (the server's batching).
//!
//! Throughput is requests per second.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use promcore::http::{Handler, Request, Response, Server, ServerConfig, StatusCode};

const QUERY_BODY: &str = "query=sum%20by%20(job)%20(rate(http_requests_total%7Benv%3D%22prod%22%7D%5B5m%5D))&start=1700000000&end=1700003600&step=15";

struct Api;

impl Handler for Api {
    async fn handle(&self, req: Request) -> Response {
        let body = format!(
            "{{\"status\":\"success\",\"data\":{{\"resultType\":\"vector\",\"result\":[]}},\"q\":{}}}",
            req.param("query").map_or(0, str::len)
        );
        Response::json(StatusCode::OK, body.into_bytes())
    }
}

fn request() -> Vec<u8> {
    format!(
        "POST /api/v1/query_range HTTP/1.1\r\nHost: localhost:9090\r\nUser-Agent: Grafana/11.0.0\r\n\
         Accept: application/json, text/plain, */*\r\nAccept-Encoding: gzip\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{QUERY_BODY}",
        QUERY_BODY.len()
    )
    .into_bytes()
}

fn start_server() -> (SocketAddr, Arc<AtomicBool>, glommio::ExecutorJoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tx, rx) = mpsc::channel();
    let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("http-bench")
        .spawn(move || async move {
            let server =
                Server::bind("127.0.0.1:0".parse().unwrap(), ServerConfig::default(), Api).unwrap();
            tx.send(server.local_addr().unwrap()).unwrap();
            let stop = async move {
                while !flag.load(Ordering::Relaxed) {
                    glommio::timer::sleep(Duration::from_millis(20)).await;
                }
            };
            server.serve_until(stop).await.unwrap();
        })
        .unwrap();
    (rx.recv().unwrap(), stop, handle)
}

/// Reads `n` responses, each ending its head with a Content-Length the test server always sets.
fn read_responses(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) {
    let mut done = 0;
    let mut chunk = [0u8; 64 * 1024];
    while done < n {
        let mut slots = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut slots);
        if let Ok(httparse::Status::Complete(head)) = resp.parse(buf) {
            let len: usize = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .unwrap();
            if buf.len() >= head + len {
                buf.drain(..head + len);
                done += 1;
                continue;
            }
        }
        let got = stream.read(&mut chunk).unwrap();
        assert!(got > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..got]);
    }
}

fn bench_http(c: &mut Criterion) {
    let mut g = c.benchmark_group("http_server");
    let req = request();

    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_request", |b| {
        b.iter(|| Request::from_bytes(std::hint::black_box(&req)).unwrap())
    });

    let (addr, stop, handle) = start_server();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();

    g.bench_function("keepalive_roundtrip", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                stream.write_all(&req).unwrap();
                read_responses(&mut stream, &mut buf, 1);
            }
            t.elapsed()
        })
    });

    let batch: Vec<u8> = req.repeat(16);
    g.throughput(Throughput::Elements(16));
    g.bench_function("pipelined_16", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                stream.write_all(&batch).unwrap();
                read_responses(&mut stream, &mut buf, 16);
            }
            t.elapsed()
        })
    });
    g.finish();

    drop(stream);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

criterion_group!(benches, bench_http);
criterion_main!(benches);
