//! The reference test for the block writer: Prometheus 2.42's own `promtool tsdb list`,
//! `analyze` and `dump` read a shard directory holding a block this crate wrote and report
//! exactly the series, chunks and samples that went in (special floats bit for bit, NaNs by
//! class since Go prints every NaN as "NaN").
//!
//! Needs `promtool` (Debian package `prometheus`); without it the test says so and passes.

mod blocks_common;

use std::collections::BTreeMap;

use blocks_common::{promtool, test_series, write_test_block};

#[test]
fn promtool_lists_analyzes_and_dumps_our_block() {
    let Some(promtool) = promtool() else {
        eprintln!("SKIPPED: promtool not found on PATH (install Debian's `prometheus` package)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let shard = tmp.path().join("shard-000");
    std::fs::create_dir_all(shard.join("wal")).unwrap();
    let series = test_series(40, 2_000);
    // Small chunk files, so refs into later files are exercised too.
    let meta = write_test_block(&shard, &series, 64 << 10);
    assert!(
        std::fs::read_dir(shard.join(&meta.ulid).join("chunks"))
            .unwrap()
            .count()
            > 1
    );

    let list = promtool.run(&["tsdb", "list", shard.to_str().unwrap()]);
    let row = list
        .lines()
        .find(|l| l.starts_with(&meta.ulid))
        .unwrap_or_else(|| panic!("block missing from `promtool tsdb list`:\n{list}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    // ULID, min, max, duration, samples, chunks, series, size.
    assert_eq!(cols[1], meta.min_time.to_string(), "{row}");
    assert_eq!(cols[2], meta.max_time.to_string(), "{row}");
    assert_eq!(cols[4], meta.stats.num_samples.to_string(), "{row}");
    assert_eq!(cols[5], meta.stats.num_chunks.to_string(), "{row}");
    assert_eq!(cols[6], series.len().to_string(), "{row}");

    let analyze = promtool.run(&["tsdb", "analyze", shard.to_str().unwrap(), &meta.ulid]);
    assert!(
        analyze.contains(&format!("Series: {}", series.len())),
        "{analyze}"
    );
    assert!(analyze.contains("Label names: 3"), "{analyze}");

    let dump = promtool.run(&["tsdb", "dump", shard.to_str().unwrap()]);
    let mut got: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for line in dump.lines() {
        let (labels, rest) = line.rsplit_once("} ").expect(line);
        let (v, t) = rest.split_once(' ').expect(line);
        got.entry(format!("{labels}}}"))
            .or_default()
            .push((t.parse().unwrap(), canonical_bits(parse_go_float(v))));
    }
    let want: BTreeMap<String, Vec<(i64, u64)>> = series
        .iter()
        .map(|(l, samples)| {
            let key = format!(
                "{{{}}}",
                l.iter()
                    .map(|l| format!("{}=\"{}\"", l.name, l.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let pts = samples
                .iter()
                .map(|&(t, v)| (t, canonical_bits(v)))
                .collect();
            (key, pts)
        })
        .collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
}

fn parse_go_float(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or_else(|_| panic!("float {s:?}")),
    }
}

fn canonical_bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}
