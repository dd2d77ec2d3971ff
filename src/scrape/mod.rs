//! Scraping: targets from the configuration and discovery, one loop per target fetching its
//! exposition, and the turning of a response into per-shard batches. This module owns the
//! scrape path on the router executor; it never touches storage directly — samples leave it
//! in per-shard batches through the router.

pub mod append;
pub mod auth;
pub mod cache;
pub mod client;
pub mod file_discovery;
pub mod manager;
pub mod metadata;
pub mod metadata_lines;
pub mod metrics;
pub mod parser;
pub mod scrape_buffers;
pub mod scrape_loop;
pub mod series_hash;
pub mod target_status;
