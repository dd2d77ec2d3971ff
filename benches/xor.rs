//! XOR chunk encode and decode, on a realistic mix: counters that grow by small integers
//! and gauges that wander, 15 s apart with a little scrape jitter. Also prints the
//! bytes per sample of each kind, the figure that decides head and disk size.

// The server's allocator, so that the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shards::chunkenc::{XorChunk, XorIterator};

const N: usize = 120;

fn series(kind: usize) -> Vec<(i64, f64)> {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ kind as u64;
    let mut rnd = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut t = 1_700_000_000_000i64;
    let mut v = 1000.0f64;
    (0..N)
        .map(|_| {
            t += 15_000 + (rnd() % 5) as i64 - 2;
            v = match kind {
                0 => v + (rnd() % 20) as f64,                // counter
                1 => 50.0 + (rnd() % 10_000) as f64 / 100.0, // gauge, 2 decimals
                _ => (rnd() % 1_000_000) as f64 * 1.37e-3,   // noisy float gauge
            };
            (t, v)
        })
        .collect()
}

fn encode(samples: &[(i64, f64)]) -> XorChunk {
    let mut c = XorChunk::new();
    for &(t, v) in samples {
        c.append(t, v);
    }
    c
}

fn bench(c: &mut Criterion) {
    let mixes: Vec<Vec<(i64, f64)>> = (0..3).map(series).collect();
    for (name, s) in ["counter", "gauge", "float_gauge"].iter().zip(&mixes) {
        let bytes = encode(s).bytes().len();
        println!(
            "xor {name}: {bytes} bytes for {N} samples = {:.2} bytes/sample",
            bytes as f64 / N as f64
        );
    }
    let mut g = c.benchmark_group("xor");
    g.throughput(Throughput::Elements((N * mixes.len()) as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            for s in &mixes {
                std::hint::black_box(encode(s));
            }
        })
    });
    let chunks: Vec<XorChunk> = mixes.iter().map(|s| encode(s)).collect();
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for c in &chunks {
                for (_, v) in XorIterator::new(c.bytes()) {
                    sum += v;
                }
            }
            std::hint::black_box(sum)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
