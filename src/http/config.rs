//! The HTTP server's limits and timeouts: how many connections, how large a request, how long
//! a client may take. Plain data with Prometheus-like defaults; it never reads flags itself.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Connections served at once (`--web.max-connections`, default 512, as Prometheus). At
    /// the cap the server stops accepting, so further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Request line plus header fields. Longer: 414 if the request line alone does not fit,
    /// else 431. Go allows 1 MiB; no client of this server needs more than 64 KiB.
    pub max_head_bytes: usize,
    /// Request body after de-chunking. Larger: 413.
    pub max_body_bytes: usize,
    /// From a request's first byte to the end of its head; against slowloris clients (408).
    pub header_timeout: Duration,
    /// From a request's first byte to the end of its body (`--web.read-timeout`, 5m).
    pub read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request; closed silently after.
    pub idle_timeout: Duration,
    /// How long one write may make no progress before the connection is dropped (a client
    /// that stopped reading).
    pub write_timeout: Duration,
    /// After the last response of a connection, how long to read and drop what the client
    /// still sends, so that closing does not reset the connection before it read the answer.
    pub linger: Duration,
    /// On shutdown, how long requests being handled get to finish.
    pub drain_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 512,
            max_head_bytes: 64 * 1024,
            max_body_bytes: 32 * 1024 * 1024,
            header_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(5 * 60),
            idle_timeout: Duration::from_secs(5 * 60),
            write_timeout: Duration::from_secs(5 * 60),
            linger: Duration::from_millis(500),
            drain_timeout: Duration::from_secs(10),
        }
    }
}
