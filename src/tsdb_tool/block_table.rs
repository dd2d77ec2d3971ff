//! The table of created blocks that `promcore tsdb create-blocks-from` and `promcore tsdb
//! import` print, laid out as promtool's `printBlocks` lays it out (Go's tabwriter with
//! minimum width 13 and padding 2; Go's duration, time and byte-size formats for `-r`), with
//! the shard of each block as an extra column.
//!
//! Pure formatting: it never reads a block (the caller passes sizes).

use crate::http::date::civil_from_days;
use std::fmt::Write;

/// One row: a block and where it went.
pub struct BlockRow {
    pub ulid: String,
    pub shard: usize,
    pub min_time: i64,
    pub max_time: i64,
    pub samples: u64,
    pub chunks: u64,
    pub series: u64,
    pub size: u64,
}

/// The whole table, header included, one line per row.
pub fn render(rows: &[BlockRow], human: bool) -> String {
    let mut cells: Vec<Vec<String>> = vec![[
        "BLOCK ULID",
        "SHARD",
        "MIN TIME",
        "MAX TIME",
        "DURATION",
        "NUM SAMPLES",
        "NUM CHUNKS",
        "NUM SERIES",
        "SIZE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()];
    for r in rows {
        let time = |t: i64| {
            if human {
                go_utc_seconds(t.div_euclid(1000))
            } else {
                t.to_string()
            }
        };
        cells.push(vec![
            r.ulid.clone(),
            format!("shard-{:03}", r.shard),
            time(r.min_time),
            time(r.max_time),
            go_duration_ms(r.max_time - r.min_time),
            r.samples.to_string(),
            r.chunks.to_string(),
            r.series.to_string(),
            if human {
                base2_bytes(r.size)
            } else {
                r.size.to_string()
            },
        ]);
    }
    let columns = cells[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count() + 2)
                .max()
                .unwrap_or(0)
                .max(13)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}", w = widths[c]);
            }
        }
        out.push('\n');
    }
    out
}

/// Go's `time.Duration.String()` for a whole number of milliseconds.
pub fn go_duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < 1000 {
        return format!("{neg}{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut secs = s.to_string();
    if frac > 0 {
        let f = format!("{frac:03}");
        secs.push('.');
        secs.push_str(f.trim_end_matches('0'));
    }
    match (h, m) {
        (0, 0) => format!("{neg}{secs}s"),
        (0, m) => format!("{neg}{m}m{secs}s"),
        (h, m) => format!("{neg}{h}h{m}m{secs}s"),
    }
}

/// Go's `time.Unix(s, 0).UTC().String()`: `2006-01-02 15:04:05 +0000 UTC`.
pub fn go_utc_seconds(s: i64) -> String {
    let days = s.div_euclid(86_400);
    let rem = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `units.Base2Bytes(n).String()` (alecthomas/units): `12KiB68B`.
pub fn base2_bytes(mut n: u64) -> String {
    if n == 0 {
        return "0B".into();
    }
    let mut out = String::new();
    for (i, unit) in ["EiB", "PiB", "TiB", "GiB", "MiB", "KiB", "B"]
        .iter()
        .enumerate()
    {
        let size = 1u64 << (10 * (6 - i));
        if n >= size {
            let _ = write!(out, "{}{unit}", n / size);
            n %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_promtool() {
        assert_eq!(go_duration_ms(15_001), "15.001s");
        assert_eq!(go_duration_ms(1), "1ms");
        assert_eq!(go_duration_ms(5_999_001), "1h39m59.001s");
        assert_eq!(go_duration_ms(7_200_000), "2h0m0s");
        assert_eq!(go_duration_ms(61_500), "1m1.5s");
        assert_eq!(go_utc_seconds(1000), "1970-01-01 00:16:40 +0000 UTC");
        assert_eq!(
            go_utc_seconds(1_700_006_400),
            "2023-11-15 00:00:00 +0000 UTC"
        );
        assert_eq!(base2_bytes(12_356), "12KiB68B");
        assert_eq!(base2_bytes(731), "731B");
        assert_eq!(base2_bytes(1 << 20), "1MiB");
    }

    #[test]
    fn table_layout_is_promtools_plus_a_shard_column() {
        let t = render(
            &[BlockRow {
                ulid: "01M94AE77HC8ABTGM5X15HXFHQ".into(),
                shard: 1,
                min_time: 1_000_000,
                max_time: 1_015_001,
                samples: 3,
                chunks: 2,
                series: 2,
                size: 731,
            }],
            false,
        );
        assert_eq!(
            t,
            "BLOCK ULID                  SHARD        MIN TIME     MAX TIME     DURATION     \
             NUM SAMPLES  NUM CHUNKS   NUM SERIES   SIZE\n\
             01M94AE77HC8ABTGM5X15HXFHQ  shard-001    1000000      1015001      15.001s      \
             3            2            2            731\n"
        );
    }
}
