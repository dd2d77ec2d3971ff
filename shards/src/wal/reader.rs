//! Reading a WAL (or checkpoint) directory back, record by record: fragments are checked
//! (type sequence, page bounds, CRC32C), reassembled, and snappy-decompressed when flagged.
//!
//! Reading happens at start-up, before the shard's executor serves anything, and in the
//! slices of a WAL checkpoint. Segments are mapped read-only rather than copied: a restart
//! reads a snapshot of a whole head (over 100 MB a shard at 500k series), and copying it
//! cost a fresh buffer's page faults and zeroing as well as the copy. Nothing truncates a
//! segment while a reader maps it (`repair` runs after the reader is dropped; the writer
//! only appends to the segment it writes, which readers of a running WAL never read). The
//! reader never repairs and never skips: the first anomaly ends the read with
//! `WalError::Corruption` located at the end of the last good record, which is exactly where
//! `repair` cuts.
//! Records that span pages are copied once into a reassembly buffer; single-fragment
//! records are returned in place.

use super::page::{
    page_room, FragmentType, FRAGMENT_HEADER_SIZE, RESERVED_BITS, SNAPPY_FLAG, ZSTD_FLAG,
};
use super::{list_segments, SegmentRef, WalError};
use crate::encoding::crc32c;
use memmap2::{Advice, Mmap};
use std::ops::Range;
use std::path::Path;

/// Reads the records of consecutive segments in order. A lending iterator: each record
/// borrows the reader until the next call.
pub struct WalReader {
    segments: Vec<SegmentRef>,
    /// Position in `segments` of the next segment to load.
    next: usize,
    /// Index of the segment whose bytes are in `data`, while records remain in it.
    current: Option<u64>,
    /// Index of the last segment loaded, for gap detection and positions.
    loaded: Option<u64>,
    /// The loaded segment's bytes; `None` for an empty file (which cannot be mapped).
    data: Option<Mmap>,
    /// End of the last record read, in the loaded segment.
    pos: usize,
    record_start: usize,
    start_offset: u64,
    assembled: Vec<u8>,
    decompressed: Vec<u8>,
    snappy: snap::raw::Decoder,
}

impl WalReader {
    /// Every segment of `dir`, a WAL or a checkpoint directory.
    pub fn open(dir: &Path) -> Result<Self, WalError> {
        Ok(Self::from_segments(list_segments(dir)?))
    }

    /// The segments `first..=last` of `dir` that exist. A missing segment between two
    /// present ones is reported as corruption when the reader gets there.
    pub fn open_range(dir: &Path, first: u64, last: u64) -> Result<Self, WalError> {
        let mut segments = list_segments(dir)?;
        segments.retain(|s| (first..=last).contains(&s.index));
        Ok(Self::from_segments(segments))
    }

    /// The given segments, which must be sorted by index.
    pub fn from_segments(segments: Vec<SegmentRef>) -> Self {
        WalReader {
            segments,
            next: 0,
            current: None,
            loaded: None,
            data: None,
            pos: 0,
            record_start: 0,
            start_offset: 0,
            assembled: Vec::new(),
            decompressed: Vec::new(),
            snappy: snap::raw::Decoder::new(),
        }
    }

    /// Starts reading the first segment at `offset`, a record boundary (such as the WAL
    /// position a head snapshot was taken at).
    pub fn with_start_offset(mut self, offset: u64) -> Self {
        self.start_offset = offset;
        self
    }

    /// The next record, `None` at the end of the last segment.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, WalError> {
        loop {
            match self.advance()? {
                Some(found) => return self.record_bytes(found).map(Some),
                None => {
                    if !self.load_next()? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// `next_record` without opening a file: `Next::Load` when the next record lies in a
    /// segment not loaded yet, which `load_next_segment` then maps (opening and mapping a
    /// file blocks, so a caller on an executor runs it on another thread; the mapping asks
    /// for the whole segment to be read ahead there, so the records' page faults on the
    /// executor find it in the page cache).
    pub fn next_loaded_record(&mut self) -> Result<Next<'_>, WalError> {
        match self.advance()? {
            Some(found) => self.record_bytes(found).map(Next::Record),
            None if self.next < self.segments.len() => Ok(Next::Load),
            None => Ok(Next::End),
        }
    }

    /// Maps the next segment and starts reading it ahead; false when there is none.
    pub fn load_next_segment(&mut self) -> Result<bool, WalError> {
        let loaded = self.load_next()?;
        if let Some(map) = &self.data {
            // Only a hint: without it the records are still read, by page faults.
            let _ = map.advise(Advice::WillNeed);
        }
        Ok(loaded)
    }

    /// Finds the next record in the loaded segment; `None` when it has no more (or none is
    /// loaded).
    fn advance(&mut self) -> Result<Option<Found>, WalError> {
        let Some(segment) = self.current else {
            return Ok(None);
        };
        let start = self.pos;
        let data: &[u8] = self.data.as_deref().unwrap_or_default();
        match next_fragmented(data, &mut self.pos, &mut self.assembled) {
            Ok(Some(found)) => {
                self.record_start = start;
                Ok(Some(found))
            }
            Ok(None) => {
                self.current = None;
                Ok(None)
            }
            Err(e) => {
                self.pos = start;
                Err(match e {
                    FragmentError::Corrupt(reason) => WalError::Corruption {
                        segment,
                        offset: start as u64,
                        reason,
                    },
                    FragmentError::Zstd(flags) => WalError::UnsupportedCompression {
                        segment,
                        offset: start as u64,
                        flags,
                    },
                })
            }
        }
    }

    /// The bytes of the record `advance` found, decompressed if flagged.
    fn record_bytes(&mut self, found: Found) -> Result<&[u8], WalError> {
        let start = self.record_start;
        let segment = self.current.unwrap_or_default();
        let corrupt = |reason: String| WalError::Corruption {
            segment,
            offset: start as u64,
            reason,
        };
        let (bytes, flags) = match found {
            Found::InPlace(range, flags) => {
                let data: &[u8] = self.data.as_deref().unwrap_or_default();
                (&data[range], flags)
            }
            Found::Assembled(flags) => (&self.assembled[..], flags),
        };
        if flags & SNAPPY_FLAG == 0 {
            return Ok(bytes);
        }
        let len = match snap::raw::decompress_len(bytes) {
            Ok(len) => len,
            Err(e) => {
                self.pos = start;
                return Err(corrupt(format!("snappy-compressed record: {e}")));
            }
        };
        // Snappy expands at most ~21x: a larger claim is garbage and must not allocate.
        if len > bytes.len().saturating_mul(32) + 64 {
            self.pos = start;
            return Err(corrupt(format!(
                "snappy-compressed record of {} bytes claims {len} bytes",
                bytes.len()
            )));
        }
        self.decompressed.clear();
        self.decompressed.resize(len, 0);
        match self.snappy.decompress(bytes, &mut self.decompressed) {
            Ok(n) => self.decompressed.truncate(n),
            Err(e) => {
                self.pos = start;
                return Err(corrupt(format!("snappy-compressed record: {e}")));
            }
        }
        Ok(&self.decompressed)
    }

    /// The segment of the last record read (or being read).
    pub fn segment(&self) -> Option<u64> {
        self.loaded
    }

    /// The offset just after the last record read, in `segment()`.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// Turns an error decoding the last record read (`WalError::BadRecord`) into a corruption
    /// located at the start of that record, so that `repair` drops it and what follows.
    pub fn record_corruption(&self, err: WalError) -> WalError {
        match (err, self.loaded) {
            (WalError::BadRecord(reason), Some(segment)) => WalError::Corruption {
                segment,
                offset: self.record_start as u64,
                reason,
            },
            (err, _) => err,
        }
    }

    /// Loads the next segment; false when there is none.
    fn load_next(&mut self) -> Result<bool, WalError> {
        let Some(s) = self.segments.get(self.next) else {
            return Ok(false);
        };
        if let Some(prev) = self.loaded {
            if s.index != prev + 1 {
                return Err(WalError::Corruption {
                    segment: prev,
                    offset: self.loaded_len(),
                    reason: format!(
                        "segment {:08} is missing (next present: {:08})",
                        prev + 1,
                        s.index
                    ),
                });
            }
        }
        self.data = None;
        self.data = map_segment(&s.path)?;
        self.pos = 0;
        let len = self.loaded_len();
        if self.next == 0 && self.start_offset > 0 {
            if self.start_offset > len {
                return Err(WalError::Corruption {
                    segment: s.index,
                    offset: len,
                    reason: format!(
                        "segment is shorter than the start offset {}",
                        self.start_offset
                    ),
                });
            }
            self.pos = self.start_offset as usize;
        }
        self.record_start = self.pos;
        self.current = Some(s.index);
        self.loaded = Some(s.index);
        self.next += 1;
        Ok(true)
    }

    fn loaded_len(&self) -> u64 {
        self.data.as_ref().map_or(0, |m| m.len() as u64)
    }
}

/// Maps a segment file for reading; `None` when it is empty.
fn map_segment(path: &Path) -> Result<Option<Mmap>, WalError> {
    let io = |e| WalError::io("reading WAL segment", path, e);
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.len() == 0 {
        return Ok(None);
    }
    // SAFETY: the file is not truncated while mapped (see the module comment), so every
    // byte of the mapping stays readable; the bytes are only read, and checked by CRC.
    let map = unsafe { Mmap::map(&file) }.map_err(io)?;
    // Readahead of a file not in the page cache; advice is only a hint.
    let _ = map.advise(Advice::Sequential);
    Ok(Some(map))
}

/// What `WalReader::next_loaded_record` found.
#[derive(Debug)]
pub enum Next<'a> {
    Record(&'a [u8]),
    /// The next record lies in a segment not loaded yet.
    Load,
    /// No record is left.
    End,
}

/// Where the record just read lies, and its compression flags.
#[derive(Debug)]
enum Found {
    InPlace(Range<usize>, u8),
    Assembled(u8),
}

#[derive(Debug)]
enum FragmentError {
    Corrupt(String),
    Zstd(u8),
}

/// Reads the record starting at `*pos` of a segment's bytes, skipping page padding before
/// it, and advances `*pos` past it. `Ok(None)` at a clean end of the segment.
fn next_fragmented(
    data: &[u8],
    pos: &mut usize,
    assembled: &mut Vec<u8>,
) -> Result<Option<Found>, FragmentError> {
    let corrupt = |s: String| Err(FragmentError::Corrupt(s));
    // Compression flags of the record being assembled, if one is.
    let mut open: Option<u8> = None;
    loop {
        let at = *pos;
        if at == data.len() {
            if open.is_some() {
                return corrupt("record cut short at the end of the segment".into());
            }
            return Ok(None);
        }
        let room = page_room(at as u64);
        let head = data[at];
        let Some(typ) = FragmentType::from_header_byte(head) else {
            return corrupt(format!("invalid fragment type {}", head & 0b111));
        };
        if typ == FragmentType::PageTerm {
            // Everything to the page end must be zeros, the type byte included, and the page
            // must be complete: zeros up to the end of the file are a torn page.
            if open.is_some() {
                return corrupt("page padding inside a record".into());
            }
            let page_end = at + room;
            if page_end > data.len() {
                return corrupt(format!(
                    "torn page: segment ends at {} inside the page ending at {page_end}",
                    data.len()
                ));
            }
            if let Some(i) = data[at..page_end].iter().position(|&b| b != 0) {
                return corrupt(format!("non-zero byte at {} in page padding", at + i));
            }
            *pos = page_end;
            continue;
        }
        if head & RESERVED_BITS != 0 {
            return corrupt(format!(
                "reserved bits set in fragment type byte {head:#04x}"
            ));
        }
        if head & ZSTD_FLAG != 0 {
            return Err(FragmentError::Zstd(head));
        }
        if room < FRAGMENT_HEADER_SIZE {
            return corrupt("fragment header crosses a page boundary".into());
        }
        if data.len() - at < FRAGMENT_HEADER_SIZE {
            return corrupt("fragment header cut short at the end of the segment".into());
        }
        let len = u16::from_be_bytes([data[at + 1], data[at + 2]]) as usize;
        let crc = u32::from_be_bytes([data[at + 3], data[at + 4], data[at + 5], data[at + 6]]);
        if len > room - FRAGMENT_HEADER_SIZE {
            return corrupt(format!(
                "fragment of {len} bytes crosses a page boundary ({room} bytes left in page)"
            ));
        }
        let body = at + FRAGMENT_HEADER_SIZE..at + FRAGMENT_HEADER_SIZE + len;
        if body.end > data.len() {
            return corrupt("fragment cut short at the end of the segment".into());
        }
        let part = &data[body.clone()];
        let actual = crc32c(part);
        if actual != crc {
            return corrupt(format!(
                "fragment checksum mismatch: stored {crc:08x}, computed {actual:08x}"
            ));
        }
        let flags = head & SNAPPY_FLAG;
        if open.is_some_and(|f| f != flags) {
            return corrupt("fragments of one record disagree on compression".into());
        }
        *pos = body.end;
        match (typ, open) {
            (FragmentType::Full, None) => return Ok(Some(Found::InPlace(body, flags))),
            (FragmentType::First, None) => {
                assembled.clear();
                assembled.extend_from_slice(part);
                open = Some(flags);
            }
            (FragmentType::Middle, Some(_)) => assembled.extend_from_slice(part),
            (FragmentType::Last, Some(_)) => {
                assembled.extend_from_slice(part);
                return Ok(Some(Found::Assembled(flags)));
            }
            (t, None) => return corrupt(format!("{t:?} fragment without a first fragment")),
            (t, Some(_)) => return corrupt(format!("{t:?} fragment inside a record")),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wal::page::{append_record, pad_page, record_fits, PAGE_SIZE};
    use crate::wal::segment_name;
    use proptest::prelude::*;

    /// What the writer produces for `records`, as segment contents: the pure model used to
    /// check the reader (and, in `writer`, the writer itself).
    pub(crate) fn build_segments(
        records: &[Vec<u8>],
        segment_size: u64,
        flags: u8,
    ) -> Vec<Vec<u8>> {
        let mut segments = vec![Vec::new()];
        for rec in records {
            let mut seg = segments.last_mut().unwrap();
            let off = seg.len() as u64;
            if off > 0 && !record_fits(rec.len(), off, segment_size) {
                pad_page(seg, off);
                segments.push(Vec::new());
                seg = segments.last_mut().unwrap();
            }
            let off = seg.len() as u64;
            append_record(seg, off, rec, flags);
        }
        segments
    }

    pub(crate) fn write_segments(dir: &Path, first: u64, segments: &[Vec<u8>]) {
        for (i, s) in segments.iter().enumerate() {
            std::fs::write(dir.join(segment_name(first + i as u64)), s).unwrap();
        }
    }

    /// Reads every record, and the error that stopped the read if any.
    pub(crate) fn read_all(dir: &Path) -> (Vec<Vec<u8>>, Option<WalError>) {
        let mut r = WalReader::open(dir).unwrap();
        let mut out = Vec::new();
        loop {
            match r.next_record() {
                Ok(Some(rec)) => out.push(rec.to_vec()),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    pub(crate) fn records_strategy(max_len: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(
            prop_oneof![
                4 => prop::collection::vec(any::<u8>(), 1..64),
                2 => prop::collection::vec(any::<u8>(), 1..PAGE_SIZE),
                1 => prop::collection::vec(any::<u8>(), 1..max_len),
            ],
            0..24,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn fragmented_records_read_back(records in records_strategy(5 * PAGE_SIZE)) {
            let segment_size = 4 * PAGE_SIZE as u64;
            let segments = build_segments(&records, segment_size, 0);
            for s in &segments[..segments.len() - 1] {
                prop_assert_eq!(s.len() % PAGE_SIZE, 0);
            }
            let dir = tempfile::tempdir().unwrap();
            write_segments(dir.path(), 3, &segments);
            let (got, err) = read_all(dir.path());
            prop_assert!(err.is_none(), "{:?}", err);
            prop_assert_eq!(&got, &records);
            // Loading each segment on request (as a checkpoint does, on another thread)
            // reads the same records.
            let mut r = WalReader::open(dir.path()).unwrap();
            let (mut again, mut loads) = (Vec::new(), 0);
            loop {
                match r.next_loaded_record().unwrap() {
                    Next::Record(rec) => again.push(rec.to_vec()),
                    Next::Load => {
                        loads += 1;
                        r = std::thread::spawn(move || {
                            assert!(r.load_next_segment().unwrap());
                            r
                        })
                        .join()
                        .unwrap();
                    }
                    Next::End => break,
                }
            }
            prop_assert_eq!(again, records);
            prop_assert_eq!(loads, segments.len());
        }
    }

    #[test]
    fn snappy_records_are_decompressed() {
        let big: Vec<u8> = (0..3 * PAGE_SIZE).map(|i| (i / 100) as u8).collect();
        let small = b"hello hello hello hello hello".to_vec();
        let mut enc = snap::raw::Encoder::new();
        let mut seg = Vec::new();
        let mut off = 0;
        for rec in [&small, &big] {
            let c = enc.compress_vec(rec).unwrap();
            off = append_record(&mut seg, off, &c, SNAPPY_FLAG);
        }
        append_record(&mut seg, off, b"plain", 0);
        let dir = tempfile::tempdir().unwrap();
        write_segments(dir.path(), 0, &[seg]);
        let (got, err) = read_all(dir.path());
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, vec![small, big, b"plain".to_vec()]);
    }

    #[test]
    fn zstd_is_reported_as_unsupported() {
        let mut seg = Vec::new();
        let off = append_record(&mut seg, 0, b"ok", 0);
        append_record(&mut seg, off, b"zzz", ZSTD_FLAG);
        let dir = tempfile::tempdir().unwrap();
        write_segments(dir.path(), 0, &[seg]);
        let (got, err) = read_all(dir.path());
        assert_eq!(got, vec![b"ok".to_vec()]);
        assert!(matches!(
            err,
            Some(WalError::UnsupportedCompression {
                segment: 0,
                offset: 9,
                ..
            })
        ));
    }

    #[test]
    fn torn_tails_are_corruption_at_the_last_record_end() {
        let mut seg = Vec::new();
        let off = append_record(&mut seg, 0, b"first", 0);
        let end_of_first = off;
        append_record(&mut seg, off, &vec![7u8; PAGE_SIZE], 0);
        let dir = tempfile::tempdir().unwrap();
        // Cut inside the second record's first fragment, its header, its last fragment; and
        // the first record followed by zeros up to 4 KiB, as a crash of an O_DIRECT writer
        // leaves it.
        let mut zeros = seg[..end_of_first as usize].to_vec();
        zeros.resize(4096, 0);
        for bytes in [
            seg[..100].to_vec(),
            seg[..end_of_first as usize + 3].to_vec(),
            seg[..seg.len() - 1].to_vec(),
            zeros,
        ] {
            write_segments(dir.path(), 0, &[bytes]);
            let (got, err) = read_all(dir.path());
            assert_eq!(got, vec![b"first".to_vec()]);
            match err {
                Some(WalError::Corruption {
                    segment: 0, offset, ..
                }) => assert_eq!(offset, end_of_first),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn missing_segment_is_corruption_at_the_end_of_the_one_before() {
        let segments = build_segments(&[b"a".to_vec(), b"b".to_vec()], PAGE_SIZE as u64, 0);
        let dir = tempfile::tempdir().unwrap();
        write_segments(dir.path(), 0, &segments);
        write_segments(dir.path(), 2, &segments);
        let (got, err) = read_all(dir.path());
        assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec()]);
        let len = segments[0].len() as u64;
        assert!(matches!(
            err,
            Some(WalError::Corruption { segment: 0, offset, .. }) if offset == len
        ));
    }

    #[test]
    fn start_offset_and_positions() {
        let mut seg = Vec::new();
        let off = append_record(&mut seg, 0, b"one", 0);
        append_record(&mut seg, off, b"two", 0);
        let dir = tempfile::tempdir().unwrap();
        write_segments(dir.path(), 4, &[seg.clone(), seg]);
        let mut r = WalReader::open(dir.path()).unwrap().with_start_offset(off);
        assert_eq!(r.next_record().unwrap(), Some(&b"two"[..]));
        assert_eq!((r.segment(), r.offset()), (Some(4), 2 * off));
        assert_eq!(r.next_record().unwrap(), Some(&b"one"[..]));
        assert_eq!((r.segment(), r.offset()), (Some(5), off));
        let bad = r.record_corruption(WalError::BadRecord("x".into()));
        assert!(matches!(
            bad,
            WalError::Corruption {
                segment: 5,
                offset: 0,
                ..
            }
        ));
    }
}
