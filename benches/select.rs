//! Selecting series by matchers over 1,000,000 series in one head, with 1, 2 and 3
//! matchers of the kinds dashboards send.

// The server's allocator, so that the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion};
use shards::head::{AppendBatch, BatchSample, Head, HeadOptions, SeriesKey};
use shards::index::matcher::{MatchType, Matcher};
use shards::labels::Labels;

const SERIES: usize = 1_000_000;

fn build(dir: &std::path::Path) -> Head {
    let (mut head, _) = Head::open(dir, HeadOptions::default()).unwrap();
    for chunk in (0..SERIES).collect::<Vec<_>>().chunks(50_000) {
        let b = AppendBatch {
            new_series: chunk
                .iter()
                .map(|&i| {
                    Labels::from_pairs([
                        ("__name__", format!("metric_{}", i % 100)),
                        ("instance", format!("host-{}:9100", i / 100 % 10_000)),
                        ("job", format!("job_{}", i % 10)),
                        (
                            "mode",
                            ["user", "system", "idle", "iowait"][i / 100 % 4].to_string(),
                        ),
                        ("cpu", (i / 1000 % 16).to_string()),
                    ])
                    .unwrap()
                })
                .collect(),
            samples: (0..chunk.len())
                .map(|k| BatchSample {
                    series: SeriesKey::New(k as u32),
                    t: 0,
                    v: 1.0,
                })
                .collect(),
            start_timestamps: Vec::new(),
        };
        head.append_unlogged(&b).unwrap();
    }
    head
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let head = build(dir.path());
    let m = |k, n: &str, v: &str| Matcher::new(k, n, v).unwrap();
    let cases = [
        (
            "1_matcher",
            vec![m(MatchType::Equal, "__name__", "metric_7")],
        ),
        (
            "2_matchers",
            vec![
                m(MatchType::Equal, "__name__", "metric_7"),
                m(MatchType::Regex, "mode", "user|system"),
            ],
        ),
        (
            "3_matchers",
            vec![
                m(MatchType::Equal, "__name__", "metric_7"),
                m(MatchType::Regex, "mode", "user|system"),
                m(MatchType::NotEqual, "cpu", "3"),
            ],
        ),
        (
            "broad_regex",
            vec![
                m(MatchType::Regex, "job", "job_[1-3]"),
                m(MatchType::NotEqual, "mode", "idle"),
            ],
        ),
    ];
    let mut g = c.benchmark_group("select_1M");
    for (name, ms) in &cases {
        println!("select {name}: {} series", head.select(ms).len());
        g.bench_function(*name, |b| b.iter(|| std::hint::black_box(head.select(ms))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
