//! The HTTP surface of the server: Prometheus's HTTP API, `/federate`, `/metrics` and the
//! management endpoints. It maps requests to the router, the scrape manager and the
//! configuration, and maps their errors once to Prometheus's error types (`json::ErrorType`).
//! Parameters are parsed as Prometheus parses them (`params`), answers written as it writes
//! them (`json`, `targets`, `status`). It never touches storage or sockets itself.

pub mod admin;
pub mod cors;
pub mod expression;
pub mod federate;
pub mod front;
pub mod handler;
pub mod http_metrics;
pub mod json;
pub mod lifecycle;
pub mod params;
pub mod parse_error;
pub mod parse_query;
pub mod query;
pub mod query_result;
pub mod query_timings;
pub mod rfc3339;
pub mod route_prefix;
pub mod rules;
pub mod runtime;
pub mod self_metrics;
pub mod status;
pub mod targets;
pub mod tsdb_status;
pub mod v1;
