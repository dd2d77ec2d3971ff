//! The two PromQL kernels that run most per query: `extrapolated_rate` (every `rate`,
//! `increase`) over windows of a 15 s scrape interval (5m = 20 points, 1h = 240 points,
//! with a counter reset), and `bucket_quantile` (every `histogram_quantile`) over a
//! Prometheus-default 12-bucket and a 40-bucket histogram, its buckets in the order the
//! engine gathers them (by `le` text, not by value). Reported per point / per bucket.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use promcore::promql::functions::histogram::{bucket_quantile, Bucket};
use promcore::promql::functions::rate::extrapolated_rate;
use promcore::promql::value::FPoint;

const SCRAPE_MS: i64 = 15_000;

/// A counter scraped every 15 s (with a little jitter), reset once in the middle.
fn counter_window(points: usize) -> Vec<FPoint> {
    let mut v = 1_000.0;
    (0..points)
        .map(|i| {
            v = if i == points / 2 {
                3.0
            } else {
                v + 7.0 + (i % 5) as f64
            };
            FPoint {
                t: i as i64 * SCRAPE_MS + (i as i64 * 37) % 200,
                f: v,
            }
        })
        .collect()
}

fn rate(c: &mut Criterion) {
    let mut group = c.benchmark_group("extrapolated_rate");
    for (name, points) in [("5m", 20usize), ("1h", 240)] {
        let window = counter_window(points);
        let range_end = points as i64 * SCRAPE_MS;
        let range_start = 0 - SCRAPE_MS / 3;
        group.throughput(Throughput::Elements(points as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                extrapolated_rate(
                    black_box(&window),
                    &[],
                    black_box(range_start),
                    black_box(range_end),
                    true,
                    true,
                )
            })
        });
    }
    group.finish();
}

/// Cumulative buckets with these bounds (+Inf last), sorted by their `le` text as label
/// sets are, which is not numeric order.
fn histogram(bounds: &[f64]) -> Vec<Bucket> {
    let mut count = 0.0;
    let mut buckets: Vec<(String, Bucket)> = bounds
        .iter()
        .chain(std::iter::once(&f64::INFINITY))
        .enumerate()
        .map(|(i, &upper_bound)| {
            count += 3.0 + (i % 7) as f64;
            (format!("{upper_bound}"), Bucket { upper_bound, count })
        })
        .collect();
    buckets.sort_by(|a, b| a.0.cmp(&b.0));
    buckets.into_iter().map(|(_, b)| b).collect()
}

fn quantile(c: &mut Criterion) {
    let default = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let wide: Vec<f64> = (0..39).map(|i| 0.001 * 1.5f64.powi(i)).collect();
    let mut group = c.benchmark_group("bucket_quantile");
    for (name, bounds) in [("12_buckets", &default[..]), ("40_buckets", &wide[..])] {
        let buckets = histogram(bounds);
        group.throughput(Throughput::Elements(buckets.len() as u64));
        // The kernel sorts in place, so every iteration gets a fresh copy (not timed).
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || buckets.clone(),
                |buckets| bucket_quantile(black_box(0.99), buckets),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, rate, quantile);
criterion_main!(benches);
