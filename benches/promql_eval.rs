//! The whole evaluator (parse, prefetch, evaluation, result finishing) over an in-memory
//! source, without shards or HTTP: 10 000 counter series (`x`, 10 jobs × 1 000 instances)
//! and a 12-bucket classic histogram per job and instance group (`h_bucket`), one hour of
//! samples every 15 s. Queries are range queries over the last half hour at a 60 s step (the
//! first half feeds the windows): `sum by (job) (rate(x[5m]))`, `histogram_quantile` over the
//! rate of the buckets, `topk`, and a regex selector touching 10 % of the series.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use promcore::promql::value::FPoint;
use promcore::promql::{Engine, EngineOptions, MemorySource, QueryParams, RawSeries};
use shards::labels::Labels;

const SCRAPE_MS: i64 = 15_000;
const HOUR_MS: i64 = 3_600_000;
const JOBS: usize = 10;
const INSTANCES: usize = 1_000;
const BUCKETS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];

fn counter(seed: usize, scale: f64) -> Vec<FPoint> {
    let mut v = 0.0;
    (0..=HOUR_MS / SCRAPE_MS)
        .map(|i| {
            v += scale * (1.0 + ((seed + i as usize) % 7) as f64);
            FPoint {
                t: i * SCRAPE_MS,
                f: v,
            }
        })
        .collect()
}

fn source() -> MemorySource {
    let mut series = Vec::new();
    for j in 0..JOBS {
        for i in 0..INSTANCES {
            let (job, inst) = (format!("job{j}"), format!("inst{i}"));
            series.push(RawSeries {
                labels: Labels::from_pairs([("__name__", "x"), ("job", &job), ("instance", &inst)])
                    .expect("valid labels"),
                points: counter(j * INSTANCES + i, 1.0),
                start_timestamps: Vec::new(),
            });
        }
        // One histogram per job and group of 100 instances: 1 200 bucket series in all.
        for g in 0..INSTANCES / 100 {
            let (job, grp) = (format!("job{j}"), format!("g{g}"));
            for (k, le) in BUCKETS.iter().enumerate() {
                series.push(RawSeries {
                    labels: Labels::from_pairs([
                        ("__name__", "h_bucket"),
                        ("job", &job),
                        ("group", &grp),
                        ("le", le),
                    ])
                    .expect("valid labels"),
                    points: counter(g, (k + 1) as f64),
                    start_timestamps: Vec::new(),
                });
            }
        }
    }
    MemorySource::new(series)
}

fn bench(c: &mut Criterion) {
    let src = source();
    let engine = Engine::new(EngineOptions::default());
    let params = QueryParams::default();
    let queries = [
        ("sum_by_job_rate_5m", "sum by (job) (rate(x[5m]))"),
        (
            "histogram_quantile_p99",
            "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))",
        ),
        ("topk_10_rate", "topk(10, rate(x[5m]))"),
        ("regex_selector_10pct", "sum(x{instance=~\"inst1..\"})"),
    ];
    let mut group = c.benchmark_group("promql_eval_1h_step60s");
    group.sample_size(10);
    for (name, q) in queries {
        group.bench_function(name, |b| {
            b.iter(|| {
                let r = futures_lite::future::block_on(engine.range_query(
                    &src,
                    black_box(q),
                    HOUR_MS / 2,
                    HOUR_MS,
                    60_000,
                    &params,
                ));
                black_box(r.expect("the query evaluates"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
