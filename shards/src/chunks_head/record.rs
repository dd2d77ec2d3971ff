//! Byte layout of head-chunk files (spec 8.1–8.2): the 8-byte file header and the chunk
//! record, as Prometheus's `tsdb/chunks/head_chunks.go` writes them.
//!
//! Pure encoding and parsing over byte slices; it never touches files. Parsing takes bytes
//! that may be torn, preallocated zeros or corrupt and answers with a typed outcome, never a
//! panic.
//!
//! ```text
//! file:   magic u32 BE 0x0130BC91 | version u8 = 1 | 3 zero bytes | record*  | zero tail?
//! record: series_ref u64 BE | mint i64 BE | maxt i64 BE | encoding u8 (bit 7 = out of order)
//!         | len uvarint (at most 5 bytes) | data[len] | crc32c u32 BE
//! ```
//!
//! The CRC covers everything from `series_ref` through `data`. A file is preallocated with
//! zeros, so a record whose series_ref, mint and maxt are all zero marks the end of the data
//! (series refs start at 1), as does a tail too short for a record that is all zeros.

use crate::encoding::{crc32c, uvarint_len, Decbuf, Encbuf};

pub const MAGIC: u32 = 0x0130_BC91;
pub const FORMAT_VERSION: u8 = 1;
pub const FILE_HEADER_SIZE: usize = 8;

const SERIES_REF_SIZE: usize = 8;
const MINT_MAXT_SIZE: usize = 8;
/// series_ref, mint, maxt and the encoding byte.
const FIXED_META_SIZE: usize = SERIES_REF_SIZE + 2 * MINT_MAXT_SIZE + 1;
/// Go's `binary.MaxVarintLen32`: chunk lengths are written as at most 5 bytes.
const MAX_LEN_FIELD_SIZE: usize = 5;
const CRC_SIZE: usize = 4;
/// The most bytes a record takes besides its data; Prometheus's `MaxHeadChunkMetaSize`.
pub const MAX_RECORD_META_SIZE: usize = FIXED_META_SIZE + MAX_LEN_FIELD_SIZE + CRC_SIZE;

/// The file header bytes.
pub fn file_header() -> [u8; FILE_HEADER_SIZE] {
    let m = MAGIC.to_be_bytes();
    [m[0], m[1], m[2], m[3], FORMAT_VERSION, 0, 0, 0]
}

/// Bytes one record with `data_len` bytes of chunk data takes.
#[inline]
pub fn record_len(data_len: usize) -> usize {
    FIXED_META_SIZE + uvarint_len(data_len as u64) + data_len + CRC_SIZE
}

/// Appends one record to `buf`.
pub fn encode_record(
    buf: &mut Vec<u8>,
    series_ref: u64,
    mint: i64,
    maxt: i64,
    encoding_byte: u8,
    data: &[u8],
) {
    let start = buf.len();
    let mut e = Encbuf::new(buf);
    e.put_be_u64(series_ref);
    e.put_be_i64(mint);
    e.put_be_i64(maxt);
    e.put_u8(encoding_byte);
    e.put_uvarint_bytes(data);
    let crc = crc32c(&buf[start..]);
    buf.extend_from_slice(&crc.to_be_bytes());
}

/// One record, borrowed from the bytes it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub series_ref: u64,
    pub mint: i64,
    pub maxt: i64,
    pub encoding_byte: u8,
    pub data: &'a [u8],
    /// Bytes the whole record takes.
    pub len: usize,
}

impl RawRecord<'_> {
    /// The sample count every chunk encoding keeps in its first two bytes.
    pub fn num_samples(&self) -> u16 {
        match self.data.first_chunk::<2>() {
            Some(h) => u16::from_be_bytes(*h),
            None => 0,
        }
    }
}

/// What sits at a record position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    Record(RawRecord<'a>),
    /// The preallocated zero tail (or the end of the bytes): no more records.
    End,
}

/// Why the bytes at a record position are not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Non-zero bytes too few for a record header.
    ShortHeader {
        available: usize,
    },
    BadLength,
    /// The data and CRC run past the end of the bytes.
    ShortData {
        needed: usize,
        available: usize,
    },
    CrcMismatch {
        stored: u32,
        computed: u32,
    },
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::ShortHeader { available } => write!(
                f,
                "{available} trailing bytes are not zero but too few for a record header"
            ),
            RecordError::BadLength => f.write_str("chunk length field is not a valid uvarint"),
            RecordError::ShortData { needed, available } => {
                write!(f, "record needs {needed} bytes but only {available} remain")
            }
            RecordError::CrcMismatch { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
        }
    }
}

/// Parses the record at the start of `b` (which runs to the end of the readable data).
/// `verify_crc` is off only for bytes already verified or written by this process.
pub fn parse_record(b: &[u8], verify_crc: bool) -> Result<Parsed<'_>, RecordError> {
    if b.is_empty() {
        return Ok(Parsed::End);
    }
    if b.len() < MAX_RECORD_META_SIZE && b.iter().all(|&x| x == 0) {
        return Ok(Parsed::End);
    }
    let mut d = Decbuf::new(b);
    let short = |_| RecordError::ShortHeader { available: b.len() };
    let series_ref = d.be_u64().map_err(short)?;
    let mint = d.be_i64().map_err(short)?;
    let maxt = d.be_i64().map_err(short)?;
    if series_ref == 0 && mint == 0 && maxt == 0 {
        return Ok(Parsed::End);
    }
    let encoding_byte = d.u8().map_err(short)?;
    let len_field = &d.rest()[..d.remaining().min(MAX_LEN_FIELD_SIZE)];
    let mut ld = Decbuf::new(len_field);
    let data_len = match ld.uvarint() {
        Ok(n) if n <= u64::from(u32::MAX) => n as usize,
        Ok(_) => return Err(RecordError::BadLength),
        // The length field itself was cut short: the record does not fit.
        Err(_) if len_field.len() < MAX_LEN_FIELD_SIZE => {
            return Err(RecordError::ShortHeader { available: b.len() })
        }
        Err(_) => return Err(RecordError::BadLength),
    };
    let data_start = FIXED_META_SIZE + (len_field.len() - ld.remaining());
    let needed = data_start + data_len + CRC_SIZE;
    if needed > b.len() {
        return Err(RecordError::ShortData {
            needed,
            available: b.len(),
        });
    }
    let data_end = data_start + data_len;
    if verify_crc {
        let mut c = [0u8; CRC_SIZE];
        c.copy_from_slice(&b[data_end..needed]);
        let stored = u32::from_be_bytes(c);
        let computed = crc32c(&b[..data_end]);
        if stored != computed {
            return Err(RecordError::CrcMismatch { stored, computed });
        }
    }
    Ok(Parsed::Record(RawRecord {
        series_ref,
        mint,
        maxt,
        encoding_byte,
        data: &b[data_start..data_end],
        len: needed,
    }))
}

/// Checks the first bytes of a file against the header layout.
pub fn check_file_header(b: &[u8]) -> HeaderCheck {
    if b.len() < FILE_HEADER_SIZE {
        return HeaderCheck::TooShort;
    }
    let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if magic == 0 {
        return HeaderCheck::ZeroMagic;
    }
    if magic != MAGIC {
        return HeaderCheck::BadMagic(magic);
    }
    if b[4] != FORMAT_VERSION {
        return HeaderCheck::BadVersion(b[4]);
    }
    HeaderCheck::Ok
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderCheck {
    Ok,
    /// Torn at creation: fewer bytes than a header.
    TooShort,
    /// Preallocated but the header never reached the disk.
    ZeroMagic,
    /// Not a head-chunk file at all.
    BadMagic(u32),
    /// A head-chunk file from a format this code does not know.
    BadVersion(u8),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One record, bytes laid out by hand from spec 8.2.
    #[test]
    fn golden_record() {
        let mut b = Vec::new();
        encode_record(&mut b, 1, 1000, 46500, 0x01, &[0x00, 0x01, 0xd0, 0x0f]);
        let mut want = vec![
            0, 0, 0, 0, 0, 0, 0, 1, // series ref 1
            0, 0, 0, 0, 0, 0, 0x03, 0xe8, // mint 1000
            0, 0, 0, 0, 0, 0, 0xb5, 0xa4, // maxt 46500
            0x01, // XOR
            0x04, // len
            0x00, 0x01, 0xd0, 0x0f, // data
        ];
        // CRC32C of the 30 bytes above, computed independently (bitwise Castagnoli).
        want.extend_from_slice(&[0xbf, 0x28, 0x2c, 0xdf]);
        assert_eq!(b, want);
        assert_eq!(b.len(), record_len(4));
        assert_eq!(file_header(), [0x01, 0x30, 0xbc, 0x91, 1, 0, 0, 0]);
    }

    #[test]
    fn zero_tail_ends_the_data() {
        assert_eq!(parse_record(&[], true), Ok(Parsed::End));
        assert_eq!(parse_record(&[0; 10], true), Ok(Parsed::End));
        assert_eq!(parse_record(&[0; 4096], true), Ok(Parsed::End));
        let mut b = vec![0; 10];
        b[9] = 1;
        assert_eq!(
            parse_record(&b, true),
            Err(RecordError::ShortHeader { available: 10 })
        );
    }

    #[test]
    fn damage_is_detected() {
        let mut b = Vec::new();
        encode_record(&mut b, 7, -5, 5, 0x81, &[0, 3, 1, 2, 3]);
        let n = b.len();
        // The first 7 bytes of series ref 7 are zeros, indistinguishable from the zero tail.
        for cut in 1..7 {
            assert_eq!(parse_record(&b[..cut], true), Ok(Parsed::End));
        }
        for cut in 8..n {
            assert!(parse_record(&b[..cut], true).is_err(), "cut {cut}");
        }
        for i in 0..n {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert!(
                !matches!(parse_record(&c, true), Ok(Parsed::Record(r)) if r.data == [0, 3, 1, 2, 3]),
                "flip at {i} went unnoticed"
            );
        }
        let mut over = b[..FIXED_META_SIZE].to_vec();
        over.extend([0xff; 6]);
        assert_eq!(parse_record(&over, true), Err(RecordError::BadLength));
    }

    proptest! {
        #[test]
        fn round_trip(series_ref in 1u64.., mint: i64, maxt: i64, enc: u8,
                      data in proptest::collection::vec(any::<u8>(), 0..300),
                      tail in 0usize..64) {
            let mut b = Vec::new();
            encode_record(&mut b, series_ref, mint, maxt, enc, &data);
            prop_assert_eq!(b.len(), record_len(data.len()));
            b.resize(b.len() + tail, 0);
            let Ok(Parsed::Record(r)) = parse_record(&b, true) else {
                return Err(TestCaseError::fail("not a record"));
            };
            prop_assert_eq!((r.series_ref, r.mint, r.maxt, r.encoding_byte), (series_ref, mint, maxt, enc));
            prop_assert_eq!(r.data, &data[..]);
            prop_assert_eq!(r.len, record_len(data.len()));
            prop_assert_eq!(parse_record(&b[r.len..], true), Ok(Parsed::End));
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_record(&b, true);
            let _ = parse_record(&b, false);
            let _ = check_file_header(&b);
        }
    }
}
