//! Gunzip of a node_exporter-like body (~100 KB of text, ~1,500 lines, gzipped at Go's
//! default level as client_golang does), the largest fixed cost of a scrape. Reported in MB/s
//! of decompressed output.
//!
//! - `client/whole`, `client/4k_reads`, `client/16k_reads`: the scrape client's decoder, fed
//!   the body at once or in socket reads of 4 or 16 KiB (the client's read buffer is
//!   16 KiB). A body this size is collected and inflated at once by libdeflate, whatever
//!   the flate2 backend (which handles only the bodies libdeflate does not take).
//! - `miniz_oxide/whole`: miniz_oxide called directly with a reused state and an output
//!   buffer zeroed once, i.e. the best that backend can do without flate2's per-call
//!   zeroing of the output.
//!
//! - `deflate_level1`: the server's response compression, on the same body, since the backend
//!   choice applies to it too.
//!
//! Compare backends with `cargo bench --bench gunzip` (zlib-rs, the default feature) and
//! `cargo bench --bench gunzip --no-default-features` (flate2's miniz_oxide backend). Set
//! `GUNZIP_BENCH_BODY=<file>` to measure a real exposition instead of the generated one.

use std::hint::black_box;
use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flate2::write::GzEncoder;
use flate2::{Compress, Compression, FlushCompress, Status};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZFlush, MZStatus};

use promcore::scrape::client::Gunzip;

const BACKEND: &str = if cfg!(feature = "zlib-rs") {
    "zlib-rs"
} else {
    "miniz_oxide"
};

/// A deterministic exposition shaped like node_exporter's: HELP and TYPE per family, label
/// sets drawn from a small vocabulary, values mixing counters, gauges and Go's float format.
fn node_exporter_like() -> Vec<u8> {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let subsystems = [
        ("cpu", &["cpu", "mode"][..]),
        ("disk", &["device"][..]),
        ("network", &["device"][..]),
        ("filesystem", &["device", "fstype", "mountpoint"][..]),
        ("memory", &[][..]),
        ("netstat", &[][..]),
        ("vmstat", &[][..]),
        ("hwmon", &["chip", "sensor"][..]),
    ];
    let words = [
        "reads",
        "writes",
        "bytes",
        "seconds",
        "errors",
        "packets",
        "drop",
        "time",
        "io",
        "completed",
        "merged",
        "queue",
        "active",
        "free",
        "cached",
        "total",
        "receive",
        "transmit",
        "frame",
        "fifo",
    ];
    let values = |label: &str, i: u64| -> String {
        match label {
            "cpu" => (i % 8).to_string(),
            "mode" => [
                "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
            ][(i / 8 % 8) as usize]
                .to_string(),
            "device" => ["sda", "sdb", "nvme0n1", "eth0", "lo", "docker0", "tmpfs"]
                [(i % 7) as usize]
                .to_string(),
            "fstype" => ["ext4", "tmpfs", "vfat"][(i % 3) as usize].to_string(),
            "mountpoint" => {
                ["/", "/boot/efi", "/run", "/run/lock", "/home"][(i % 5) as usize].to_string()
            }
            "chip" => format!("platform_coretemp_{}", i % 2),
            _ => format!("temp{}", i % 6 + 1),
        }
    };
    let mut out = String::new();
    let mut family = 0;
    while out.len() < 100_000 {
        let (sub, labels) = subsystems[(rnd() % subsystems.len() as u64) as usize];
        let name = format!(
            "node_{sub}_{}_{}_{family}",
            words[(rnd() % 20) as usize],
            words[(rnd() % 20) as usize]
        );
        family += 1;
        let counter = rnd() % 2 == 0;
        let kind = if counter { "counter" } else { "gauge" };
        let name = if counter {
            format!("{name}_total")
        } else {
            name
        };
        out.push_str(&format!(
            "# HELP {name} Number of {} {} reported by /proc for this {sub}.\n# TYPE {name} {kind}\n",
            words[(rnd() % 20) as usize],
            words[(rnd() % 20) as usize]
        ));
        let series = if labels.is_empty() { 1 } else { 1 + rnd() % 16 };
        for i in 0..series {
            out.push_str(&name);
            if !labels.is_empty() {
                out.push('{');
                for (j, l) in labels.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    out.push_str(&format!("{l}=\"{}\"", values(l, i)));
                }
                out.push('}');
            }
            let v = match rnd() % 3 {
                0 => format!("{}", rnd() % 100_000),
                1 => format!("{:.2}", (rnd() % 10_000_000) as f64 / 100.0),
                _ => format!("{:e}", (rnd() % 1_000_000_000) as f64 * 1e3),
            };
            out.push(' ');
            out.push_str(&v.replace('e', "e+"));
            out.push('\n');
        }
    }
    out.into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn bench(c: &mut Criterion) {
    let text = match std::env::var_os("GUNZIP_BENCH_BODY") {
        Some(path) => std::fs::read(path).unwrap(),
        None => node_exporter_like(),
    };
    let wire = gzip(&text);
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    println!(
        "body: {} bytes, {lines} lines, gzipped {} bytes (ratio {:.2}); flate2 backend: {BACKEND}",
        text.len(),
        wire.len(),
        text.len() as f64 / wire.len() as f64
    );

    let mut group = c.benchmark_group("gunzip");
    group.throughput(Throughput::BytesDecimal(text.len() as u64));

    // Checked once up front: a filter may skip any of the benchmarks below.
    let mut g = Gunzip::new();
    let mut body = Vec::new();
    g.start();
    g.feed(&wire, &mut body, 0).unwrap();
    g.finish(&mut body, 0).unwrap();
    assert_eq!(body, text);
    group.bench_function(format!("client/whole/{BACKEND}"), |b| {
        b.iter(|| {
            body.clear();
            g.start();
            g.feed(black_box(&wire), &mut body, 0).unwrap();
            g.finish(&mut body, 0).unwrap();
            black_box(body.len())
        })
    });
    for read_size in [4096, 16384] {
        group.bench_function(
            format!("client/{}k_reads/{BACKEND}", read_size / 1024),
            |b| {
                b.iter(|| {
                    body.clear();
                    g.start();
                    for read in black_box(&wire).chunks(read_size) {
                        g.feed(read, &mut body, 0).unwrap();
                    }
                    g.finish(&mut body, 0).unwrap();
                    black_box(body.len())
                })
            },
        );
    }

    // Raw deflate after the generator's 10-byte header (no optional fields); the trailer's
    // CRC is not checked here, so this slightly flatters miniz_oxide.
    let deflate = &wire[10..wire.len() - 8];
    let mut state = InflateState::new_boxed(DataFormat::Raw);
    let mut out = vec![0u8; text.len() + 1];
    let r = inflate(&mut state, deflate, &mut out, MZFlush::Finish);
    assert_eq!(&out[..r.bytes_written], &text[..]);
    group.bench_function("miniz_oxide/whole", |b| {
        b.iter(|| {
            state.reset_as(miniz_oxide::inflate::stream::MinReset);
            let r = inflate(&mut state, black_box(deflate), &mut out, MZFlush::Finish);
            assert_eq!(r.status, Ok(MZStatus::StreamEnd));
            black_box(r.bytes_written)
        })
    });
    group.finish();

    // The backend also serves the HTTP server's response compression (level 1, one reused
    // state per connection, src/http/compression.rs): measured so the switch is not blind.
    let mut group = c.benchmark_group("deflate_level1");
    group.throughput(Throughput::BytesDecimal(text.len() as u64));
    let mut state = Compress::new(Compression::new(1), false);
    let mut compressed = Vec::with_capacity(text.len());
    state
        .compress_vec(&text, &mut compressed, FlushCompress::Finish)
        .unwrap();
    println!("deflate level 1 ({BACKEND}): {} bytes", compressed.len());
    group.bench_function(BACKEND, |b| {
        b.iter(|| {
            state.reset();
            compressed.clear();
            let status = state
                .compress_vec(black_box(&text), &mut compressed, FlushCompress::Finish)
                .unwrap();
            assert_eq!(status, Status::StreamEnd);
            black_box(compressed.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
