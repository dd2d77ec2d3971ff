//! Select + read over a block against over the head, with the same series and samples:
//! 20,000 series × 2 h at 15 s with jitter (9.6 M samples) appended to a head, and the same
//! head written into one 2 h block by `shards::compact::write_head_block` (head compaction's
//! writer). Each iteration runs `Querier::select` and decodes every selected series' samples
//! over the whole range through `Querier::samples`, once with the head alone and once with
//! the block next to an empty head, for three selectors: one series, a regex over 10 % of the
//! series, and every series of one metric (25 %). Prints the selected series and samples so
//! that both sides are seen to read the same data.

// The server's allocator, so that the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shards::block::Block;
use shards::head::{AppendBatch, BatchSample, Head, HeadOptions, SeriesKey};
use shards::index::matcher::{MatchType, Matcher};
use shards::labels::Labels;
use shards::querier::Querier;

const SERIES: usize = 20_000;
const STEPS: i64 = 480;
const INTERVAL: i64 = 15_000;
const RANGE: i64 = STEPS * INTERVAL;

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("metric_{}", i % 4)),
        ("instance", format!("host-{}:9100", i / 4)),
        ("job", format!("job_{}", i % 10)),
    ])
    .unwrap()
}

/// Counters for even metrics, 2-decimal gauges for odd ones, each scraped with a few ms
/// of jitter.
fn value(i: usize, step: i64) -> f64 {
    let k = (i as i64 * 31 + step * 17) % 97;
    if i.is_multiple_of(2) {
        (step * (i as i64 % 7 + 1) + k % 3) as f64
    } else {
        (2000 + k * 13 % 500) as f64 / 100.0
    }
}

fn build_head(dir: &std::path::Path) -> Head {
    let (mut head, _) = Head::open(dir, HeadOptions::default()).unwrap();
    let first = AppendBatch {
        new_series: (0..SERIES).map(labels).collect(),
        samples: (0..SERIES)
            .map(|i| BatchSample {
                series: SeriesKey::New(i as u32),
                t: 0,
                v: value(i, 0),
            })
            .collect(),
        start_timestamps: Vec::new(),
    };
    let refs = head.append_unlogged(&first).unwrap().series_refs;
    for step in 1..STEPS {
        let batch = AppendBatch {
            new_series: vec![],
            samples: refs
                .iter()
                .enumerate()
                .map(|(i, &r)| BatchSample {
                    series: SeriesKey::Ref(r),
                    t: step * INTERVAL + (i as i64 + step) % 7 - 3,
                    v: value(i, step),
                })
                .collect(),
            start_timestamps: Vec::new(),
        };
        head.append_unlogged(&batch).unwrap();
    }
    head
}

/// (series, samples) read by one select + full read.
fn select_and_read(q: &Querier<'_>, ms: &[Matcher]) -> (usize, usize) {
    let selected = q.select(ms).unwrap();
    let mut samples = 0;
    for s in &selected {
        samples += std::hint::black_box(q.samples(s).unwrap()).len();
    }
    (selected.len(), samples)
}

fn bench(c: &mut Criterion) {
    let head_dir = tempfile::tempdir().unwrap();
    let head = build_head(head_dir.path());
    let block_parent = tempfile::tempdir().unwrap();
    let meta = shards::compact::write_head_block(&head, block_parent.path(), -RANGE, RANGE)
        .unwrap()
        .unwrap();
    let blocks = [Block::open(&block_parent.path().join(&meta.ulid)).unwrap()];
    let empty_dir = tempfile::tempdir().unwrap();
    let (empty, _) = Head::open(empty_dir.path(), HeadOptions::default()).unwrap();
    let over_head = Querier::new(&head, &[], -RANGE, RANGE);
    let over_block = Querier::new(&empty, &blocks, -RANGE, RANGE);

    let m = |k, n: &str, v: &str| Matcher::new(k, n, v).unwrap();
    let cases = [
        (
            "one_series",
            vec![
                m(MatchType::Equal, "__name__", "metric_1"),
                m(MatchType::Equal, "instance", "host-777:9100"),
            ],
        ),
        ("regex_10pct", vec![m(MatchType::Regex, "job", "job_7")]),
        (
            "metric_25pct",
            vec![m(MatchType::Equal, "__name__", "metric_2")],
        ),
    ];
    for (name, ms) in &cases {
        let h = select_and_read(&over_head, ms);
        let b = select_and_read(&over_block, ms);
        println!("{name}: head {h:?}, block {b:?} (series, samples)");
        assert_eq!(h, b, "the head and the block must hold the same data");
        let mut g = c.benchmark_group(format!("select_read/{name}"));
        g.throughput(Throughput::Elements(h.1 as u64));
        g.sample_size(10);
        g.bench_function("head", |bch| bch.iter(|| select_and_read(&over_head, ms)));
        g.bench_function("block", |bch| bch.iter(|| select_and_read(&over_block, ms)));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
