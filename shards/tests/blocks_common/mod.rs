//! Helpers of the block reference tests: the promtool binary, and test series written into
//! a block the way the head would cut their chunks.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use shards::block::{BlockChunk, BlockMeta, BlockWriter, NewBlock};
use shards::chunkenc::{Encoding, FloatChunk, XorChunk};
use shards::head::series::MemSeries;
use shards::labels::Labels;

pub struct Promtool;

impl Promtool {
    /// Runs promtool and returns its stdout; a failure fails the test with its stderr.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("promtool")
            .args(args)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// `Some` when `promtool` runs.
pub fn promtool() -> Option<Promtool> {
    Command::new("promtool")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| Promtool)
}

pub const SPECIALS: [u64; 8] = [
    0x7ff8_0000_0000_0001, // Go's NaN
    0x7ff0_0000_0000_0000, // +Inf
    0xfff0_0000_0000_0000, // -Inf
    0x8000_0000_0000_0000, // -0
    0x0000_0000_0000_0001, // smallest denormal
    0x7fef_ffff_ffff_ffff, // f64::MAX
    0x3fb9_9999_9999_999a, // 0.1
    0x7ff0_0000_0000_0002, // stale marker
];

/// `n` series with `samples` samples each, 15 s apart from t = 1_000_000_000_000, sorted by
/// labels; some have gaps and special values, one starts late.
pub fn test_series(n: usize, samples: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let t0 = 1_000_000_000_000i64;
    let mut out: Vec<(Labels, Vec<(i64, f64)>)> = (0..n)
        .map(|i| {
            let labels = Labels::from_pairs([
                (
                    "__name__",
                    if i % 3 == 0 { "metric_b" } else { "metric_a" }.to_string(),
                ),
                ("instance", format!("host {i}:9100")),
                ("job", format!("job{}", i % 4)),
            ])
            .unwrap();
            let mut pts = Vec::new();
            let mut c = 0.0f64;
            for k in 0..samples {
                if i % 7 == 1 && (k / 100) % 3 == 1 {
                    continue; // a gap
                }
                if i == 5 && k < samples / 2 {
                    continue; // starts late
                }
                let t = t0 + k * 15_000 + (k * i as i64) % 7;
                c += ((k as usize * 31 + i * 17) % 23) as f64 * 0.25;
                let v = if i % 5 == 4 {
                    f64::from_bits(SPECIALS[k as usize % SPECIALS.len()])
                } else {
                    c
                };
                pts.push((t, v));
            }
            (labels, pts)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Cuts each series' samples into chunks as the head does (2 h chunk range).
pub fn cut_chunks(samples: &[(i64, f64)]) -> Vec<(i64, XorChunk)> {
    let mut s = MemSeries::new(shards::labels::interned::InternedLabels::default());
    let mut out = Vec::new();
    for &(t, v) in samples {
        if let Some((min_time, FloatChunk::Xor(c))) = s.append(0, t, v, 2 * 3600 * 1000) {
            out.push((min_time, c));
        }
    }
    if let Some(c) = s.head_chunk() {
        let mut last = XorChunk::new();
        for (t, v) in c.iter() {
            last.append(t, v);
        }
        out.push((last.first_time().unwrap(), last));
    }
    out
}

/// Writes the series into one block in `dir`, covering all their samples.
pub fn write_test_block(
    dir: &Path,
    series: &[(Labels, Vec<(i64, f64)>)],
    segment_size: u64,
) -> BlockMeta {
    let mint = series
        .iter()
        .filter_map(|s| s.1.first())
        .map(|p| p.0)
        .min()
        .unwrap();
    let maxt = series
        .iter()
        .filter_map(|s| s.1.last())
        .map(|p| p.0)
        .max()
        .unwrap();
    let mut symbols = std::collections::BTreeSet::from([String::new()]);
    for (l, _) in series {
        for l in l {
            symbols.insert(l.name.clone());
            symbols.insert(l.value.clone());
        }
    }
    let mut w = BlockWriter::create_with_segment_size(
        dir,
        NewBlock::level1(mint, maxt + 1),
        symbols.iter().map(String::as_str),
        segment_size,
    )
    .unwrap();
    for (labels, samples) in series {
        let chunks = cut_chunks(samples);
        let metas: Vec<BlockChunk<'_>> = chunks
            .iter()
            .map(|(mint, c)| BlockChunk {
                min_time: *mint,
                max_time: c.last_time().unwrap(),
                encoding: Encoding::Xor,
                data: c.bytes(),
            })
            .collect();
        w.add_series(labels, &metas).unwrap();
    }
    w.finish().unwrap()
}
