//! The end-to-end harness shared by the test files in tests/: real processes (the server
//! under test, Debian's exporters, Prometheus as a reference reader) on 127.0.0.1 ports,
//! targets served by the test itself, a minimal HTTP client and text-format reader, and
//! bounded waits. Every process started here is killed by a guard when it is dropped, so a
//! failing test leaves nothing running; a failing test prints the tail of each log.
//!
//! The harness must never talk to anything but loopback, never wait without a deadline, and
//! never share code with the server: it checks the server from the outside, as Prometheus
//! users and tools would.

#![allow(dead_code, unused_imports)]

pub mod backfill;
pub mod exporters;
pub mod exposition;
pub mod http;
pub mod pki;
pub mod process;
pub mod server;
pub mod target;
pub mod wait;

pub use exporters::Exporter;
pub use exposition::Sample;
pub use server::{Binary, Server};
pub use target::{Reply, TestTarget};
pub use wait::{wait_until, PATIENCE};

use std::net::TcpListener;

/// A port that was free on 127.0.0.1 a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// Percent-encodes a query-string value (selectors carry `{`, `"`, `=`, `~`).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
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
