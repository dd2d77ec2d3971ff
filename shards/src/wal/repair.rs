//! Cutting a WAL at its first corruption: the damaged segment is truncated where its last
//! good record ends and every later segment is deleted, as Prometheus does. What remains is
//! a prefix of the log that reads without error.
//!
//! Repair never skips a bad record to keep what follows it (records after a hole could
//! refer to series the hole created), and it runs only while no writer has the WAL open.

use super::{list_segments, CorruptionPoint, WalError};
use std::fs::{File, OpenOptions};
use std::path::Path;

/// What a repair dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// The segment cut and the length it was cut to.
    pub truncated: Option<CorruptionPoint>,
    /// Segments deleted because they came after the corruption, in index order.
    pub deleted_segments: Vec<u64>,
    /// Bytes dropped in all: the cut tail and the deleted segments.
    pub bytes_dropped: u64,
}

/// Truncates the segment of `at` at `at.offset` and deletes the segments after it.
/// Only I/O failures are errors; a point beyond the end of the log drops nothing.
pub fn repair(dir: &Path, at: CorruptionPoint) -> Result<RepairReport, WalError> {
    let mut report = RepairReport::default();
    // Newest first, so that an interrupted repair still leaves a log without holes.
    for s in list_segments(dir)?.iter().rev() {
        if s.index > at.segment {
            let len = std::fs::metadata(&s.path)
                .map_err(|e| WalError::io("repairing WAL: reading size of", &s.path, e))?
                .len();
            std::fs::remove_file(&s.path)
                .map_err(|e| WalError::io("repairing WAL: deleting", &s.path, e))?;
            report.deleted_segments.push(s.index);
            report.bytes_dropped += len;
        } else if s.index == at.segment {
            let f = OpenOptions::new()
                .write(true)
                .open(&s.path)
                .map_err(|e| WalError::io("repairing WAL: opening", &s.path, e))?;
            let len = f
                .metadata()
                .map_err(|e| WalError::io("repairing WAL: reading size of", &s.path, e))?
                .len();
            if len > at.offset {
                f.set_len(at.offset)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| WalError::io("repairing WAL: truncating", &s.path, e))?;
                report.bytes_dropped += len - at.offset;
                report.truncated = Some(at);
            }
        }
    }
    report.deleted_segments.reverse();
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("repairing WAL: syncing directory", dir, e))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::page::{page_room, record_fits, FRAGMENT_HEADER_SIZE, PAGE_SIZE};
    use crate::wal::reader::tests::{build_segments, read_all, records_strategy, write_segments};
    use crate::wal::segment_name;
    use proptest::prelude::*;

    const SEGMENT: u64 = 4 * PAGE_SIZE as u64;

    /// Per record, the segment (position in the list) and the offset where its last fragment
    /// ends, following the writer's rules independently of `append_record`.
    fn record_ends(records: &[Vec<u8>]) -> Vec<(usize, u64)> {
        let (mut seg, mut off) = (0, 0u64);
        let mut ends = Vec::new();
        for r in records {
            if off > 0 && !record_fits(r.len(), off, SEGMENT) {
                seg += 1;
                off = 0;
            }
            if page_room(off) < FRAGMENT_HEADER_SIZE {
                off += page_room(off) as u64;
            }
            let mut rest = r.len();
            loop {
                let n = rest.min(page_room(off) - FRAGMENT_HEADER_SIZE);
                off += (FRAGMENT_HEADER_SIZE + n) as u64;
                rest -= n;
                if rest == 0 {
                    break;
                }
            }
            ends.push((seg, off));
        }
        ends
    }

    /// Offsets of fragment type bytes in a segment.
    fn type_bytes(seg: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < seg.len() {
            let room = page_room(pos as u64);
            if room < FRAGMENT_HEADER_SIZE || seg[pos] == 0 {
                pos += room;
                continue;
            }
            out.push(pos);
            pos += FRAGMENT_HEADER_SIZE + u16::from_be_bytes([seg[pos + 1], seg[pos + 2]]) as usize;
        }
        out
    }

    /// Damages a written log, reads it, repairs, and checks the re-read log is exactly the
    /// records ending before the damage.
    fn check_damage(records: &[Vec<u8>], seg: usize, at: u64, damage: impl Fn(&Path)) {
        let segments = build_segments(records, SEGMENT, 0);
        let dir = tempfile::tempdir().unwrap();
        write_segments(dir.path(), 7, &segments);
        damage(dir.path());
        let ends = record_ends(records);
        let survivors = ends
            .iter()
            .take_while(|&&(k, end)| k < seg || (k == seg && end <= at))
            .count();

        let (got, err) = read_all(dir.path());
        assert_eq!(got, records[..got.len()]);
        if let Some(err) = err {
            let point = err.corruption_point().unwrap_or_else(|| panic!("{err}"));
            repair(dir.path(), point).unwrap();
        }
        let (got, err) = read_all(dir.path());
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got.len(), survivors);
        assert_eq!(got, records[..survivors]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn truncation_anywhere_repairs_to_a_prefix(
            records in records_strategy(3 * PAGE_SIZE), pick in any::<u64>()
        ) {
            let segments = build_segments(&records, SEGMENT, 0);
            let total: u64 = segments.iter().map(|s| s.len() as u64).sum();
            prop_assume!(total > 0);
            let mut cut = pick % total;
            let mut seg = 0;
            while cut > segments[seg].len() as u64 {
                cut -= segments[seg].len() as u64;
                seg += 1;
            }
            check_damage(&records, seg, cut, |dir| {
                let path = dir.join(segment_name(7 + seg as u64));
                let f = OpenOptions::new().write(true).open(path).unwrap();
                f.set_len(cut).unwrap();
                for later in seg + 1..segments.len() {
                    std::fs::remove_file(dir.join(segment_name(7 + later as u64))).unwrap();
                }
            });
        }

        #[test]
        fn a_corrupt_byte_repairs_to_the_records_before_it(
            records in records_strategy(3 * PAGE_SIZE), pick in any::<u64>(), mask in 1u8..
        ) {
            let segments = build_segments(&records, SEGMENT, 0);
            let total: u64 = segments.iter().map(|s| s.len() as u64).sum();
            prop_assume!(total > 0);
            let mut at = pick % total;
            let mut seg = 0;
            while at >= segments[seg].len() as u64 {
                at -= segments[seg].len() as u64;
                seg += 1;
            }
            // The compression bits of a fragment's type byte are not covered by its CRC (in
            // Prometheus's format too): flipping them is not a detectable corruption.
            let mut mask = mask;
            if type_bytes(&segments[seg]).contains(&(at as usize)) {
                mask &= 0b1110_0111;
                prop_assume!(mask != 0);
            }
            check_damage(&records, seg, at, |dir| {
                let path = dir.join(segment_name(7 + seg as u64));
                let mut bytes = std::fs::read(&path).unwrap();
                bytes[at as usize] ^= mask;
                std::fs::write(&path, bytes).unwrap();
            });
        }
    }

    #[test]
    fn report_counts_what_was_dropped() {
        let records: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; PAGE_SIZE]).collect();
        let segments = build_segments(&records, SEGMENT, 0);
        assert_eq!(segments.len(), 4);
        let dir = tempfile::tempdir().unwrap();
        write_segments(dir.path(), 0, &segments);
        let at = CorruptionPoint {
            segment: 1,
            offset: 100,
        };
        let report = repair(dir.path(), at).unwrap();
        assert_eq!(report.truncated, Some(at));
        assert_eq!(report.deleted_segments, [2, 3]);
        let total: u64 = segments[1..].iter().map(|s| s.len() as u64).sum();
        assert_eq!(report.bytes_dropped, total - 100);
        // Nothing more to drop the second time.
        let again = repair(dir.path(), at).unwrap();
        assert_eq!(again, RepairReport::default());
    }
}
