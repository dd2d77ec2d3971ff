//! The XOR (Gorilla) float chunk, encoding id 1, byte-identical to Prometheus's
//! `chunkenc.XORChunk`.
//!
//! `XorChunk` is the head's open chunk: it owns its bytes and the few words of appender
//! state needed to continue the bit stream, and nothing else, because the head keeps one per
//! series. `XorIterator` decodes borrowed bytes (an open chunk, a chunks_head mmap or a block)
//! without allocating. It must never trust those bytes: a short or malformed stream ends the
//! iteration and sets `err()`.
//!
//! Layout (spec 2.2–2.4):
//!
//! ```text
//! num_samples u16 BE | t0 varint | v0 64 raw bits | t1-t0 uvarint | v1 xor
//!                    | (dod_i bucketed, v_i xor)*  | zero padding to a byte
//! ```
//!
//! Timestamps, from sample 2: `dod = (t_i - t_{i-1}) - (t_{i-1} - t_{i-2})` as
//! `0` (dod = 0), `10`+14 bits, `110`+17 bits, `1110`+20 bits or `1111`+64 bits, where an
//! n-bit bucket holds `-(2^(n-1) - 1) ..= 2^(n-1)` (one more on the positive side than
//! two's complement). Values, from sample 1: `x = bits(v_i) ^ bits(v_{i-1})`; `0` if x is 0,
//! else `10` + the meaningful bits when they fit the previous leading/trailing window, else
//! `11` + leading zeros (5 bits, clamped to 31) + meaningful-bit count (6 bits, 64 written
//! as 0) + the meaningful bits. Time arithmetic wraps like Go's, so even extreme timestamp
//! pairs round-trip.

use super::bstream::{BitReader, BitWriter};
use super::chunk_buf::ChunkBuf;
use super::ChunkError;
use crate::encoding::{unzigzag, zigzag};

/// Bytes of the sample-count header.
const HEADER_SIZE: usize = 2;
/// Prometheus's "leading not set yet" marker: the next non-zero xor opens a new window.
const LEADING_UNSET: u8 = 0xff;
/// `XorChunk::t_delta` of a delta that does not fit an i32.
const FAR_DELTA: i32 = i32::MIN;

/// First allocation: enough for the header, the first two samples and a few more; a
/// 120-sample counter chunk usually ends at 100-300 bytes.
const INITIAL_CAPACITY: usize = 32;

/// An appendable XOR chunk: its bytes plus the state to keep appending. 40 bytes (the
/// head holds one inline per series): the buffer is a 13-byte `ChunkBuf`, the last time
/// delta 4 bytes, and 4 bytes are the owner's (`owner_word`).
#[derive(Clone)]
pub struct XorChunk {
    bytes: ChunkBuf,
    t: i64,
    /// `t_{n-1} - t_{n-2}` when it fits an i32 (25 days, and a head chunk never spans more
    /// than its chunk range), else `FAR_DELTA`: the next append then decodes the chunk to
    /// find it. Half of a u64 is what lets the owner keep its word here.
    t_delta: i32,
    v_bits: u64,
    /// Never encoded nor read by the chunk: the head keeps its cut time of the open chunk
    /// here (`MemSeries`), where the 4 bytes cost nothing, instead of beside it in 8 more.
    owner_word: u32,
    leading: u8,
    trailing: u8,
    /// Unwritten low bits of the last byte.
    free_bits: FreeBits,
}

/// 0..=7 unwritten bits, as a type with 248 invalid values: `Option<FloatChunk>` keeps its
/// tags there, so the head's open chunk stays 40 bytes (a `u8` would make it 48).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum FreeBits {
    B0 = 0,
    B1,
    B2,
    B3,
    B4,
    B5,
    B6,
    B7,
}

impl FreeBits {
    #[inline]
    fn new(n: u8) -> Self {
        match n & 7 {
            0 => FreeBits::B0,
            1 => FreeBits::B1,
            2 => FreeBits::B2,
            3 => FreeBits::B3,
            4 => FreeBits::B4,
            5 => FreeBits::B5,
            6 => FreeBits::B6,
            _ => FreeBits::B7,
        }
    }
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for XorChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XorChunk")
            .field("num_samples", &self.num_samples())
            .field("first_time", &self.first_time())
            .field("last_time", &self.last_time())
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl XorChunk {
    pub fn new() -> Self {
        let mut bytes = ChunkBuf::with_capacity(INITIAL_CAPACITY);
        bytes.extend_from_slice(&[0, 0]);
        XorChunk {
            bytes,
            t: 0,
            t_delta: 0,
            v_bits: 0,
            owner_word: 0,
            leading: LEADING_UNSET,
            trailing: 0,
            free_bits: FreeBits::B0,
        }
    }

    /// Restores a chunk (and its appender state, by decoding it once) from bytes read from a
    /// file (snapshot, chunks_head). Corrupt bytes are an error.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Result<Self, ChunkError> {
        let mut it = XorIterator::new(&bytes);
        for _ in it.by_ref() {}
        if let Some(e) = it.err() {
            return Err(e.clone());
        }
        let count = it.num_total;
        let (t, t_delta, v_bits, leading, trailing) =
            (it.t, it.t_delta, it.v_bits, it.leading, it.trailing);
        let used_bits = HEADER_SIZE * 8 + it.br.position();
        let extra = bytes.len() - used_bits.div_ceil(8);
        if extra > 0 {
            return Err(ChunkError::TrailingBytes { count, extra });
        }
        let free_bits = (bytes.len() * 8 - used_bits) as u8;
        // Appends OR into the last byte, so padding must be zero; Prometheus never reads it.
        if let Some(last) = bytes.last_mut() {
            *last &= !((1u16 << free_bits) - 1) as u8;
        }
        let len = bytes.len();
        let bytes = ChunkBuf::from_vec(bytes).ok_or(ChunkError::TooLong { len })?;
        Ok(XorChunk {
            bytes,
            t,
            t_delta: compact_delta(t_delta),
            v_bits,
            owner_word: 0,
            leading,
            trailing,
            free_bits: FreeBits::new(free_bits),
        })
    }

    /// Appends; the caller guarantees t is strictly greater than the last timestamp.
    ///
    /// # Panics
    /// When the chunk already holds `u16::MAX` samples: the head cuts chunks long before.
    pub fn append(&mut self, t: i64, v: f64) {
        let n = self.num_samples();
        assert!(n < usize::from(u16::MAX), "XOR chunk sample count overflow");
        debug_assert!(n == 0 || t > self.t, "timestamps must increase");
        let v_bits = v.to_bits();
        match n {
            0 => {
                put_uvarint_to(&mut self.bytes, zigzag(t));
                self.bytes.extend_from_slice(&v_bits.to_be_bytes());
                self.leading = LEADING_UNSET;
            }
            1 => {
                let t_delta = (t as u64).wrapping_sub(self.t as u64);
                // Everything so far is whole bytes, so the uvarint stays byte aligned.
                put_uvarint_to(&mut self.bytes, t_delta);
                let mut w = BitWriter::new(&mut self.bytes, 0);
                write_value(
                    &mut w,
                    v_bits ^ self.v_bits,
                    &mut self.leading,
                    &mut self.trailing,
                );
                self.free_bits = FreeBits::new(w.free());
                self.t_delta = compact_delta(t_delta);
            }
            _ => {
                let t_delta = (t as u64).wrapping_sub(self.t as u64);
                let dod = t_delta.wrapping_sub(self.last_delta()) as i64;
                let mut w = BitWriter::new(&mut self.bytes, self.free_bits as u8);
                write_dod(&mut w, dod);
                write_value(
                    &mut w,
                    v_bits ^ self.v_bits,
                    &mut self.leading,
                    &mut self.trailing,
                );
                self.free_bits = FreeBits::new(w.free());
                self.t_delta = compact_delta(t_delta);
            }
        }
        self.t = t;
        self.v_bits = v_bits;
        self.bytes.as_mut_slice()[..HEADER_SIZE].copy_from_slice(&(n as u16 + 1).to_be_bytes());
    }

    /// `t_{n-1} - t_{n-2}` as Go's uint64, wrapping.
    #[inline]
    fn last_delta(&self) -> u64 {
        if self.t_delta != FAR_DELTA {
            return i64::from(self.t_delta) as u64;
        }
        self.decoded_last_delta()
    }

    /// The last delta of a chunk whose samples are weeks apart: rare enough to decode for.
    #[cold]
    fn decoded_last_delta(&self) -> u64 {
        let mut it = self.iter();
        for _ in it.by_ref() {}
        it.t_delta
    }

    /// The owner's word (`owner_word` field), 0 until set.
    #[inline]
    pub fn owner_word(&self) -> u32 {
        self.owner_word
    }

    #[inline]
    pub fn set_owner_word(&mut self, w: u32) {
        self.owner_word = w;
    }

    #[inline]
    pub fn num_samples(&self) -> usize {
        let b = self.bytes.as_slice();
        usize::from(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Exactly Prometheus's chunk bytes, sample-count header included.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// Gives up the bytes, e.g. to hand a full chunk to the chunks_head writer (no copy).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes.into_vec()
    }

    pub fn first_time(&self) -> Option<i64> {
        if self.num_samples() == 0 {
            return None;
        }
        crate::encoding::Decbuf::new(&self.bytes()[HEADER_SIZE..])
            .varint()
            .ok()
    }

    #[inline]
    pub fn last_time(&self) -> Option<i64> {
        (self.num_samples() > 0).then_some(self.t)
    }

    #[inline]
    pub fn last_value(&self) -> Option<f64> {
        (self.num_samples() > 0).then(|| f64::from_bits(self.v_bits))
    }

    pub fn iter(&self) -> XorIterator<'_> {
        XorIterator::new(self.bytes())
    }

    /// Heap memory held, for the head's memory accounting.
    #[inline]
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// Moves the bytes to a new block of the thread's chunk heap (`chunk_heap::Renewal`).
    pub fn relocate(&mut self) {
        self.bytes.relocate();
    }
}

/// `XorChunk::t_delta` for a delta (as Go's uint64).
#[inline]
fn compact_delta(d: u64) -> i32 {
    match i32::try_from(d as i64) {
        Ok(d) if d != FAR_DELTA => d,
        _ => FAR_DELTA,
    }
}

/// `encoding::put_uvarint` for the chunk's own buffer: one copy of the encoded bytes.
#[inline]
fn put_uvarint_to(b: &mut ChunkBuf, mut v: u64) {
    let mut tmp = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        tmp[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    tmp[n] = v as u8;
    b.extend_from_slice(&tmp[..=n]);
}

#[inline]
fn write_dod(w: &mut BitWriter<'_, ChunkBuf>, dod: i64) {
    let d = dod as u64;
    if dod == 0 {
        w.write_bits(0, 1);
    } else if (-8191..=8192).contains(&dod) {
        w.write_bits((0b10 << 14) | (d & 0x3fff), 16);
    } else if (-65535..=65536).contains(&dod) {
        w.write_bits((0b110 << 17) | (d & 0x1_ffff), 20);
    } else if (-524_287..=524_288).contains(&dod) {
        w.write_bits((0b1110 << 20) | (d & 0xf_ffff), 24);
    } else {
        w.write_bits(0b1111, 4);
        w.write_bits(d, 64);
    }
}

#[inline]
fn write_value(w: &mut BitWriter<'_, ChunkBuf>, x: u64, leading: &mut u8, trailing: &mut u8) {
    if x == 0 {
        w.write_bits(0, 1);
        return;
    }
    // Clamped so it fits the 5-bit field; the window then just carries a few zero bits.
    let lz = (x.leading_zeros() as u8).min(31);
    let tz = x.trailing_zeros() as u8;
    if *leading != LEADING_UNSET && lz >= *leading && tz >= *trailing {
        let sig = 64 - u32::from(*leading) - u32::from(*trailing);
        let payload = x >> *trailing;
        if sig <= 62 {
            w.write_bits((0b10 << sig) | payload, sig + 2);
        } else {
            w.write_bits(0b10, 2);
            w.write_bits(payload, sig);
        }
        return;
    }
    *leading = lz;
    *trailing = tz;
    let sig = 64 - u32::from(lz) - u32::from(tz);
    // `11`, 5 bits of leading, 6 bits of sig (64 wraps to 0 by the mask): 13 bits.
    let control = (0b11 << 11) | (u64::from(lz) << 6) | u64::from(sig & 63);
    w.write_bits(control, 13);
    w.write_bits(x >> tz, sig);
}

/// Decodes XOR chunk bytes, which may be mmapped, torn or corrupt.
#[derive(Clone)]
pub struct XorIterator<'a> {
    br: BitReader<'a>,
    num_total: u16,
    num_read: u16,
    t: i64,
    t_delta: u64,
    v_bits: u64,
    leading: u8,
    trailing: u8,
    err: Option<ChunkError>,
}

impl<'a> XorIterator<'a> {
    pub fn new(chunk_bytes: &'a [u8]) -> Self {
        let (num_total, stream, err) = match chunk_bytes.split_first_chunk::<HEADER_SIZE>() {
            Some((h, rest)) => (u16::from_be_bytes(*h), rest, None),
            None => (
                0,
                &[][..],
                Some(ChunkError::TooShort {
                    len: chunk_bytes.len(),
                }),
            ),
        };
        XorIterator {
            br: BitReader::new(stream),
            num_total,
            num_read: 0,
            t: 0,
            t_delta: 0,
            v_bits: 0,
            // Unset until a value opens a window, so `XorChunk::from_bytes` restores an
            // appender that has never opened one (see `read_value`).
            leading: LEADING_UNSET,
            trailing: 0,
            err,
        }
    }

    /// Samples in the chunk according to its header.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num_total)
    }

    /// Advances to the first sample with timestamp >= t and returns it (None when
    /// exhausted). Calling seek with a t <= the current sample's timestamp must not move
    /// backwards: it returns the current sample again.
    pub fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        if self.err.is_some() {
            return None;
        }
        if self.num_read > 0 && self.t >= t {
            return Some((self.t, f64::from_bits(self.v_bits)));
        }
        for (st, v) in self.by_ref() {
            if st >= t {
                return Some((st, v));
            }
        }
        None
    }

    /// Set when the bytes ended or were malformed before the header's sample count.
    pub fn err(&self) -> Option<&ChunkError> {
        self.err.as_ref()
    }

    #[inline]
    fn fail(&mut self, reason: Option<&'static str>) -> Option<(i64, f64)> {
        self.err = Some(match reason {
            None => ChunkError::Truncated {
                sample: self.num_read,
                count: self.num_total,
            },
            Some(reason) => ChunkError::Corrupt {
                sample: self.num_read,
                reason,
            },
        });
        None
    }

    fn read_uvarint(&mut self) -> Result<u64, Option<&'static str>> {
        let mut x = 0u64;
        let mut shift = 0u32;
        for i in 0..10 {
            let b = self.br.read_byte().ok_or(None)?;
            if i == 9 && b > 1 {
                return Err(Some("varint overflows 64 bits"));
            }
            if b < 0x80 {
                return Ok(x | (u64::from(b) << shift));
            }
            x |= u64::from(b & 0x7f) << shift;
            shift += 7;
        }
        Err(Some("varint overflows 64 bits"))
    }

    #[inline]
    fn read_dod(&mut self) -> Option<i64> {
        let mut ones = 0;
        while ones < 4 {
            if !self.br.read_bit()? {
                break;
            }
            ones += 1;
        }
        let size = match ones {
            0 => return Some(0),
            1 => 14,
            2 => 17,
            3 => 20,
            _ => return self.br.read_bits(64).map(|b| b as i64),
        };
        let bits = self.br.read_bits(size)?;
        // The buckets are asymmetric: `100…0` is +2^(n-1), anything above it is negative.
        Some(if bits > 1 << (size - 1) {
            bits as i64 - (1i64 << size)
        } else {
            bits as i64
        })
    }

    /// Applies the next value field; `Err(None)` on a short stream.
    #[inline]
    fn read_value(&mut self) -> Result<(), Option<&'static str>> {
        if !self.br.read_bit().ok_or(None)? {
            return Ok(());
        }
        if self.br.read_bit().ok_or(None)? {
            let control = self.br.read_bits(11).ok_or(None)?;
            let leading = (control >> 6) as u8;
            let sig = match (control & 63) as u8 {
                0 => 64,
                s => s,
            };
            if leading + sig > 64 {
                return Err(Some("xor window wider than 64 bits"));
            }
            self.leading = leading;
            self.trailing = 64 - leading - sig;
        } else if self.leading == LEADING_UNSET {
            // No writer emits this, but Prometheus's reader starts with a 0/0 window, so a
            // reuse before any window means 64 meaningful bits; decode it the same way.
            self.leading = 0;
            self.trailing = 0;
        }
        let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = self.br.read_bits(sig).ok_or(None)?;
        self.v_bits ^= bits << self.trailing;
        Ok(())
    }
}

impl Iterator for XorIterator<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        if self.err.is_some() || self.num_read >= self.num_total {
            return None;
        }
        match self.num_read {
            0 => {
                let t = match self.read_uvarint() {
                    Ok(u) => unzigzag(u),
                    Err(reason) => return self.fail(reason),
                };
                let Some(v) = self.br.read_bits(64) else {
                    return self.fail(None);
                };
                self.t = t;
                self.v_bits = v;
            }
            1 => {
                let delta = match self.read_uvarint() {
                    Ok(u) => u,
                    Err(reason) => return self.fail(reason),
                };
                if let Err(reason) = self.read_value() {
                    return self.fail(reason);
                }
                self.t_delta = delta;
                self.t = (self.t as u64).wrapping_add(delta) as i64;
            }
            _ => {
                let Some(dod) = self.read_dod() else {
                    return self.fail(None);
                };
                if let Err(reason) = self.read_value() {
                    return self.fail(reason);
                }
                self.t_delta = self.t_delta.wrapping_add(dod as u64);
                self.t = (self.t as u64).wrapping_add(self.t_delta) as i64;
            }
        }
        self.num_read += 1;
        Some((self.t, f64::from_bits(self.v_bits)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::from(self.num_total - self.num_read);
        (0, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(samples: &[(i64, f64)]) -> XorChunk {
        let mut c = XorChunk::new();
        for &(t, v) in samples {
            c.append(t, v);
        }
        c
    }

    fn bits(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
        samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
    }

    fn decode_bits(b: &[u8]) -> Vec<(i64, u64)> {
        let mut it = XorIterator::new(b);
        let out = it.by_ref().map(|(t, v)| (t, v.to_bits())).collect();
        assert_eq!(it.err(), None);
        out
    }

    #[test]
    fn empty_chunk_is_two_zero_bytes() {
        let c = XorChunk::new();
        assert_eq!(c.bytes(), [0, 0]);
        assert_eq!(c.num_samples(), 0);
        assert_eq!(c.first_time(), None);
        assert_eq!(c.last_time(), None);
        assert_eq!(c.last_value(), None);
        assert_eq!(c.iter().next(), None);
    }

    /// Spec 2.6, verified against promtool.
    #[test]
    fn golden_worked_example() {
        let c = encode(&[(1000, 1.0), (16000, 1.0), (31000, 2.0), (46500, 2.0)]);
        let want = [
            0x00, 0x04, 0xd0, 0x0f, 0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x98, 0x75,
            0x30, 0x97, 0xff, 0xe0, 0x7d, 0x00,
        ];
        assert_eq!(c.bytes(), want);
        assert_eq!(c.first_time(), Some(1000));
        assert_eq!(c.last_time(), Some(46500));
        assert_eq!(c.last_value(), Some(2.0));
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            [(1000, 1.0), (16000, 1.0), (31000, 2.0), (46500, 2.0)]
        );
    }

    #[test]
    fn dod_bucket_edges() {
        let edges = [
            0i64,
            1,
            -1,
            -8191,
            8192,
            -8192,
            8193,
            -65535,
            65536,
            -65536,
            65537,
            -524_287,
            524_288,
            -524_288,
            524_289,
            i64::MAX / 4,
            -999_999_999,
        ];
        for &dod in &edges {
            // A large first delta so a negative dod keeps timestamps increasing.
            let d1 = 1_000_000_000i64;
            let s = [(-5, 1.5), (-5 + d1, 2.5), (-5 + d1 + d1 + dod, 3.5)];
            let c = encode(&s);
            assert_eq!(decode_bits(c.bytes()), bits(&s), "dod {dod}");
        }
    }

    /// Bucket payload sizes, checked through the chunk length: 2 + varint(0) + 8 +
    /// uvarint(10) + 1 bit (v1 xor 0) then dod bits + 1 bit (v2 xor 0).
    #[test]
    fn dod_bucket_sizes() {
        for (dod, dod_bits) in [
            (0i64, 1usize),
            (8192, 16),
            (-8191, 16),
            (8193, 20),
            (-8192, 20),
            (65536, 20),
            (65537, 24),
            (524_288, 24),
            (-524_287, 24),
            (524_289, 68),
            (-524_288, 68),
        ] {
            let c = encode(&[(0, 0.0), (1_000_000, 0.0), (2_000_000 + dod, 0.0)]);
            let stream_bits = 1 + dod_bits + 1;
            assert_eq!(
                c.bytes().len(),
                2 + 1 + 8 + 3 + stream_bits.div_ceil(8),
                "dod {dod}"
            );
        }
    }

    #[test]
    fn special_values_are_bit_exact() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let vals = [
            0.0,
            -0.0,
            stale,
            f64::NAN,
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 3.0,
            f64::from_bits(1),
            f64::MAX,
            -f64::MAX,
            stale,
        ];
        let s: Vec<_> = vals
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * 15_000, v))
            .collect();
        let c = encode(&s);
        assert_eq!(decode_bits(c.bytes()), bits(&s));
    }

    #[test]
    fn full_width_xor_uses_sig_64_written_as_zero() {
        // x = 0x8000…0001: 0 leading, 0 trailing, 64 meaningful bits.
        let a = f64::from_bits(0);
        let b = f64::from_bits(0x8000_0000_0000_0001);
        let c = encode(&[(1, a), (2, b), (3, a)]);
        assert_eq!(decode_bits(c.bytes()), bits(&[(1, a), (2, b), (3, a)]));
        // Header 2, t0 1, v0 8, delta 1; then '11' 00000 000000 + 64 bits = 77 bits.
        let stream = &c.bytes()[12..];
        assert_eq!(stream[0] >> 6, 0b11);
        assert_eq!(stream[0] & 0x3f, 0, "5-bit lz 0 and top bit of sig 0");
        assert_eq!(stream[1] >> 3, 0, "rest of sig field is 0 for 64");
    }

    #[test]
    fn seek_semantics() {
        let s: Vec<_> = (0..10).map(|i| (i * 10, i as f64)).collect();
        let c = encode(&s);
        let mut it = c.iter();
        assert_eq!(it.seek(-100), Some((0, 0.0)));
        assert_eq!(it.seek(0), Some((0, 0.0)), "seek to current stays");
        assert_eq!(it.seek(25), Some((30, 3.0)));
        assert_eq!(it.seek(30), Some((30, 3.0)));
        assert_eq!(it.seek(5), Some((30, 3.0)), "never backwards");
        assert_eq!(it.next(), Some((40, 4.0)));
        assert_eq!(it.seek(90), Some((90, 9.0)));
        assert_eq!(it.seek(91), None);
        assert_eq!(it.next(), None);
        assert_eq!(it.err(), None);
        assert_eq!(c.iter().seek(1000), None);
        assert_eq!(XorChunk::new().iter().seek(0), None);
    }

    #[test]
    fn truncated_and_malformed_bytes_are_errors() {
        let c = encode(&[(1000, 1.0), (16000, 1.0), (31000, 2.0), (46500, 2.0)]);
        let b = c.bytes();
        for cut in 0..b.len() - 1 {
            let mut it = XorIterator::new(&b[..cut]);
            let n = it.by_ref().count();
            assert!(n < 4);
            assert!(it.err().is_some(), "cut at {cut}");
            assert!(XorChunk::from_bytes(b[..cut].to_vec()).is_err());
        }
        // A count larger than the stream.
        let mut more = b.to_vec();
        more[1] = 200;
        let mut it = XorIterator::new(&more);
        assert!(it.by_ref().count() >= 4);
        assert!(matches!(
            it.err(),
            Some(ChunkError::Truncated { count: 200, .. })
        ));
        // A window of 31 leading zeros and 64 meaningful bits cannot exist.
        let bad = [
            0,
            2,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
            0b1111_1111,
            0b1100_0000,
            0,
            0,
        ];
        let mut it = XorIterator::new(&bad);
        assert_eq!(it.by_ref().count(), 1);
        assert!(matches!(
            it.err(),
            Some(ChunkError::Corrupt { sample: 1, .. })
        ));
        // Overlong varint.
        let mut over = vec![0, 1];
        over.extend([0xff; 10]);
        over.extend([0; 8]);
        assert!(matches!(
            XorChunk::from_bytes(over),
            Err(ChunkError::Corrupt { sample: 0, .. })
        ));
        // Extra whole bytes after the last sample.
        let mut extra = b.to_vec();
        extra.push(0);
        assert_eq!(
            XorChunk::from_bytes(extra).unwrap_err(),
            ChunkError::TrailingBytes { count: 4, extra: 1 }
        );
    }

    #[test]
    fn restore_before_any_window_matches_uninterrupted_bytes() {
        // Sample 1 repeats v0, so no window is open when the chunk is restored.
        let s = [(10, 5.0), (20, 5.0), (30, 6.0), (40, 7.5)];
        for cut in 0..s.len() {
            let mut r = XorChunk::from_bytes(encode(&s[..cut]).bytes().to_vec()).unwrap();
            for &(t, v) in &s[cut..] {
                r.append(t, v);
            }
            assert_eq!(
                r.bytes(),
                encode(&s).bytes(),
                "restored after {cut} samples"
            );
        }
    }

    #[test]
    fn reuse_before_any_window_reads_64_bits_like_prometheus() {
        // No writer emits this; Prometheus's reader starts with a 0/0 window.
        let mut b = vec![0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        b.extend([
            0b1011_1111,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0b1100_0000,
        ]);
        let mut it = XorIterator::new(&b);
        assert_eq!(it.next().map(|s| s.1.to_bits()), Some(0));
        assert_eq!(it.next().map(|s| (s.0, s.1.to_bits())), Some((1, u64::MAX)));
        assert_eq!(it.err(), None);
    }

    #[test]
    fn from_bytes_clears_garbage_padding() {
        let s = [(1000, 1.0), (16000, 1.0), (31000, 2.0), (46500, 2.0)];
        let mut b = encode(&s).bytes().to_vec();
        *b.last_mut().unwrap() |= 0b0001_1111;
        let mut c = XorChunk::from_bytes(b).unwrap();
        c.append(60000, 7.0);
        let mut want = s.to_vec();
        want.push((60000, 7.0));
        assert_eq!(c.iter().collect::<Vec<_>>(), want);
    }

    #[test]
    fn grows_only_when_a_write_does_not_fit() {
        let mut c = XorChunk::new();
        let mut caps = vec![c.heap_bytes()];
        let mut v = 0.0;
        for i in 0..120 {
            v += (i % 7) as f64;
            c.append(1_700_000_000_000 + i * 15_000 + (i % 3), v);
            assert!(c.heap_bytes() >= c.bytes().len());
            if c.heap_bytes() != *caps.last().unwrap() {
                // Grown for the write that did not fit: the class below was too small.
                let below = caps.last().copied().unwrap();
                assert!(below < c.bytes().len(), "{below} {}", c.bytes().len());
                caps.push(c.heap_bytes());
            }
        }
        assert_eq!(caps[..6], [32, 40, 48, 56, 64, 80]);
    }

    proptest::proptest! {
        /// Deltas too far for the chunk's i32 (decoded again at the next append) encode as
        /// near ones do: the samples read back, and a chunk restored from the bytes and
        /// appended to gives the bytes of one appended to all along.
        #[test]
        fn far_deltas_read_back(
            start in -(1i64 << 60)..(1i64 << 60),
            gaps in proptest::collection::vec(proptest::prop_oneof![1i64..100, (1i64 << 30)..(1i64 << 33), (1i64 << 40)..(1i64 << 50)], 1..60),
            split in 0usize..60,
        ) {
            let mut ts = vec![start];
            for g in gaps {
                ts.push(ts.last().unwrap() + g);
            }
            let samples: Vec<(i64, f64)> = ts.iter().enumerate().map(|(i, &t)| (t, i as f64 * 0.5)).collect();
            let mut whole = XorChunk::new();
            for &(t, v) in &samples {
                whole.append(t, v);
            }
            proptest::prop_assert_eq!(whole.iter().collect::<Vec<_>>(), samples.clone());
            let split = split.min(samples.len());
            let mut part = XorChunk::new();
            for &(t, v) in &samples[..split] {
                part.append(t, v);
            }
            let mut part = XorChunk::from_bytes(part.bytes().to_vec()).unwrap();
            for &(t, v) in &samples[split..] {
                part.append(t, v);
            }
            proptest::prop_assert_eq!(part.bytes(), whole.bytes());
        }
    }

    #[test]
    fn memory_stays_small() {
        assert_eq!(std::mem::size_of::<XorChunk>(), 40);
        assert_eq!(
            std::mem::size_of::<Option<crate::chunkenc::FloatChunk>>(),
            40
        );
        let mut c = XorChunk::new();
        let mut v = 0.0;
        for i in 0..120 {
            v += (i % 7) as f64;
            c.append(1_700_000_000_000 + i * 15_000 + (i % 3), v);
        }
        assert!(
            c.heap_bytes() < 2 * c.bytes().len() + 64,
            "{c:?} cap {}",
            c.heap_bytes()
        );
    }

    fn timestamps() -> impl Strategy<Value = Vec<i64>> {
        // Deltas from every dod bucket, up to huge ones; wrapping keeps them increasing
        // only if the sum does not overflow, so clamp the start.
        let delta = prop_oneof![
            1i64..=30,
            1i64..=20_000,
            1i64..=200_000,
            1i64..=2_000_000,
            1i64..=(1i64 << 40),
        ];
        (
            -(1i64 << 50)..(1i64 << 50),
            proptest::collection::vec(delta, 0..300),
        )
            .prop_map(|(start, deltas)| {
                let mut t = start;
                std::iter::once(start)
                    .chain(deltas.into_iter().map(|d| {
                        t += d;
                        t
                    }))
                    .collect()
            })
    }

    fn values(n: usize) -> impl Strategy<Value = Vec<u64>> {
        let one = prop_oneof![
            any::<u64>(),
            Just(0x7ff0_0000_0000_0002u64),
            Just((-0.0f64).to_bits()),
            (0u64..1000).prop_map(|i| (i as f64).to_bits()),
            (0u64..4).prop_map(|i| (i as f64 * 0.1).to_bits()),
        ];
        proptest::collection::vec(one, n)
    }

    proptest! {
        #[test]
        fn round_trip(samples in timestamps().prop_flat_map(|ts| {
            let n = ts.len();
            (Just(ts), values(n))
        })) {
            let (ts, vs) = samples;
            let s: Vec<(i64, f64)> =
                ts.iter().zip(&vs).map(|(&t, &v)| (t, f64::from_bits(v))).collect();
            let c = encode(&s);
            prop_assert_eq!(c.num_samples(), s.len());
            prop_assert_eq!(decode_bits(c.bytes()), bits(&s));
            prop_assert_eq!(c.first_time(), s.first().map(|x| x.0));
            prop_assert_eq!(c.last_time(), s.last().map(|x| x.0));
            prop_assert_eq!(c.last_value().map(f64::to_bits), s.last().map(|x| x.1.to_bits()));

            // Restoring mid-way and continuing yields the same bytes as never stopping.
            let half = s.len() / 2;
            let mut r = XorChunk::from_bytes(encode(&s[..half]).bytes().to_vec()).unwrap();
            for &(t, v) in &s[half..] {
                r.append(t, v);
            }
            prop_assert_eq!(r.bytes(), c.bytes());

            // Seek finds the first sample at or after any probe.
            if let Some(&(probe, _)) = s.get(s.len() / 3) {
                let want = s.iter().find(|x| x.0 >= probe - 1).map(|x| (x.0, x.1.to_bits()));
                prop_assert_eq!(c.iter().seek(probe - 1).map(|x| (x.0, x.1.to_bits())), want);
            }
        }

        #[test]
        fn arbitrary_timestamps_round_trip_by_wrapping(ts in proptest::collection::vec(any::<i64>(), 1..50)) {
            // Not a valid use (timestamps must increase), but wrapping arithmetic must still
            // decode what was written and never panic.
            let mut c = XorChunk::new();
            let mut prev = None;
            let mut s = Vec::new();
            for t in ts {
                if prev.is_some_and(|p| t <= p) {
                    continue;
                }
                prev = Some(t);
                c.append(t, t as f64);
                s.push((t, t as f64));
            }
            prop_assert_eq!(decode_bits(c.bytes()), bits(&s));
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut it = XorIterator::new(&b);
            let n = it.by_ref().count();
            prop_assert!(n <= it.num_samples());
            let _ = XorChunk::from_bytes(b);
        }
    }
}
