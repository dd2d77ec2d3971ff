//! The router's cost per scraped sample: parse, scrape-cache lookup and batching into
//! per-shard batches, on the node_exporter-like body of the parser bench. "cached" is every
//! scrape after the first (all series known, refs assigned); "first scrape" also builds every
//! series' labels (target labels, relabeling) and picks its shard. Reported per sample.
//! Target: ≤ 50 ns per cached sample.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use promcore::scrape::append::{ScrapeAppender, SeriesRules, ShardBatches};
use promcore::scrape::parser::Format;
use shards::labels::Labels;

#[path = "support/node_body.rs"]
mod node_body;

#[path = "support/acknowledge.rs"]
mod acknowledge;
use acknowledge::acknowledge;

const SHARDS: usize = 2;

fn rules() -> SeriesRules {
    SeriesRules {
        target_labels: Labels::from_pairs([("instance", "10.0.0.1:9100"), ("job", "node")])
            .unwrap_or_default(),
        honor_timestamps: true,
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let (body, samples) = node_body::body(Format::PrometheusText);
    let mut g = c.benchmark_group("scrape_append");
    g.throughput(Throughput::Elements(samples as u64));
    g.bench_function("cached", |b| {
        let mut a = ScrapeAppender::new(rules());
        let mut out = ShardBatches::new(SHARDS);
        let mut t = 0;
        a.append_body(body.as_bytes(), Format::PrometheusText, t, &mut out)
            .ok();
        acknowledge(&mut a, &mut out);
        b.iter(|| {
            t += 15_000;
            let r = a.append_body(body.as_bytes(), Format::PrometheusText, t, &mut out);
            black_box((r.ok(), out.samples()));
        })
    });
    g.bench_function("first_scrape", |b| {
        b.iter(|| {
            let mut a = ScrapeAppender::new(rules());
            let mut out = ShardBatches::new(SHARDS);
            let r = a.append_body(body.as_bytes(), Format::PrometheusText, 0, &mut out);
            black_box((r.ok(), out.samples()));
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
