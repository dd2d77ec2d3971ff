//! promcore's storage engine: everything one shard owns, in Prometheus's on-disk formats.
//!
//! A shard is owned by exactly one executor; nothing in this crate is shared between
//! threads or locked, except the signal a shard publishes for the router's label answers
//! (`label_generation`). It knows nothing of HTTP, scraping or PromQL syntax: it stores
//! series and samples, selects series by label matchers, and reads samples back.

pub mod backfill;
pub mod backup;
pub mod block;
pub mod block_compaction;
pub mod chunkenc;
pub mod chunks_head;
pub mod compact;
pub mod compaction_queue;
pub mod compaction_timings;
pub mod crash_point;
pub mod data_dir;
pub mod deletion;
pub mod encoding;
pub mod head;
pub mod import;
pub mod index;
pub mod label_generation;
pub mod labels;
pub mod querier;
pub mod retention;
pub mod shard;
pub mod string_list;
pub mod thin_bytes;
pub mod tombstones;
pub mod value;
pub mod wal;
