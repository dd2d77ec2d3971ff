//! Scraping: turning a target's HTTP response into samples. This module owns the pieces of
//! the scrape path that live on the router executor; it never touches storage directly —
//! samples leave it in per-shard batches.

pub mod client;
pub mod parser;
