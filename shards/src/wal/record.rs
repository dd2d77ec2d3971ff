//! WAL record payloads (spec 9.3, 9.4): the series, samples and tombstones records this shard
//! writes and replays, byte-exact with Prometheus's `tsdb/record` package.
//!
//! Every record starts with its type byte. Encoders append one whole record to a caller-owned
//! buffer; decoders append to a caller-owned `Vec` so that replay reuses one allocation per
//! record type. Decoders never trust their input: a record that does not decode is a
//! `WalError::BadRecord`, never a panic. This module knows nothing of fragments or pages.
//!
//! Layouts (all integers big-endian unless varint):
//!
//! ```text
//! series     (1): repeated { ref u64, n uvarint, n × (name string, value string) }
//!                 labels sorted by name; string = uvarint length + UTF-8 bytes
//! samples    (2): [ base_ref u64, base_t i64,
//!                   every sample, the first included: { ref-base_ref varint,
//!                                                       t-base_t varint, value f64 bits u64 } ]
//!                 (no samples: the type byte alone; the deltas are SIGNED varints)
//! tombstones (3): repeated { ref u64, mint varint, maxt varint }, one entry per interval
//! samples V2 (11), Prometheus 3.x's record with start timestamps (`st`, 0 = none):
//!                 [ first: { ref varint, t varint, st varint, value f64 bits u64 },
//!                   then each further sample: { ref-prev_ref varint, t-first_t varint,
//!                     st marker u8, [st-first_st varint if marker = 2], value u64 } ]
//!                 st marker: 0 = no start timestamp, 1 = same as the previous sample's,
//!                 2 = explicit (the delta to the first sample's st follows)
//! ```
//!
//! A samples V2 record is written only when the head stores start timestamps (off by
//! default) and a sample of the batch has one: otherwise the WAL stays readable by
//! Prometheus 2.x, which skips type 11 as an unknown record and would lose those samples.

use super::WalError;
use crate::encoding::{Decbuf, DecodeError, Encbuf};
use crate::labels::{Label, Labels};

pub const SERIES: u8 = 1;
pub const SAMPLES: u8 = 2;
pub const TOMBSTONES: u8 = 3;
pub const EXEMPLARS: u8 = 4;
/// Only in the out-of-order write-behind log.
pub const MMAP_MARKERS: u8 = 5;
pub const METADATA: u8 = 6;
pub const HISTOGRAM_SAMPLES: u8 = 7;
pub const FLOAT_HISTOGRAM_SAMPLES: u8 = 8;
pub const CUSTOM_BUCKETS_HISTOGRAM_SAMPLES: u8 = 9;
pub const CUSTOM_BUCKETS_FLOAT_HISTOGRAM_SAMPLES: u8 = 10;
/// Prometheus 3.x with start timestamps; 2.x cannot read them.
pub const SAMPLES_V2: u8 = 11;
pub const HISTOGRAM_SAMPLES_V2: u8 = 12;
pub const FLOAT_HISTOGRAM_SAMPLES_V2: u8 = 13;

/// A series creation: `series_ref` stands for `labels` in every later record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSeries {
    pub series_ref: u64,
    pub labels: Labels,
}

/// One float sample of the series `series_ref`. Values are kept bit-exact (stale markers are
/// the NaN `0x7ff0000000000002`). `st` is its start timestamp, 0 when it has none (a samples
/// record (2) never carries one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefSample {
    pub series_ref: u64,
    pub t: i64,
    pub v: f64,
    pub st: i64,
}

/// Deleted time ranges of one series; intervals are closed `[mint, maxt]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stone {
    pub series_ref: u64,
    pub intervals: Vec<(i64, i64)>,
}

/// The type byte of a record, `None` for an empty one.
#[inline]
pub fn record_type(rec: &[u8]) -> Option<u8> {
    rec.first().copied()
}

/// Appends one series record.
pub fn encode_series(series: &[RefSeries], buf: &mut Vec<u8>) {
    begin_series_record(buf);
    for s in series {
        encode_series_entry(s.series_ref, &s.labels, buf);
    }
}

/// Starts a series record in `buf`, to be followed by `encode_series_entry` for each
/// series: the head writes entries straight from its label sets, without building
/// `RefSeries` values.
pub fn begin_series_record(buf: &mut Vec<u8>) {
    buf.push(SERIES);
}

/// Appends one series entry to a record started with `begin_series_record`.
pub fn encode_series_entry(series_ref: u64, labels: &Labels, buf: &mut Vec<u8>) {
    let mut e = Encbuf::new(buf);
    e.put_be_u64(series_ref);
    e.put_uvarint(labels.len() as u64);
    for l in labels {
        e.put_uvarint_str(&l.name);
        e.put_uvarint_str(&l.value);
    }
}

/// Appends one samples record.
pub fn encode_samples(samples: &[RefSample], buf: &mut Vec<u8>) {
    // Worst case per sample: two 10-byte varints and the value.
    buf.reserve(1 + 16 + samples.len() * 28);
    let mut e = Encbuf::new(buf);
    e.put_u8(SAMPLES);
    let Some(first) = samples.first() else {
        return;
    };
    e.put_be_u64(first.series_ref);
    e.put_be_i64(first.t);
    // Go computes both deltas in int64 arithmetic; wrapping keeps any pair of u64 refs
    // representable and bit-identical.
    let base_ref = first.series_ref as i64;
    for s in samples {
        e.put_varint((s.series_ref as i64).wrapping_sub(base_ref));
        e.put_varint(s.t.wrapping_sub(first.t));
        e.put_be_u64(s.v.to_bits());
    }
}

/// The start-timestamp markers of a samples V2 record.
const NO_ST: u8 = 0;
const SAME_ST: u8 = 1;
const EXPLICIT_ST: u8 = 2;

/// Appends one samples V2 record (type 11), keeping every sample's start timestamp.
pub fn encode_samples_v2(samples: &[RefSample], buf: &mut Vec<u8>) {
    // Worst case per sample: two 10-byte varints, the marker, a varint and the value.
    buf.reserve(1 + samples.len() * 39);
    let mut e = Encbuf::new(buf);
    e.put_u8(SAMPLES_V2);
    let Some(first) = samples.first() else {
        return;
    };
    e.put_varint(first.series_ref as i64);
    e.put_varint(first.t);
    e.put_varint(first.st);
    e.put_be_u64(first.v.to_bits());
    for w in samples.windows(2) {
        let (prev, s) = (&w[0], &w[1]);
        e.put_varint((s.series_ref as i64).wrapping_sub(prev.series_ref as i64));
        e.put_varint(s.t.wrapping_sub(first.t));
        // Zero is tested first: a sample without a start timestamp after one without is
        // "none", not "same".
        if s.st == 0 {
            e.put_u8(NO_ST);
        } else if s.st == prev.st {
            e.put_u8(SAME_ST);
        } else {
            e.put_u8(EXPLICIT_ST);
            e.put_varint(s.st.wrapping_sub(first.st));
        }
        e.put_be_u64(s.v.to_bits());
    }
}

/// Appends the samples of a samples V2 record to `out`.
pub fn decode_samples_v2(rec: &[u8], out: &mut Vec<RefSample>) -> Result<(), WalError> {
    let mut d = body(rec, SAMPLES_V2)?;
    if d.is_empty() {
        return Ok(());
    }
    let bad = |e: DecodeError| bad_record("samples v2", e);
    let first_ref = d.varint().map_err(bad)?;
    let first_t = d.varint().map_err(bad)?;
    let first_st = d.varint().map_err(bad)?;
    let v = d.be_u64().map_err(bad)?;
    let mut prev = RefSample {
        series_ref: first_ref as u64,
        t: first_t,
        v: f64::from_bits(v),
        st: first_st,
    };
    out.reserve(d.remaining() / 11);
    out.push(prev);
    while !d.is_empty() {
        let dref = d.varint().map_err(bad)?;
        let dt = d.varint().map_err(bad)?;
        let st = match d.u8().map_err(bad)? {
            NO_ST => 0,
            SAME_ST => prev.st,
            EXPLICIT_ST => first_st.wrapping_add(d.varint().map_err(bad)?),
            other => {
                return Err(WalError::BadRecord(format!(
                    "samples v2 record: unknown start timestamp marker {other}"
                )))
            }
        };
        let v = d.be_u64().map_err(bad)?;
        prev = RefSample {
            series_ref: (prev.series_ref as i64).wrapping_add(dref) as u64,
            t: first_t.wrapping_add(dt),
            v: f64::from_bits(v),
            st,
        };
        out.push(prev);
    }
    Ok(())
}

/// Appends the samples of a samples record of either version (2 or 11) to `out`.
pub fn decode_any_samples(rec: &[u8], out: &mut Vec<RefSample>) -> Result<(), WalError> {
    match record_type(rec) {
        Some(SAMPLES_V2) => decode_samples_v2(rec, out),
        _ => decode_samples(rec, out),
    }
}

/// Appends a samples record: V2 when `keep_starts` and a sample has a start timestamp,
/// the 2.x-readable V1 otherwise.
pub fn encode_samples_for(samples: &[RefSample], keep_starts: bool, buf: &mut Vec<u8>) {
    if keep_starts && samples.iter().any(|s| s.st != 0) {
        encode_samples_v2(samples, buf);
    } else {
        encode_samples(samples, buf);
    }
}

/// Appends one tombstones record.
pub fn encode_tombstones(stones: &[Stone], buf: &mut Vec<u8>) {
    let mut e = Encbuf::new(buf);
    e.put_u8(TOMBSTONES);
    for s in stones {
        for &(mint, maxt) in &s.intervals {
            e.put_be_u64(s.series_ref);
            e.put_varint(mint);
            e.put_varint(maxt);
        }
    }
}

/// Appends the series of a series record to `out`. Label sets must be sorted, unique and
/// non-empty; anything else is refused as a bad record.
pub fn decode_series(rec: &[u8], out: &mut Vec<RefSeries>) -> Result<(), WalError> {
    let mut d = body(rec, SERIES)?;
    let bad = |e: DecodeError| bad_record("series", e);
    while !d.is_empty() {
        let series_ref = d.be_u64().map_err(bad)?;
        let n = d.uvarint().map_err(bad)?;
        // Each label takes at least two bytes: a garbage count must not allocate gigabytes.
        if n > (d.remaining() / 2) as u64 {
            return Err(WalError::BadRecord(format!(
                "series record: {n} labels announced, {} bytes left",
                d.remaining()
            )));
        }
        let mut labels = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let name = d.uvarint_str().map_err(bad)?;
            let value = d.uvarint_str().map_err(bad)?;
            if name.is_empty() || value.is_empty() {
                return Err(WalError::BadRecord(format!(
                    "series record: empty label name or value in series {series_ref}"
                )));
            }
            labels.push(Label::new(name, value));
        }
        let labels = Labels::from_sorted_unchecked(labels)
            .map_err(|e| WalError::BadRecord(format!("series record: series {series_ref}: {e}")))?;
        out.push(RefSeries { series_ref, labels });
    }
    Ok(())
}

/// Appends the samples of a samples record to `out`. The replay hot path: no allocation
/// beyond growing `out`.
pub fn decode_samples(rec: &[u8], out: &mut Vec<RefSample>) -> Result<(), WalError> {
    let mut d = body(rec, SAMPLES)?;
    if d.is_empty() {
        return Ok(());
    }
    let bad = |e: DecodeError| bad_record("samples", e);
    let base_ref = d.be_u64().map_err(bad)? as i64;
    let base_t = d.be_i64().map_err(bad)?;
    // A sample takes at least 10 bytes.
    out.reserve(d.remaining() / 10);
    while !d.is_empty() {
        let dref = d.varint().map_err(bad)?;
        let dt = d.varint().map_err(bad)?;
        let v = d.be_u64().map_err(bad)?;
        out.push(RefSample {
            series_ref: base_ref.wrapping_add(dref) as u64,
            t: base_t.wrapping_add(dt),
            v: f64::from_bits(v),
            st: 0,
        });
    }
    Ok(())
}

/// Appends the stones of a tombstones record to `out`, one per run of consecutive entries
/// of the same series.
pub fn decode_tombstones(rec: &[u8], out: &mut Vec<Stone>) -> Result<(), WalError> {
    let mut d = body(rec, TOMBSTONES)?;
    let bad = |e: DecodeError| bad_record("tombstones", e);
    let first_new = out.len();
    while !d.is_empty() {
        let series_ref = d.be_u64().map_err(bad)?;
        let mint = d.varint().map_err(bad)?;
        let maxt = d.varint().map_err(bad)?;
        let in_this_record = out.len() > first_new;
        match out.last_mut() {
            Some(s) if in_this_record && s.series_ref == series_ref => {
                s.intervals.push((mint, maxt))
            }
            _ => out.push(Stone {
                series_ref,
                intervals: vec![(mint, maxt)],
            }),
        }
    }
    Ok(())
}

/// The bytes after the type byte, once the type is checked.
fn body(rec: &[u8], want: u8) -> Result<Decbuf<'_>, WalError> {
    match rec.split_first() {
        Some((&t, rest)) if t == want => Ok(Decbuf::new(rest)),
        Some((&t, _)) => Err(WalError::BadRecord(format!(
            "record type {t} where type {want} was expected"
        ))),
        None => Err(WalError::BadRecord("empty record".into())),
    }
}

fn bad_record(what: &str, e: DecodeError) -> WalError {
    WalError::BadRecord(format!("{what} record: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels_strategy() -> impl Strategy<Value = Labels> {
        prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "\\PC{1,8}", 0..6)
            .prop_map(|m| Labels::from_pairs(m).unwrap())
    }

    fn series_strategy() -> impl Strategy<Value = Vec<RefSeries>> {
        prop::collection::vec(
            (any::<u64>(), labels_strategy())
                .prop_map(|(series_ref, labels)| RefSeries { series_ref, labels }),
            0..20,
        )
    }

    fn samples_strategy() -> impl Strategy<Value = Vec<RefSample>> {
        prop::collection::vec(
            (any::<u64>(), any::<i64>(), any::<u64>()).prop_map(|(r, t, v)| RefSample {
                series_ref: r,
                t,
                v: f64::from_bits(v),
                st: 0,
            }),
            0..200,
        )
    }

    fn bits(s: &[RefSample]) -> Vec<(u64, i64, u64)> {
        s.iter()
            .map(|s| (s.series_ref, s.t, s.v.to_bits()))
            .collect()
    }

    proptest! {
        #[test]
        fn series_round_trip(series in series_strategy()) {
            let mut buf = Vec::new();
            encode_series(&series, &mut buf);
            prop_assert_eq!(record_type(&buf), Some(SERIES));
            let mut out = Vec::new();
            decode_series(&buf, &mut out).unwrap();
            prop_assert_eq!(out, series);
        }

        #[test]
        fn samples_round_trip(samples in samples_strategy()) {
            let mut buf = Vec::new();
            encode_samples(&samples, &mut buf);
            let mut out = vec![RefSample { series_ref: 1, t: 2, v: 3.0, st: 0 }];
            decode_samples(&buf, &mut out).unwrap();
            prop_assert_eq!(bits(&out[1..]), bits(&samples));
        }

        #[test]
        fn samples_v2_round_trip(
            samples in prop::collection::vec(
                (0u64..8, any::<i64>(), any::<u64>(),
                 prop_oneof![Just(0i64), Just(5i64), any::<i64>()]),
                0..200,
            )
        ) {
            // Starts absent, repeated and arbitrary, so every marker is exercised.
            let samples: Vec<RefSample> = samples
                .into_iter()
                .map(|(series_ref, t, v, st)| RefSample { series_ref, t, v: f64::from_bits(v), st })
                .collect();
            let mut buf = Vec::new();
            encode_samples_v2(&samples, &mut buf);
            prop_assert_eq!(record_type(&buf), Some(SAMPLES_V2));
            let mut out = vec![RefSample { series_ref: 1, t: 2, v: 3.0, st: 4 }];
            decode_any_samples(&buf, &mut out).unwrap();
            let with_st = |s: &[RefSample]| -> Vec<(u64, i64, u64, i64)> {
                s.iter().map(|s| (s.series_ref, s.t, s.v.to_bits(), s.st)).collect()
            };
            prop_assert_eq!(with_st(&out[1..]), with_st(&samples));
        }

        #[test]
        fn tombstones_round_trip(
            raw in prop::collection::vec(
                (0u64..4, prop::collection::vec((any::<i64>(), any::<i64>()), 1..4)), 0..10)
        ) {
            // The decoder merges runs of one series, so the expectation is the merged form.
            let stones: Vec<Stone> = raw.into_iter()
                .map(|(series_ref, intervals)| Stone { series_ref, intervals })
                .collect();
            let mut merged: Vec<Stone> = Vec::new();
            for s in &stones {
                match merged.last_mut() {
                    Some(m) if m.series_ref == s.series_ref => m.intervals.extend(&s.intervals),
                    _ => merged.push(s.clone()),
                }
            }
            let mut buf = Vec::new();
            encode_tombstones(&stones, &mut buf);
            let mut out = vec![Stone { series_ref: 0, intervals: vec![(1, 2)] }];
            decode_tombstones(&buf, &mut out).unwrap();
            prop_assert_eq!(&out[1..], &merged[..]);
        }

        #[test]
        fn truncated_records_are_refused_not_panics(
            samples in samples_strategy(), series in series_strategy(), cut in any::<usize>()
        ) {
            let mut buf = Vec::new();
            encode_samples(&samples, &mut buf);
            let n = buf.len();
            let c = cut % n;
            if c > 0 {
                let _ = decode_samples(&buf[..c], &mut Vec::new());
            }
            buf.clear();
            encode_series(&series, &mut buf);
            let c = cut % buf.len();
            let _ = decode_series(&buf[..c], &mut Vec::new());
        }

        #[test]
        fn garbage_never_panics(rec in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_series(&rec, &mut Vec::new());
            let _ = decode_samples(&rec, &mut Vec::new());
            let _ = decode_tombstones(&rec, &mut Vec::new());
        }
    }

    #[test]
    fn golden_records_of_spec_9_8() {
        let mut buf = Vec::new();
        encode_series(
            &[RefSeries {
                series_ref: 5,
                labels: Labels::from_pairs([("__name__", "w"), ("a", "1")]).unwrap(),
            }],
            &mut buf,
        );
        let mut want = vec![1, 0, 0, 0, 0, 0, 0, 0, 5, 2, 8];
        want.extend(b"__name__\x01w\x01a\x011");
        assert_eq!(buf, want);

        buf.clear();
        let s = |series_ref, t, v| RefSample {
            series_ref,
            t,
            v,
            st: 0,
        };
        encode_samples(
            &[s(5, 1000, 0.0), s(5, 1010, 1.0), s(3, 1020, 2.0)],
            &mut buf,
        );
        let mut want = vec![2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 3, 0xe8];
        want.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend([0, 0x14, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
        want.extend([0x03, 0x28, 0x40, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(buf, want);
    }

    #[test]
    fn empty_samples_record_is_the_type_byte() {
        let mut buf = Vec::new();
        encode_samples(&[], &mut buf);
        assert_eq!(buf, [SAMPLES]);
        let mut out = Vec::new();
        decode_samples(&buf, &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn stale_nan_is_bit_exact() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let mut buf = Vec::new();
        encode_samples(
            &[RefSample {
                series_ref: 1,
                t: -5,
                v: stale,
                st: 0,
            }],
            &mut buf,
        );
        let mut out = Vec::new();
        decode_samples(&buf, &mut out).unwrap();
        assert_eq!(out[0].v.to_bits(), 0x7ff0_0000_0000_0002);
        assert_eq!(out[0].t, -5);
    }

    #[test]
    fn refusals() {
        let mut out = Vec::new();
        assert!(matches!(
            decode_series(&[SAMPLES], &mut out),
            Err(WalError::BadRecord(_))
        ));
        assert!(matches!(
            decode_samples(&[], &mut Vec::new()),
            Err(WalError::BadRecord(_))
        ));
        // Unsorted labels: b before a.
        let mut rec = vec![SERIES, 0, 0, 0, 0, 0, 0, 0, 1, 2];
        rec.extend(b"\x01b\x011\x01a\x011");
        assert!(matches!(
            decode_series(&rec, &mut out),
            Err(WalError::BadRecord(_))
        ));
        // A huge label count on a short record.
        let rec = [SERIES, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(matches!(
            decode_series(&rec, &mut out),
            Err(WalError::BadRecord(_))
        ));
        // Empty value.
        let mut rec = vec![SERIES, 0, 0, 0, 0, 0, 0, 0, 1, 1];
        rec.extend(b"\x01a\x00");
        assert!(matches!(
            decode_series(&rec, &mut out),
            Err(WalError::BadRecord(_))
        ));
        assert!(out.is_empty());
    }
}
