//! The per-scrape cost of a simulated target with 1,000 series: advancing its values and
//! writing them into the body's slots, and gzipping the body for scrapers that ask.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use loadgen::body::{Format, Layout, ShapeConfig, Target};
use loadgen::gzip::Gzip;

fn scrape(c: &mut Criterion) {
    let layout = Layout::new(ShapeConfig {
        series: 1000,
        labels: 2,
        label_values: 4,
    })
    .unwrap();
    let mut target = Target::new(layout, 1, 60.0);
    let mut g = c.benchmark_group("scrape_1000_series");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("advance_and_write_text", |b| {
        b.iter(|| {
            target.advance(10.0);
            black_box(target.body(Format::Text).len())
        })
    });
    g.bench_function("advance_and_write_openmetrics", |b| {
        b.iter(|| {
            target.advance(10.0);
            black_box(target.body(Format::OpenMetrics).len())
        })
    });
    let mut gzip = Gzip::default();
    let mut out = Vec::new();
    g.bench_function("advance_write_and_gzip_text", |b| {
        b.iter(|| {
            target.advance(10.0);
            out.clear();
            gzip.compress(target.body(Format::Text), &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, scrape);
criterion_main!(benches);
