//! promcore's own metrics for `/metrics`: the text exposition writer, the cells and summaries
//! that hold router-local metric state, and the `process_*` metrics read from `/proc`. Names
//! are Prometheus's own where the meaning is the same (`process_cpu_seconds_total`,
//! `prometheus_target_interval_length_seconds`, ...) so existing dashboards work, next to
//! promcore's per-shard series.
//!
//! This module formats and holds router-local state only. It never reaches into shards: shard
//! statistics arrive as plain structs and the `/metrics` handler writes them with the
//! [`MetricsWriter`]. There is no global registry and no static: a metric lives in the struct
//! that owns the work it measures, and the handler writes what it is given.

mod cells;
mod exposition;
mod process;
mod summary;

pub use self::{
    cells::{Counter, Gauge},
    exposition::{push_float, Kind, MetricsWriter, CONTENT_TYPE},
    process::{ProcError, ProcessStats},
    summary::{Summary, TargetIntervalLength, TARGET_INTERVAL_LENGTH, TARGET_INTERVAL_QUANTILES},
};
