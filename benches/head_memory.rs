//! Head memory per active series at 1,000,000 series (not a timing: a size). The series are
//! shaped like `loadgen serve`'s with its defaults (1,000 targets of 1,000 series: histogram
//! groups of 12 buckets plus sum and count, each group with its own `pod`, `handler` and
//! `method` from 8 values, plus `instance` and `job`) and get 60 samples each (a half-full
//! open chunk, the steady-state average); mmapped chunks are not counted, as they live in
//! the page cache. Prints the head's own accounting by part and the process RSS growth,
//! both per series.
//!
//!     cargo bench --bench head_memory
//!
//! `HEAD_MEMORY_SERIES=502500` sets another number of series (a shard's share of loadgen's
//! 1,005,000 on two shards). The times it prints (creating the series, appending the
//! samples) are one run's, for comparing builds back to back, not a benchmark.

// The server's allocator, so that the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use shards::head::{AppendBatch, BatchSample, Head, HeadOptions, SeriesKey};
use shards::labels::Labels;

const SERIES: usize = 1_000_000;
const SAMPLES: i64 = 60;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

const LE: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];
const HANDLERS: [&str; 8] = [
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/items",
    "/api/v1/search",
    "/api/v1/login",
    "/api/v1/cart",
    "/healthz",
    "/metrics",
];
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE",
];

/// Series `i` of 1,000 targets x 1,000 series, in groups of 14 (12 buckets, sum, count).
fn loadgen_like_labels(i: usize) -> Labels {
    let (target, j) = (i / 1000, i % 1000);
    let (group, k) = (j / 14, j % 14);
    let family = format!("loadgen_family_{}_seconds", group % 10);
    let (name, le) = match k {
        0..=11 => (format!("{family}_bucket"), LE[k]),
        12 => (format!("{family}_sum"), ""),
        _ => (format!("{family}_count"), ""),
    };
    Labels::from_pairs([
        ("__name__", name),
        ("handler", HANDLERS[group % 8].to_string()),
        ("method", METHODS[group / 8 % 8].to_string()),
        (
            "pod",
            format!(
                "{:08x}",
                (target * 1000 + group).wrapping_mul(2_654_435_761) as u32
            ),
        ),
        ("le", le.to_string()),
        (
            "instance",
            format!("127.0.{}.{}:9100", target / 250, target % 250),
        ),
        ("job", "loadgen".to_string()),
    ])
    .unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; this is not a criterion bench
    }
    let series: usize = std::env::var("HEAD_MEMORY_SERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SERIES);
    let dir = tempfile::tempdir().unwrap();
    let before = rss_bytes();
    let started = std::time::Instant::now();
    let (mut head, _) = Head::open(dir.path(), HeadOptions::default()).unwrap();
    let mut refs = Vec::with_capacity(series);
    for chunk in (0..series).collect::<Vec<_>>().chunks(100_000) {
        let b = AppendBatch {
            new_series: chunk.iter().map(|&i| loadgen_like_labels(i)).collect(),
            samples: vec![],
            start_timestamps: Vec::new(),
        };
        refs.extend(head.append_unlogged(&b).unwrap().series_refs);
    }
    let created = started.elapsed();
    let started = std::time::Instant::now();
    let mut batch = AppendBatch {
        new_series: vec![],
        samples: refs
            .iter()
            .map(|&r| BatchSample {
                series: SeriesKey::Ref(r),
                t: 0,
                v: 0.0,
            })
            .collect(),
        start_timestamps: Vec::new(),
    };
    let mut v = 0.0;
    for k in 0..SAMPLES {
        v += 3.0;
        for s in &mut batch.samples {
            s.t = 1_700_000_000_000 + k * 15_000;
            s.v = v;
        }
        head.append_unlogged(&batch).unwrap();
    }
    drop(batch);
    let appended = started.elapsed();
    let rss = rss_bytes().saturating_sub(before);
    println!(
        "head_memory: {} series, {} samples each",
        head.num_series(),
        SAMPLES
    );
    println!(
        "head_memory: accounted heap {:.0} bytes/series",
        head.heap_bytes() as f64 / series as f64
    );
    println!(
        "head_memory: created in {:.3} s, {} samples appended in {:.3} s",
        created.as_secs_f64(),
        SAMPLES as usize * series,
        appended.as_secs_f64()
    );
    let per = |b: usize| b as f64 / series as f64;
    let m = head.memory();
    for (part, bytes) in [
        ("series structs (slots)", m.series_slots),
        ("label sets", m.label_sets),
        ("open chunks", m.open_chunks),
        ("mmapped chunk lists", m.mmapped_lists),
        ("series hash index", m.series_index),
        ("symbols", m.symbols),
        ("postings", m.postings),
    ] {
        println!(
            "head_memory:   {part:<24} {:>6.1} bytes/series {:>12} bytes",
            per(bytes),
            bytes
        );
    }
    println!(
        "head_memory: size_of Option<MemSeries> {}",
        std::mem::size_of::<Option<shards::head::MemSeries>>()
    );
    println!(
        "head_memory: RSS growth {:.0} bytes/series (includes allocator slack)",
        rss as f64 / series as f64
    );
}
