//! A block's `tombstones` file: deleted time ranges per series, applied when reading and
//! removed for good when the block is rewritten. Layout, as Prometheus's code writes it
//! (spec §7; the upstream markdown is outdated):
//!
//! ```text
//! magic u32 BE 0x0130BA30 | version u8 = 1
//! entries: series ref uvarint | mint varint | maxt varint      (closed [mint, maxt])
//! CRC32C u32 BE of the entries only (not the version byte)
//! ```
//!
//! The empty file is 9 bytes: `01 30 ba 30 01 00 00 00 00`. Entries are written by ascending
//! series ref, each series' intervals in order. Written through `tombstones.tmp`, fsynced,
//! renamed. Reading checks every length and the CRC: a bad file is `Corrupt`, never a panic.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::block::{sync_dir, BlockError};
use crate::encoding::{crc32c, Decbuf, Encbuf};

pub const TOMBSTONES_FILENAME: &str = "tombstones";
pub const MAGIC_TOMBSTONES: u32 = 0x0130_BA30;
pub const TOMBSTONES_FORMAT_V1: u8 = 1;

/// A closed deleted interval `[mint, maxt]`.
pub type Interval = (i64, i64);

/// Deleted intervals by series ref (a block's index ref, or the head's series ref).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    by_series: BTreeMap<u64, Vec<Interval>>,
}

impl Tombstones {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an interval, merging it with the ones it overlaps or touches.
    pub fn add(&mut self, series_ref: u64, iv: Interval) {
        let list = self.by_series.entry(series_ref).or_default();
        add_interval(list, iv);
    }

    pub fn get(&self, series_ref: u64) -> &[Interval] {
        self.by_series
            .get(&series_ref)
            .map_or(&[], |v| v.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.by_series.is_empty()
    }

    /// Number of intervals, `stats.numTombstones`.
    pub fn num_intervals(&self) -> u64 {
        self.by_series.values().map(|v| v.len() as u64).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &[Interval])> {
        self.by_series.iter().map(|(r, v)| (*r, v.as_slice()))
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        let mut e = Encbuf::new(&mut b);
        e.put_be_u32(MAGIC_TOMBSTONES);
        e.put_u8(TOMBSTONES_FORMAT_V1);
        for (r, ivs) in self.iter() {
            for &(mint, maxt) in ivs {
                e.put_uvarint(r);
                e.put_varint(mint);
                e.put_varint(maxt);
            }
        }
        let crc = crc32c(&b[5..]);
        b.extend_from_slice(&crc.to_be_bytes());
        b
    }

    /// Parses a file's bytes; `path` names it in errors.
    pub fn decode(b: &[u8], path: &Path) -> Result<Tombstones, BlockError> {
        let corrupt = |reason: String| BlockError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        if b.len() < 9 {
            return Err(corrupt(format!("{} bytes, shorter than a header", b.len())));
        }
        let mut d = Decbuf::new(b);
        let magic = d.be_u32().map_err(|e| corrupt(e.to_string()))?;
        if magic != MAGIC_TOMBSTONES {
            return Err(corrupt(format!("bad magic {magic:#010x}")));
        }
        let version = d.u8().map_err(|e| corrupt(e.to_string()))?;
        if version != TOMBSTONES_FORMAT_V1 {
            return Err(corrupt(format!("unsupported version {version}")));
        }
        let (entries, crc) = b[5..].split_at(b.len() - 9);
        let want = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32c(entries) != want {
            return Err(corrupt("checksum mismatch".into()));
        }
        let mut d = Decbuf::new(entries);
        let mut t = Tombstones::new();
        while !d.is_empty() {
            let step = (|| {
                Ok::<_, crate::encoding::DecodeError>((d.uvarint()?, d.varint()?, d.varint()?))
            })();
            let (r, mint, maxt) = step.map_err(|e| corrupt(e.to_string()))?;
            t.add(r, (mint, maxt));
        }
        Ok(t)
    }

    pub fn read(block_dir: &Path) -> Result<Tombstones, BlockError> {
        let path = block_dir.join(TOMBSTONES_FILENAME);
        let b = std::fs::read(&path).map_err(BlockError::io("read", &path))?;
        Tombstones::decode(&b, &path)
    }

    /// Writes `<block_dir>/tombstones` through `tombstones.tmp`; returns its size.
    pub fn write(&self, block_dir: &Path) -> Result<u64, BlockError> {
        let path = block_dir.join(TOMBSTONES_FILENAME);
        let tmp = block_dir.join("tombstones.tmp");
        let b = self.encode();
        let mut f = std::fs::File::create(&tmp).map_err(BlockError::io("create", &tmp))?;
        f.write_all(&b).map_err(BlockError::io("write", &tmp))?;
        f.sync_all().map_err(BlockError::io("fsync", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(BlockError::io("rename", &path))?;
        sync_dir(block_dir)?;
        Ok(b.len() as u64)
    }
}

/// Inserts `iv` into a sorted list of disjoint intervals, merging overlapping and adjacent
/// ones, as Prometheus's `Intervals.Add` does.
pub fn add_interval(list: &mut Vec<Interval>, iv: Interval) {
    let (mut lo, mut hi) = iv;
    let mut out = Vec::with_capacity(list.len() + 1);
    let mut placed = false;
    for &(a, b) in list.iter() {
        if b.saturating_add(1) < lo {
            out.push((a, b));
        } else if hi.saturating_add(1) < a {
            if !placed {
                out.push((lo, hi));
                placed = true;
            }
            out.push((a, b));
        } else {
            lo = lo.min(a);
            hi = hi.max(b);
        }
    }
    if !placed {
        out.push((lo, hi));
    }
    out.sort_unstable();
    *list = out;
}

/// Whether `t` lies in one of the (sorted or not) closed intervals.
#[inline]
pub fn is_deleted(t: i64, ivs: &[Interval]) -> bool {
    ivs.iter().any(|&(a, b)| a <= t && t <= b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_empty_and_round_trip() {
        let empty = Tombstones::new().encode();
        assert_eq!(empty, [0x01, 0x30, 0xba, 0x30, 0x01, 0, 0, 0, 0]);
        let mut t = Tombstones::new();
        t.add(3, (10, 20));
        t.add(3, (21, 30)); // adjacent: merged
        t.add(3, (100, 200));
        t.add(1, (-5, 5));
        assert_eq!(t.get(3), [(10, 30), (100, 200)]);
        let b = t.encode();
        assert_eq!(
            b,
            [
                0x01, 0x30, 0xba, 0x30, 0x01, // magic, version
                0x01, 0x09, 0x0a, // ref 1, -5, 5
                0x03, 0x14, 0x3c, // ref 3, 10, 30
                0x03, 0xc8, 0x01, 0x90, 0x03, // ref 3, 100, 200
                0xa5, 0x5c, 0x67, 0x99, // CRC32C of the entries
            ]
        );
        assert_eq!(Tombstones::decode(&b, Path::new("t")).unwrap(), t);
        assert_eq!(t.num_intervals(), 3);
    }

    #[test]
    fn corrupt_files_are_errors() {
        let mut t = Tombstones::new();
        t.add(7, (1, 2));
        let b = t.encode();
        for cut in 0..b.len() {
            assert!(Tombstones::decode(&b[..cut], Path::new("t")).is_err());
        }
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(Tombstones::decode(&c, Path::new("t")).is_err(), "byte {i}");
        }
    }
}
