//! promcore, a Prometheus-compatible monitoring server, thread-per-core on glommio.
//!
//! The server's parts, each owning one concern (see `../shared/DESIGN.md`): `config`
//! (prometheus.yml), `http` (the HTTP/1.1 server), `scrape` (targets, scrape loops, the
//! exposition parser, the scrape cache), `router` (the protocol to the storage shards and the
//! fan-out over them), `server` (the router executor and reloads), `front` (the HTTP
//! listeners of the other cores), `startup` (process lifecycle, executors, signals), `tls`
//! (the TLS client of scrapes and notifications), `transient_heap` (the global allocator
//! and its heap for short-lived bursts), `waiting_replies` (requests to another executor
//! waiting for their replies). Storage itself is the `shards` crate. The library
//! exists so that benchmarks and end-to-end tests reach the same code the binary runs.

pub mod active_queries;
pub mod api;
pub mod config;
pub mod flags;
pub mod front;
pub mod http;
pub mod log;
pub mod metrics;
pub mod notifier;
pub mod promql;
pub mod promqltest;
pub mod router;
pub mod rules;
pub mod scrape;
pub mod server;
pub mod startup;
pub mod tls;
pub mod transient_heap;
pub mod tsdb_tool;
pub mod waiting_replies;
