//! How records are laid out in a segment (spec 9.1, 9.2): 32 KiB pages, each record cut into
//! fragments that never cross a page, each fragment behind a 7-byte header. Pure logic over
//! in-memory bytes; it never does I/O and never decides when bytes reach a file.
//!
//! Fragment layout, written by `append_record`:
//!
//! ```text
//! byte 0     type: bits 0-2 fragment type (0 page padding, 1 full, 2 first, 3 middle, 4 last)
//!                  bit 3 snappy-compressed record, bit 4 zstd-compressed, bits 5-7 zero
//! bytes 1-2  u16 BE length of the fragment's data (at most PAGE_SIZE - 7)
//! bytes 3-6  u32 BE CRC32C of the fragment's data
//! bytes 7..  data
//! ```
//!
//! When fewer than 7 bytes remain in a page after a fragment, they are zeros (a page padding
//! "fragment" of type 0 running to the page end). Like Prometheus, a page with exactly 7 bytes
//! left still takes a header, so a record may start with an empty `first` fragment.

use crate::encoding::crc32c;

pub const PAGE_SIZE: usize = 32 * 1024;
pub const FRAGMENT_HEADER_SIZE: usize = 7;
/// Largest data length of one fragment.
pub const MAX_FRAGMENT_DATA: usize = PAGE_SIZE - FRAGMENT_HEADER_SIZE;
/// Prometheus's default segment size.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 << 20;

/// Bits 0-2 of the fragment type byte.
pub const FRAGMENT_TYPE_MASK: u8 = 0b0000_0111;
pub const SNAPPY_FLAG: u8 = 0b0000_1000;
pub const ZSTD_FLAG: u8 = 0b0001_0000;
pub const RESERVED_BITS: u8 = 0b1110_0000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FragmentType {
    /// The rest of the page is zeros.
    PageTerm = 0,
    Full = 1,
    First = 2,
    Middle = 3,
    Last = 4,
}

impl FragmentType {
    /// The type in the low bits of a fragment's first byte; `None` for 5..=7.
    #[inline]
    pub fn from_header_byte(b: u8) -> Option<Self> {
        match b & FRAGMENT_TYPE_MASK {
            0 => Some(FragmentType::PageTerm),
            1 => Some(FragmentType::Full),
            2 => Some(FragmentType::First),
            3 => Some(FragmentType::Middle),
            4 => Some(FragmentType::Last),
            _ => None,
        }
    }
}

/// Bytes left in the page that contains segment offset `offset` (a whole page at a boundary).
#[inline]
pub fn page_room(offset: u64) -> usize {
    PAGE_SIZE - (offset % PAGE_SIZE as u64) as usize
}

/// Whether a record of `len` bytes still fits in a segment of `segment_size` bytes whose
/// content ends at `offset`. A record never spans segments: when this is false the writer
/// starts a new segment first (Prometheus's rule, one header per page).
pub fn record_fits(len: usize, mut offset: u64, segment_size: u64) -> bool {
    if page_room(offset) < FRAGMENT_HEADER_SIZE {
        // Those bytes will be padding.
        offset += page_room(offset) as u64;
    }
    if offset >= segment_size {
        return false;
    }
    let room = page_room(offset);
    let in_this_page = (room - FRAGMENT_HEADER_SIZE) as u64;
    let next_page = offset + room as u64;
    let pages_after = segment_size.saturating_sub(next_page) / PAGE_SIZE as u64;
    let capacity = in_this_page + pages_after * MAX_FRAGMENT_DATA as u64;
    len as u64 <= capacity
}

/// Zero-fills `out`, whose end is at segment offset `offset`, up to the next page boundary.
/// Returns the new offset.
pub fn pad_page(out: &mut Vec<u8>, offset: u64) -> u64 {
    let room = page_room(offset);
    if room == PAGE_SIZE {
        return offset;
    }
    out.resize(out.len() + room, 0);
    offset + room as u64
}

/// Appends `rec` as fragments to `out`, whose end is at segment offset `offset`, with the
/// compression `flags` (0, `SNAPPY_FLAG` or `ZSTD_FLAG`) on every fragment. Pads the last
/// page when fewer than a header's bytes remain in it. Returns the new offset.
pub fn append_record(out: &mut Vec<u8>, mut offset: u64, rec: &[u8], flags: u8) -> u64 {
    if page_room(offset) < FRAGMENT_HEADER_SIZE {
        offset = pad_page(out, offset);
    }
    out.reserve(rec.len() + FRAGMENT_HEADER_SIZE * (1 + rec.len() / MAX_FRAGMENT_DATA));
    let mut rest = rec;
    let mut first = true;
    loop {
        let n = rest.len().min(page_room(offset) - FRAGMENT_HEADER_SIZE);
        let (part, tail) = rest.split_at(n);
        let last = tail.is_empty();
        let typ = match (first, last) {
            (true, true) => FragmentType::Full,
            (true, false) => FragmentType::First,
            (false, false) => FragmentType::Middle,
            (false, true) => FragmentType::Last,
        };
        out.push(typ as u8 | flags);
        // n <= MAX_FRAGMENT_DATA < 2^16
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&crc32c(part).to_be_bytes());
        out.extend_from_slice(part);
        offset += (FRAGMENT_HEADER_SIZE + n) as u64;
        if page_room(offset) < FRAGMENT_HEADER_SIZE {
            offset = pad_page(out, offset);
        }
        if last {
            return offset;
        }
        rest = tail;
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::wal::record::{encode_samples, encode_series, RefSample, RefSeries};

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// Spec 9.8, byte for byte.
    #[test]
    fn golden_tiny_wal_of_spec_9_8() {
        let mut rec = Vec::new();
        let mut seg = Vec::new();
        encode_series(
            &[RefSeries {
                series_ref: 5,
                labels: Labels::from_pairs([("__name__", "w"), ("a", "1")]).unwrap(),
            }],
            &mut rec,
        );
        let off = append_record(&mut seg, 0, &rec, 0);
        rec.clear();
        let s = |series_ref, t, v| RefSample {
            series_ref,
            t,
            v,
            st: 0,
        };
        encode_samples(
            &[s(5, 1000, 0.0), s(5, 1010, 1.0), s(3, 1020, 2.0)],
            &mut rec,
        );
        let off = append_record(&mut seg, off, &rec, 0);

        let mut want = hex("01 00 19 82 7f fc 50  01  00 00 00 00 00 00 00 05  02 08");
        want.extend(b"__name__");
        want.extend(hex("01 77 01 61 01 31"));
        want.extend(hex("01 00 2f e4 ac ba 70  02  00 00 00 00 00 00 00 05"));
        want.extend(hex("00 00 00 00 00 00 03 e8"));
        want.extend(hex("00 00 00 00 00 00 00 00 00 00"));
        want.extend(hex("00 14 3f f0 00 00 00 00 00 00"));
        want.extend(hex("03 28 40 00 00 00 00 00 00 00"));
        assert_eq!(seg, want);
        assert_eq!(off, 0x56);
    }

    #[test]
    fn record_spanning_pages() {
        let rec: Vec<u8> = (0..(2 * PAGE_SIZE)).map(|i| i as u8).collect();
        let mut seg = Vec::new();
        let off = append_record(&mut seg, 0, &rec, 0);
        assert_eq!(off as usize, seg.len());
        assert_eq!(seg[0], FragmentType::First as u8);
        assert_eq!(seg[PAGE_SIZE], FragmentType::Middle as u8);
        assert_eq!(seg[2 * PAGE_SIZE], FragmentType::Last as u8);
        assert_eq!(seg.len(), 2 * PAGE_SIZE + 3 * FRAGMENT_HEADER_SIZE);
    }

    #[test]
    fn short_page_tail_is_padded() {
        // A record leaving 3 bytes in the page: they become zeros, the next record starts
        // on the next page.
        let rec = vec![9u8; PAGE_SIZE - FRAGMENT_HEADER_SIZE - 3];
        let mut seg = Vec::new();
        let off = append_record(&mut seg, 0, &rec, 0);
        assert_eq!(off as usize, PAGE_SIZE);
        assert_eq!(&seg[PAGE_SIZE - 3..], &[0, 0, 0]);
        // Exactly 7 bytes left: an empty first fragment, like Prometheus.
        let rec = vec![9u8; PAGE_SIZE - 2 * FRAGMENT_HEADER_SIZE];
        let mut seg = Vec::new();
        let off = append_record(&mut seg, 0, &rec, 0);
        assert_eq!(off as usize, PAGE_SIZE - FRAGMENT_HEADER_SIZE);
        let off = append_record(&mut seg, off, b"ab", 0);
        assert_eq!(seg[PAGE_SIZE - 7..PAGE_SIZE - 4], [2, 0, 0]);
        assert_eq!(seg[PAGE_SIZE], FragmentType::Last as u8);
        assert_eq!(off as usize, PAGE_SIZE + 9);
    }

    #[test]
    fn fitting_in_a_segment() {
        let seg = 4 * PAGE_SIZE as u64;
        assert!(record_fits(4 * MAX_FRAGMENT_DATA, 0, seg));
        assert!(!record_fits(4 * MAX_FRAGMENT_DATA + 1, 0, seg));
        assert!(record_fits(3 * MAX_FRAGMENT_DATA, PAGE_SIZE as u64, seg));
        assert!(record_fits(
            MAX_FRAGMENT_DATA - 10,
            3 * PAGE_SIZE as u64 + 10,
            seg
        ));
        assert!(!record_fits(
            MAX_FRAGMENT_DATA - 9,
            3 * PAGE_SIZE as u64 + 10,
            seg
        ));
        assert!(!record_fits(0, seg, seg));
        // 5 bytes left in the last page: nothing fits, not even an empty record.
        assert!(!record_fits(1, seg - 5, seg));
        assert!(!record_fits(0, seg - 5, seg));
    }
}
