//! Everything the router can ask of a shard, and every answer: one request enum, one response
//! enum. Reading this file tells you all the cores say to each other.
//!
//! Payloads are owned (they cross threads) and batched: one message per group of target
//! scrapes and shard (see `append_outbox`), one per query and shard, never one per sample. Each request carries an id that its
//! reply echoes, because replies travel back on their own channel.

use std::path::PathBuf;

use shards::block_compaction::BlockCompactionStats;
use shards::compact::CompactionStats;
use shards::head::{AppendBatch, AppendOutcome, HeadStats};
use shards::index::matcher::Matcher;
use shards::label_generation::LabelSources;
use shards::labels::Labels;
use shards::retention::RetentionStats;
use shards::string_list::StringList;

use crate::promql::error::QueryError;
use crate::promql::leaf::{LeafQuery, LeafResult};
use crate::promql::value::FPoint;

/// A request and the id its reply will carry.
pub struct Envelope {
    pub id: u64,
    pub request: ShardRequest,
}

/// A reply to the request with the same id.
pub struct Reply {
    pub id: u64,
    pub response: ShardResponse,
}

pub enum ShardRequest {
    /// Samples (and the new series they need) of one scrape, for this shard.
    Append(AppendBatch),
    /// The batches of several scrapes, in order, acknowledged together: one WAL write.
    AppendGroup(Vec<AppendBatch>),
    /// Label sets of the series matching every matcher with samples in `[mint, maxt]`.
    Series {
        matchers: Vec<Matcher>,
        mint: i64,
        maxt: i64,
    },
    /// Label names of the series matching every matcher (all series when none), in the
    /// sources (blocks, head) overlapping `[mint, maxt]`.
    LabelNames {
        matchers: Vec<Matcher>,
        mint: i64,
        maxt: i64,
    },
    /// Values of label `name` over the series matching every matcher, in the sources
    /// overlapping `[mint, maxt]`.
    LabelValues {
        name: String,
        matchers: Vec<Matcher>,
        mint: i64,
        maxt: i64,
    },
    /// Per matching series, its newest sample in `(at - lookback, at]` unless that sample is a
    /// staleness marker: what federation and an instant selector see.
    Latest {
        matchers: Vec<Matcher>,
        at: i64,
        lookback: i64,
    },
    /// Every sample with `mint <= t <= maxt` of each matching series, staleness markers
    /// included: what range and instant selectors of the PromQL engine read.
    Select {
        matchers: Vec<Matcher>,
        mint: i64,
        maxt: i64,
    },
    /// A planned PromQL leaf evaluated over this shard's series (see `promql::plan`).
    EvalLeaf(Box<LeafQuery>),
    /// Counters and gauges for `/metrics`.
    Stats,
    /// The head's cardinality for `/api/v1/status/tsdb`.
    TsdbStatus,
    /// Admin: mark `[mint, maxt]` of the series matching any selector deleted (tombstones in
    /// the head, logged to the WAL, and in every block).
    DeleteSeries {
        selectors: Vec<Vec<Matcher>>,
        mint: i64,
        maxt: i64,
    },
    /// Admin: rewrite the blocks that have tombstones without their deleted samples.
    CleanTombstones,
    /// Admin: hard-link every block into `dir`, plus the head's samples up to `at` as a
    /// block when `with_head`; one `at` for every shard, so they describe one moment.
    Snapshot {
        dir: PathBuf,
        with_head: bool,
        at: i64,
    },
}

pub enum ShardResponse {
    /// `Err` holds the storage error's text: the batch was not acknowledged.
    Appended(Result<AppendOutcome, String>),
    /// One outcome per batch of an `AppendGroup`, in its order; `Err`: none was acknowledged.
    AppendedGroup(Result<Vec<AppendOutcome>, String>),
    /// `Err`: a block's index could not be read (as for the two below).
    Series(Result<Vec<Labels>, String>),
    LabelNames(Result<LabelList, String>),
    LabelValues(Result<LabelList, String>),
    /// `Err`: a chunk could not be read.
    Latest(Result<Vec<LatestSample>, String>),
    /// `Err`: a chunk could not be read.
    Select(Result<Vec<SelectedSeries>, String>),
    /// The leaf's series in label order, or the query's error (limits, storage, evaluation).
    EvalLeaf(Result<LeafResult, QueryError>),
    Stats(Box<ShardStats>),
    TsdbStatus(Box<TsdbStatus>),
    /// The outcome of an admin request; `Err` holds the storage error's text.
    Admin(Result<(), String>),
}

/// A label-name or label-value answer of one shard, and the sources it was read from: the
/// router may give the same list again while the shard's published sources for the same
/// range are equal (see `shards::label_generation`).
#[derive(Debug, Clone)]
pub struct LabelList {
    pub list: StringList,
    pub sources: LabelSources,
}

/// A shard's head as `/api/v1/status/tsdb` needs it: every label pair with its number of
/// series (the router merges shards and picks the top entries), and the head's extent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TsdbStatus {
    pub num_series: u64,
    /// Chunks in the head: memory-mapped ones plus each series' open chunk.
    pub chunk_count: u64,
    /// Oldest and newest sample in the head; `None` while it is empty.
    pub time_range: Option<(i64, i64)>,
    /// `(label name, label value, series)` for every pair.
    pub pairs: Vec<(String, String, u64)>,
}

/// One series' newest sample.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// One series' samples in a selected range, oldest first, staleness markers included. Series
/// without a sample in the range are never sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedSeries {
    pub labels: Labels,
    pub points: Vec<FPoint>,
    /// Each point's start timestamp (ms, 0 = none), aligned with `points`, or empty when
    /// none has one (always so unless the shard stores start timestamps).
    pub start_timestamps: Vec<i64>,
}

/// A shard's state for self-monitoring.
#[derive(Debug, Clone, Default)]
pub struct ShardStats {
    pub head: HeadStats,
    pub series: u64,
    /// Timestamps of the oldest and newest sample in the head; `None` while it is empty.
    pub time_range: Option<(i64, i64)>,
    pub heap_bytes: u64,
    pub wal_segment: u64,
    /// Whether the WAL is refusing writes after a failure.
    pub wal_failed: bool,
    /// Appends refused because of a storage error.
    pub append_errors: u64,
    /// Batches taken from the queue per WAL write (group commit), summed, and the writes.
    pub batches_appended: u64,
    pub wal_writes: u64,
    /// Blocks open, and their bytes on disk.
    pub blocks: u64,
    pub block_bytes: u64,
    pub compaction: CompactionStats,
    pub block_compaction: BlockCompactionStats,
    pub retention: RetentionStats,
}
