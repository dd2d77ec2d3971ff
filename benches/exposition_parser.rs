//! The exposition parser on a generated node_exporter-like body (~2,000 series with HELP and
//! TYPE), in both formats: "cached" iterates the entries only, as a scrape whose series are
//! all in the scrape cache; "uncached" also decodes the labels of every sample, as a first
//! scrape. Reported per byte (MB/s) and per sample (samples/s).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "support/node_body.rs"]
mod node_body;

use node_body::body;
use promcore::scrape::parser::{recycle_label_buffer, Entry, Format, Parser};

fn cached(body: &[u8], format: Format) -> usize {
    let mut n = 0;
    for entry in Parser::new(body, format) {
        if let Ok(Entry::Sample { series, value, .. }) = entry {
            black_box((series, value));
            n += 1;
        }
    }
    n
}

fn uncached(
    body: &[u8],
    format: Format,
    out: &mut Vec<(
        std::borrow::Cow<'static, str>,
        std::borrow::Cow<'static, str>,
    )>,
) -> usize {
    let mut labels = recycle_label_buffer(std::mem::take(out));
    let mut n = 0;
    let mut p = Parser::new(body, format);
    while let Some(entry) = p.next() {
        if let Ok(Entry::Sample { series, .. }) = entry {
            p.labels(series, &mut labels).unwrap();
            black_box(&labels);
            n += 1;
        }
    }
    *out = recycle_label_buffer(labels);
    n
}

fn bench(c: &mut Criterion) {
    for (tag, format) in [
        ("text", Format::PrometheusText),
        ("openmetrics", Format::OpenMetrics),
    ] {
        let (body, samples) = body(format);
        assert_eq!(cached(body.as_bytes(), format), samples);
        println!(
            "{tag}: {} bytes, {samples} samples, {:.1} bytes/sample",
            body.len(),
            body.len() as f64 / samples as f64
        );
        let mut out = Vec::new();
        for (unit, throughput) in [
            ("bytes", Throughput::Bytes(body.len() as u64)),
            ("samples", Throughput::Elements(samples as u64)),
        ] {
            let mut g = c.benchmark_group(format!("exposition_parser/{tag}/{unit}"));
            g.throughput(throughput);
            // The floor: finding the lines alone, which every parse must do.
            g.bench_function("lines_only", |b| {
                b.iter(|| {
                    let body = black_box(body.as_bytes());
                    let (mut pos, mut lines) = (0, 0);
                    while let Some(n) = memchr::memchr(b'\n', &body[pos..]) {
                        pos += n + 1;
                        lines += 1;
                    }
                    lines
                })
            });
            g.bench_function("cached", |b| {
                b.iter(|| cached(black_box(body.as_bytes()), format))
            });
            g.bench_function("uncached", |b| {
                b.iter(|| uncached(black_box(body.as_bytes()), format, &mut out))
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
