//! Helpers shared by the shards crate's integration tests: a minimal HTTP/1.1 client for
//! talking to a real Prometheus on loopback, free ports, and a bounded wait.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` from 127.0.0.1:`port`; returns (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes a query-string value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Polls `f` until it returns Some, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Runs an async test body on a fresh glommio executor.
pub fn run_local<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// Samples by series, values as bits so that NaNs compare equal.
pub type Samples = std::collections::BTreeMap<String, Vec<(i64, u64)>>;

/// A shard whose head cuts `range`-long blocks and never merges them further (merging is
/// block_compaction.rs's subject unless the caller raises `max_block_duration`), with WAL
/// segments of `segment_size` and no snapshot at close, so that restarts replay the WAL.
pub fn small_block_options(range: i64, segment_size: u64) -> shards::shard::ShardOptions {
    let mut o = shards::shard::ShardOptions {
        head: shards::head::HeadOptions {
            chunk_range: range,
            ..Default::default()
        },
        wal: shards::wal::WalOptions { segment_size },
        snapshot_on_shutdown: false,
        ..Default::default()
    };
    o.compaction.max_block_duration = range;
    o
}

/// Every sample of the series of `job`, through the merged querier (head and blocks),
/// keyed by the labels' text form.
pub fn read_job(shard: &shards::shard::Shard, job: &str) -> Samples {
    let q = shard.querier(i64::MIN, i64::MAX);
    let all = shards::index::Matcher::new(shards::index::MatchType::Equal, "job", job).unwrap();
    let mut got = Samples::new();
    for s in q.select(&[all]).unwrap() {
        let pts = q.samples(&s).unwrap();
        got.insert(
            s.labels.to_string(),
            pts.iter().map(|&(t, v)| (t, v.to_bits())).collect(),
        );
    }
    got
}

/// A series' key in the `Samples` maps of the compaction tests: its labels written out
/// unescaped as `{a="1", b="2"}`.
pub fn key(l: &shards::labels::Labels) -> String {
    format!(
        "{{{}}}",
        l.iter()
            .map(|l| format!("{}=\"{}\"", l.name, l.value))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
