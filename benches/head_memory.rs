//! Head memory per active series at 1,000,000 series (not a timing: a size). Each series
//! has 6 labels like a node_exporter series and 60 samples (a half-full open chunk, the
//! steady-state average); mmapped chunks are not counted, as they live in the page cache.
//! Prints the head's own accounting and the process RSS growth, both per series.
//!
//!     cargo bench --bench head_memory

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

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; this is not a criterion bench
    }
    let dir = tempfile::tempdir().unwrap();
    let before = rss_bytes();
    let (mut head, _) = Head::open(dir.path(), HeadOptions::default()).unwrap();
    let mut refs = Vec::with_capacity(SERIES);
    for chunk in (0..SERIES).collect::<Vec<_>>().chunks(100_000) {
        let b = AppendBatch {
            new_series: chunk
                .iter()
                .map(|&i| {
                    Labels::from_pairs([
                        ("__name__", format!("node_metric_{}", i % 500)),
                        (
                            "instance",
                            format!("10.0.{}.{}:9100", i / 250_000, i / 1000 % 250),
                        ),
                        ("job", "node".to_string()),
                        ("cpu", (i % 32).to_string()),
                        (
                            "mode",
                            ["user", "system", "idle", "iowait", "irq", "steal"][i % 6].to_string(),
                        ),
                        ("env", "prod".to_string()),
                    ])
                    .unwrap()
                })
                .collect(),
            samples: vec![],
            start_timestamps: Vec::new(),
        };
        refs.extend(head.append_unlogged(&b).unwrap().series_refs);
    }
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
    let rss = rss_bytes().saturating_sub(before);
    println!(
        "head_memory: {} series, {} samples each",
        head.num_series(),
        SAMPLES
    );
    println!(
        "head_memory: accounted heap {:.0} bytes/series",
        head.heap_bytes() as f64 / SERIES as f64
    );
    let per = |b: usize| b as f64 / SERIES as f64;
    println!(
        "head_memory: of which symbols {:.0}, postings {:.0}, series structs {:.0} (size_of MemSeries {})",
        per(head.symbols().heap_bytes()),
        per(head.postings().heap_bytes()),
        per(head.num_series() * std::mem::size_of::<Option<shards::head::MemSeries>>()),
        std::mem::size_of::<Option<shards::head::MemSeries>>()
    );
    println!(
        "head_memory: RSS growth {:.0} bytes/series (includes allocator slack)",
        rss as f64 / SERIES as f64
    );
}
