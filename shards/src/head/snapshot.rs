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

use crate::labels::{series_hash, LabelsError};
use xxhash_rust::xxh64::xxh64;

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
    /// `series_hash` of `labels`, taken from the record's bytes (see `span_hash`).
    pub hash: u64,
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
    let (labels, hash) = decode_labels(&mut d)?;
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
        hash,
        head_chunk,
    })
}

/// The label pairs of a series record (`#labels` then uvarint-prefixed strings), checked
/// as `Labels::from_sorted_unchecked` checks them: names strictly ascending; and their
/// `series_hash`.
///
/// The strings are checked for UTF-8 in one pass over all of them rather than one call
/// each: a series' dozen short strings cost more in per-call overhead than in checking.
/// When every length prefix is one byte (strings under 128 bytes, a byte below 0x80),
/// each string begins right after and ends right before an ASCII byte (or the end of the
/// span), so each is valid UTF-8 when the span is, and slicing it is on char boundaries.
/// Otherwise (a longer string, or invalid bytes to name in the error) each is checked
/// alone.
fn decode_labels<'a>(d: &mut Decbuf<'a>) -> Result<(LabelPairs<'a>, u64), SnapshotError> {
    let n = d.uvarint()?;
    let span = d.rest();
    let mut spans: SmallVec<[[(usize, usize); 2]; 16]> = SmallVec::new();
    let mut short = true;
    for _ in 0..n {
        let mut pair = [(0, 0); 2];
        for s in &mut pair {
            let len = d.uvarint()?;
            short &= len < 0x80;
            let start = span.len() - d.remaining();
            d.skip(usize::try_from(len).map_err(|_| DecodeError::UnexpectedEof)?)?;
            *s = (start, span.len() - d.remaining());
        }
        spans.push(pair);
    }
    let span = &span[..span.len() - d.remaining()];
    let text = if short {
        std::str::from_utf8(span).ok()
    } else {
        None
    };
    let string = |(a, b): (usize, usize)| -> Result<&'a str, SnapshotError> {
        let s = match text {
            Some(t) => t.get(a..b),
            None => std::str::from_utf8(&span[a..b]).ok(),
        };
        s.ok_or(SnapshotError::Decode(DecodeError::InvalidUtf8))
    };
    let mut labels = LabelPairs::new();
    for &[n, v] in &spans {
        let name = string(n)?;
        let value = string(v)?;
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
    let hash = match short {
        true => span_hash(span, spans.iter().flatten().copied()),
        false => None,
    };
    let hash = hash.unwrap_or_else(|| series_hash(labels.iter().copied()));
    Ok((labels, hash))
}

/// Longest label span hashed from the stack; longer ones are hashed pair by pair.
const SPAN_HASH_MAX: usize = 512;

/// `series_hash` of a record's labels from their span (`len name len value ...`, every
/// length one byte) and where each string starts and ends in it.
///
/// `series_hash` hashes `name 0xff value 0xff ...`; the span is the same bytes but that
/// each string is preceded by its length byte instead of followed by 0xff. So the span
/// from its second byte on, with the byte before each later string (its length) set to
/// 0xff and one 0xff after the last, is exactly that input: one copy of the span and a
/// store per string instead of two appends per string. `None` when the span is too long
/// for the buffer, or when a length took more than one byte (a uvarint below 128 written
/// in two, which no writer does but a decoder accepts).
fn span_hash(span: &[u8], strings: impl Iterator<Item = (usize, usize)>) -> Option<u64> {
    let Some(rest) = span.get(1..) else {
        return Some(series_hash(std::iter::empty()));
    };
    if span.len() > SPAN_HASH_MAX {
        return None;
    }
    // Not zeroed: every byte is written before it is hashed.
    let mut buf: SmallVec<[u8; SPAN_HASH_MAX]> = SmallVec::new();
    buf.extend_from_slice(rest);
    buf.push(0xff);
    let mut end = 0;
    for (a, b) in strings {
        if a != end + 1 {
            return None;
        }
        // The length byte at `a - 1` of the span is at `a - 2` of the buffer.
        if let Some(at) = a.checked_sub(2) {
            buf[at] = 0xff;
        }
        end = b;
    }
    (end == span.len()).then(|| xxh64(&buf, 0))
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
    use proptest::prelude::*;

    /// The label span of a series record for these raw (name, value) byte strings.
    fn label_record(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        let mut e = Encbuf::new(&mut b);
        e.put_uvarint(pairs.len() as u64);
        for (n, v) in pairs {
            e.put_uvarint_bytes(n);
            e.put_uvarint_bytes(v);
        }
        b
    }

    /// What checking each string alone gives: the pairs, or `None` for a refused record.
    fn one_by_one(pairs: &[(Vec<u8>, Vec<u8>)]) -> Option<Vec<(String, String)>> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (n, v) in pairs {
            let n = std::str::from_utf8(n).ok()?;
            let v = std::str::from_utf8(v).ok()?;
            if out.last().is_some_and(|(p, _)| p.as_str() >= n) {
                return None;
            }
            out.push((n.to_string(), v.to_string()));
        }
        Some(out)
    }

    proptest! {
        /// Checking the whole span at once accepts and refuses exactly what checking each
        /// string does: multi-byte and invalid UTF-8, strings split inside a character,
        /// long strings (two-byte length prefixes), unsorted names.
        #[test]
        fn labels_checked_at_once_as_one_by_one(
            pairs in proptest::collection::vec(
                (
                    proptest::collection::vec(prop_oneof![
                        4 => b'a'..=b'e',
                        1 => any::<u8>(),
                    ], 0..4),
                    prop_oneof![
                        3 => proptest::collection::vec(b'x'..=b'z', 0..6),
                        1 => "[a-zé€𝄞]{0,5}".prop_map(String::into_bytes),
                        1 => proptest::collection::vec(any::<u8>(), 0..4),
                        1 => proptest::collection::vec(b'v'..=b'w', 120..140),
                    ],
                ),
                0..6,
            ),
            sort in any::<bool>(),
        ) {
            let mut pairs = pairs;
            if sort {
                pairs.sort();
                pairs.dedup_by(|a, b| a.0 == b.0);
            }
            let rec = label_record(&pairs);
            let decoded = decode_labels(&mut Decbuf::new(&rec)).ok();
            if let Some((l, hash)) = &decoded {
                prop_assert_eq!(*hash, series_hash(l.iter().copied()));
            }
            let got = decoded.map(|(l, _)| {
                l.iter().map(|&(n, v)| (n.to_string(), v.to_string())).collect::<Vec<_>>()
            });
            prop_assert_eq!(got, one_by_one(&pairs));
        }
    }

    /// A length below 128 written in two bytes (accepted by the decoder) moves the strings
    /// off the places the in-place hash expects: it falls back to hashing the pairs.
    #[test]
    fn two_byte_length_is_hashed_pair_by_pair() {
        let rec = [2, 1, b'a', 0x81, 0x00, b'b', 1, b'c', 1, b'd'];
        let (l, hash) = decode_labels(&mut Decbuf::new(&rec)).unwrap();
        assert_eq!(l.as_slice(), [("a", "b"), ("c", "d")]);
        assert_eq!(hash, series_hash([("a", "b"), ("c", "d")]));
        let (_, empty) = decode_labels(&mut Decbuf::new(&[0])).unwrap();
        assert_eq!(empty, series_hash([]));
    }

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
