//! The reference test for the block reader: blocks that Prometheus 2.42's promtool wrote
//! (`promtool tsdb create-blocks-from openmetrics`) are opened with `Block::open` and give
//! exactly the series and samples that `promtool tsdb dump` prints for them.
//!
//! Needs `promtool` (Debian package `prometheus`); without it the test says so and passes.

mod blocks_common;

use std::collections::BTreeMap;
use std::fmt::Write;

use blocks_common::promtool;
use shards::block::open_all;

type Samples = BTreeMap<String, Vec<(i64, u64)>>;

fn canonical_bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

#[test]
fn our_reader_reads_promtool_blocks_as_promtool_dumps_them() {
    let Some(promtool) = promtool() else {
        eprintln!("SKIPPED: promtool not found on PATH (install Debian's `prometheus` package)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // Five hours at 30 s across 2 h-aligned boundaries: promtool writes three blocks.
    let t0 = 1_700_000_000i64;
    let mut om = String::new();
    for (family, n) in [("temp_celsius", 6), ("odd_values", 2)] {
        writeln!(om, "# TYPE {family} gauge").unwrap();
        for k in 0..600i64 {
            let t = t0 + k * 30;
            for i in 0..n {
                let v = if family == "odd_values" {
                    ["NaN", "+Inf", "-Inf", "-0", "1e-310", "0.1"][(k as usize + i) % 6].to_string()
                } else {
                    format!("{}", (k * 7 + i as i64 * 13) % 101) + ".25"
                };
                if i == 3 && (100..250).contains(&k) {
                    continue;
                }
                writeln!(om, "{family}{{room=\"r {i}\",site=\"x\"}} {v} {t}").unwrap();
            }
        }
    }
    om.push_str("# EOF\n");
    let input = tmp.path().join("in.om");
    std::fs::write(&input, om).unwrap();
    let data = tmp.path().join("data");
    promtool.run(&[
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        input.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    std::fs::create_dir_all(data.join("wal")).unwrap();

    let mut want = Samples::new();
    for line in promtool
        .run(&["tsdb", "dump", data.to_str().unwrap()])
        .lines()
    {
        let (labels, rest) = line.rsplit_once("} ").expect(line);
        let (v, t) = rest.split_once(' ').expect(line);
        let v = match v {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            _ => v.parse().unwrap(),
        };
        want.entry(format!("{labels}}}"))
            .or_default()
            .push((t.parse().unwrap(), canonical_bits(v)));
    }
    assert_eq!(want.len(), 8);

    let opened = open_all(&data).unwrap();
    assert!(opened.failed.is_empty(), "{:?}", opened.failed);
    assert!(opened.blocks.len() >= 3, "{} blocks", opened.blocks.len());
    let mut got = Samples::new();
    for b in &opened.blocks {
        for (labels, samples) in b.dump(i64::MIN, i64::MAX).unwrap() {
            let key = format!(
                "{{{}}}",
                labels
                    .iter()
                    .map(|l| format!("{}=\"{}\"", l.name, l.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            got.entry(key)
                .or_default()
                .extend(samples.iter().map(|&(t, v)| (t, canonical_bits(v))));
        }
    }
    for v in got.values_mut() {
        v.sort_by_key(|p| p.0);
    }
    assert_eq!(got, want);
}
