//! The head snapshot written on clean shutdown, in Prometheus's `chunk_snapshot` format,
//! so that a clean restart loads series and open chunks directly instead of replaying the
//! WAL. Prometheus 2.42 reads it with `--enable-feature=memory-snapshot-on-shutdown`.
//!
//! A snapshot is a directory `chunk_snapshot.SSSSSS.OOOOOOOOOO` (the WAL segment and byte
//! offset it covers up to) holding ordinary WAL segments, written to `<name>.tmp` and
//! renamed when complete. Its records (this file encodes and decodes them; the shard does
//! the I/O):
//!
//! ```text
//! series:     0x01 | ref u64 BE | #labels uvarint | (name, value) uvarint strings
//!             | 0 i64 BE (was the chunk range)
//!             | has_chunk uvarint (0 or 1)
//!             [ mint i64 BE | maxt i64 BE | encoding u8 | chunk bytes uvarint-prefixed
//!               | 3 x (0 i64 BE, 0 f64 BE) | 0 i64 BE | last value f64 BE ]
//! tombstones: 0x02 | uvarint-prefixed bytes of Prometheus's `tombstones.Encode`:
//!             version 0x01, then (ref uvarint, mint varint, maxt varint)* — unlike the
//!             tombstones file, no magic and no checksum
//! ```
//!
//! The WAL is not truncated by a snapshot: it stays the source of truth, and a Prometheus
//! without the snapshot feature simply replays it.

use std::path::{Path, PathBuf};

use crate::chunkenc::{Encoding, FloatChunk};
use crate::encoding::{Decbuf, DecodeError, Encbuf};
use smallvec::SmallVec;

use crate::labels::LabelsError;

use super::{Head, Interval};

pub const SERIES_RECORD: u8 = 1;
pub const TOMBSTONES_RECORD: u8 = 2;
pub const EXEMPLARS_RECORD: u8 = 3;

const TOMBSTONES_FORMAT_V1: u8 = 1;
const PREFIX: &str = "chunk_snapshot.";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot record truncated or malformed: {0}")]
    Decode(#[from] DecodeError),
    #[error("snapshot record: {0}")]
    Invalid(String),
}

/// Sorted (name, value) pairs borrowed from a record; inline up to 16 labels, so that
/// decoding a series allocates nothing for its labels.
pub type LabelPairs<'a> = SmallVec<[(&'a str, &'a str); 16]>;

/// One series as the snapshot holds it, its labels borrowed from the record.
pub struct SnapshotSeries<'a> {
    pub series_ref: u64,
    pub labels: LabelPairs<'a>,
    /// The open chunk: its min time and the chunk.
    pub head_chunk: Option<(i64, FloatChunk)>,
}

/// The directory name of a snapshot covering the WAL up to `segment`/`offset`.
pub fn dir_name(segment: u64, offset: u64) -> String {
    format!("{PREFIX}{segment:06}.{offset:010}")
}

/// The newest complete snapshot in `shard_dir`, with the WAL position it covers.
pub fn last_snapshot(shard_dir: &Path) -> std::io::Result<Option<(PathBuf, u64, u64)>> {
    let mut best: Option<(PathBuf, u64, u64)> = None;
    for e in std::fs::read_dir(shard_dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(pos) = name.to_str().and_then(parse_dir_name) else {
            continue;
        };
        if !e.file_type()?.is_dir() {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|(_, s, o)| (pos.0, pos.1) > (*s, *o))
        {
            best = Some((e.path(), pos.0, pos.1));
        }
    }
    Ok(best)
}

/// Every snapshot directory (complete or `.tmp`) older than `keep`, to be deleted.
pub fn stale_snapshots(shard_dir: &Path, keep: Option<&Path>) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(shard_dir)? {
        let p = e?.path();
        let is_snapshot = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(PREFIX));
        if is_snapshot && Some(p.as_path()) != keep {
            out.push(p);
        }
    }
    Ok(out)
}

fn parse_dir_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (seg, off) = rest.split_once('.')?;
    Some((seg.parse().ok()?, off.parse().ok()?))
}

/// Appends the snapshot record of series `r` to `buf`.
pub fn encode_series(head: &Head, r: u64, buf: &mut Vec<u8>) {
    let Some(s) = head.series(r) else { return };
    let mut e = Encbuf::new(buf);
    e.put_u8(SERIES_RECORD);
    e.put_be_u64(r);
    e.put_uvarint(s.labels().len() as u64);
    for (n, v) in s.labels() {
        e.put_uvarint_str(head.symbols().resolve(n));
        e.put_uvarint_str(head.symbols().resolve(v));
    }
    e.put_be_i64(0);
    match s.head_chunk() {
        Some(c) if c.num_samples() > 0 => {
            e.put_uvarint(1);
            let min_time = s.head_chunk_min_time();
            e.put_be_i64(min_time);
            e.put_be_i64(c.last_time().unwrap_or(min_time));
            e.put_u8(c.encoding().as_u8());
            e.put_uvarint_bytes(c.bytes());
            for _ in 0..3 {
                e.put_be_i64(0);
                e.put_be_f64(0.0);
            }
            e.put_be_i64(0);
            e.put_be_f64(c.last_value().unwrap_or(0.0));
        }
        _ => e.put_uvarint(0),
    }
}

pub fn decode_series(rec: &[u8]) -> Result<SnapshotSeries<'_>, SnapshotError> {
    let mut d = Decbuf::new(rec);
    if d.u8()? != SERIES_RECORD {
        return Err(SnapshotError::Invalid("not a series record".into()));
    }
    let series_ref = d.be_u64()?;
    let n = d.uvarint()?;
    let mut labels = LabelPairs::new();
    for _ in 0..n {
        let name = d.uvarint_str()?;
        let value = d.uvarint_str()?;
        // The checks of `Labels::from_sorted_unchecked`: names strictly ascending.
        if let Some(&(prev, _)) = labels.last() {
            if prev >= name {
                let e = if prev == name {
                    LabelsError::DuplicateName(name.to_string())
                } else {
                    LabelsError::InvalidName(name.to_string())
                };
                return Err(SnapshotError::Invalid(e.to_string()));
            }
        }
        labels.push((name, value));
    }
    let _chunk_range = d.be_i64()?;
    let head_chunk = match d.uvarint()? {
        0 => None,
        1 => {
            let mint = d.be_i64()?;
            let _maxt = d.be_i64()?;
            let enc = d.u8()?;
            let enc = match Encoding::from_u8(enc) {
                Ok(e @ (Encoding::Xor | Encoding::Xor2)) => e,
                _ => {
                    return Err(SnapshotError::Invalid(format!(
                        "unsupported chunk encoding {enc}"
                    )))
                }
            };
            let bytes = d.uvarint_bytes()?.to_vec();
            d.skip(3 * 16 + 16)?;
            let chunk = FloatChunk::from_bytes(enc, bytes)
                .map_err(|e| SnapshotError::Invalid(e.to_string()))?;
            Some((mint, chunk))
        }
        other => {
            return Err(SnapshotError::Invalid(format!(
                "bad head chunk flag {other}"
            )))
        }
    };
    if !d.is_empty() {
        return Err(SnapshotError::Invalid(format!(
            "{} bytes left in series record",
            d.remaining()
        )));
    }
    Ok(SnapshotSeries {
        series_ref,
        labels,
        head_chunk,
    })
}

/// Appends the tombstones record (always written, empty or not) to `buf`.
pub fn encode_tombstones(head: &Head, buf: &mut Vec<u8>) {
    let mut stones: Vec<(u64, &[Interval])> = head.tombstones().collect();
    stones.sort_by_key(|(r, _)| *r);
    let mut body = vec![TOMBSTONES_FORMAT_V1];
    let mut e = Encbuf::new(&mut body);
    for (r, ivs) in stones {
        for &(a, b) in ivs {
            e.put_uvarint(r);
            e.put_varint(a);
            e.put_varint(b);
        }
    }
    let mut e = Encbuf::new(buf);
    e.put_u8(TOMBSTONES_RECORD);
    e.put_uvarint_bytes(&body);
}

/// The (ref, interval) entries of a tombstones record.
pub fn decode_tombstones(rec: &[u8]) -> Result<Vec<(u64, Interval)>, SnapshotError> {
    let mut d = Decbuf::new(rec);
    if d.u8()? != TOMBSTONES_RECORD {
        return Err(SnapshotError::Invalid("not a tombstones record".into()));
    }
    let mut d = Decbuf::new(d.uvarint_bytes()?);
    if d.u8()? != TOMBSTONES_FORMAT_V1 {
        return Err(SnapshotError::Invalid("unknown tombstones format".into()));
    }
    let mut out = Vec::new();
    while !d.is_empty() {
        out.push((d.uvarint()?, (d.varint()?, d.varint()?)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::{AppendBatch, BatchSample, HeadOptions, Prepared, SeriesKey};
    use crate::labels::Labels;

    #[test]
    fn names() {
        assert_eq!(dir_name(3, 32768), "chunk_snapshot.000003.0000032768");
        assert_eq!(
            parse_dir_name("chunk_snapshot.000003.0000032768"),
            Some((3, 32768))
        );
        assert_eq!(parse_dir_name("chunk_snapshot.000003.0000032768.tmp"), None);
    }

    #[test]
    fn empty_tombstones_record_is_prometheus_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let (head, _) = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let mut b = Vec::new();
        encode_tombstones(&head, &mut b);
        assert_eq!(b, [2, 1, 1]);
        assert!(decode_tombstones(&b).unwrap().is_empty());
    }

    #[test]
    fn series_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (mut head, _) = Head::open(dir.path(), HeadOptions::default()).unwrap();
        let l = Labels::from_pairs([("__name__", "x"), ("a", "b")]).unwrap();
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let b = AppendBatch {
            new_series: vec![l.clone()],
            samples: vec![
                BatchSample {
                    series: SeriesKey::New(0),
                    t: 1000,
                    v: 1.0,
                },
                BatchSample {
                    series: SeriesKey::New(0),
                    t: 2000,
                    v: stale,
                },
            ],
            start_timestamps: Vec::new(),
        };
        let mut p = Prepared::default();
        head.prepare(&b, &mut p).unwrap();
        head.commit(&mut p).unwrap();
        head.add_tombstone(1, (5, 7));
        let mut rec = Vec::new();
        encode_series(&head, 1, &mut rec);
        let s = decode_series(&rec).unwrap();
        assert_eq!(s.series_ref, 1);
        let want: Vec<(&str, &str)> = l
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(s.labels.as_slice(), want.as_slice());
        let (mint, c) = s.head_chunk.unwrap();
        assert_eq!(mint, 1000);
        let got: Vec<(i64, u64)> = c.iter().map(|(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got, [(1000, 1f64.to_bits()), (2000, stale.to_bits())]);
        let mut t = Vec::new();
        encode_tombstones(&head, &mut t);
        assert_eq!(decode_tombstones(&t).unwrap(), [(1, (5, 7))]);
    }
}
