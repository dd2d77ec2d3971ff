//! Writing a block (`block/write`): 10,000 node-exporter-like series with one full
//! 120-sample XOR chunk each (1.2 M samples, one 2 h block at 60 s), through
//! `shards::block::write_block` into a fresh directory per iteration: chunk files, index,
//! meta.json, tombstones, the fsyncs and the final rename included. Reported as samples/s;
//! the chunks are encoded beforehand, as head compaction finds them in the head.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shards::block::{write_block, BlockChunk, NewBlock};
use shards::chunkenc::XorChunk;
use shards::labels::Labels;

const SERIES: usize = 10_000;
const SAMPLES: i64 = 120;

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("metric_{}", i % 100)),
        ("instance", format!("host-{}:9100", i / 100)),
        ("job", "node".to_string()),
        ("cpu", (i % 8).to_string()),
    ])
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let mut series: Vec<(Labels, XorChunk)> = (0..SERIES)
        .map(|i| {
            let mut ch = XorChunk::new();
            let mut v = i as f64;
            for k in 0..SAMPLES {
                v += ((k as usize * 7 + i) % 13) as f64;
                ch.append(k * 60_000 + (k % 3), v);
            }
            (labels(i), ch)
        })
        .collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let input: Vec<(Labels, Vec<BlockChunk<'_>>)> = series
        .iter()
        .map(|(l, ch)| (l.clone(), vec![BlockChunk::of_xor(ch).unwrap()]))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("block");
    g.throughput(Throughput::Elements(SERIES as u64 * SAMPLES as u64));
    g.sample_size(20);
    g.bench_function("write", |b| {
        b.iter(|| {
            let meta = write_block(dir.path(), NewBlock::level1(0, 7_200_000), &input).unwrap();
            std::fs::remove_dir_all(dir.path().join(&meta.ulid)).unwrap();
        })
    });
    g.finish();
    let meta = write_block(dir.path(), NewBlock::level1(0, 7_200_000), &input).unwrap();
    let bdir = dir.path().join(&meta.ulid);
    let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len();
    let index = size(&bdir.join("index"));
    let chunks = size(&bdir.join("chunks/000001"));
    println!(
        "block of {} samples: index {index} B, chunks {chunks} B, {:.3} bytes/sample",
        meta.stats.num_samples,
        (index + chunks) as f64 / meta.stats.num_samples as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
