//! The XOR2 float chunk, encoding id 4: Prometheus 3.x's float chunk that can carry a start
//! timestamp (`st`, 0 = none) with every sample. Written from our reading of Prometheus's
//! `tsdb/chunkenc/xor2.go` (and `varbit.go` for the start-timestamp deltas); it must decode
//! what Prometheus writes and write what Prometheus decodes.
//!
//! The head uses it only for series that are given start timestamps while start-timestamp
//! storage is on (`HeadOptions::store_start_timestamps`): Prometheus 2.x cannot read
//! encoding 4, so every other chunk stays XOR. Like `XorChunk`, `Xor2Chunk` owns its bytes and
//! its appender state; `Xor2Iterator` decodes borrowed bytes and never trusts them.
//!
//! Layout:
//!
//! ```text
//! num_samples u16 BE | st header u8 | sample 0 | sample 1 | samples 2.. | zero padding
//!
//! st header: bit 7 = sample 0 carries a start timestamp; bits 6..0 = the index (1..=127)
//!            of the first sample from which every sample carries a start-timestamp delta,
//!            0 when none does. An appender sets it at the latest at sample 127, so that the
//!            index always fits 7 bits.
//! sample 0:  t varint, v 64 raw bits, [t - st varint when header bit 7]
//! sample 1:  t1 - t0 uvarint, value field A, [varbit(t0 - st) when the index is 1]
//! sample n:  control + timestamp + value (below), then, from the index on, a varbit:
//!            at the index itself t_{n-1} - st_n, after it the change of that difference
//!            from the previous sample's.
//!
//! control, timestamp (dod = (t_n - t_{n-1}) - (t_{n-1} - t_{n-2})) and value:
//!   0                      dod = 0, value unchanged
//!   10  + value field B    dod = 0, value changed
//!   110 + 13-bit dod       then value field A   (two's complement, -4096..=4095)
//!   1110 + 20-bit dod      then value field A   (-524288..=524287)
//!   11110 + 64-bit dod     then value field A
//!   11111                  dod = 0, value is the staleness marker
//! value field A: 0 unchanged | 10 + bits in the previous window | 110 + new window | 111 stale
//! value field B: 0 + bits in the previous window | 1 + new window
//! new window: leading zeros (5 bits, clamped to 31), meaningful bits (6 bits, 64 as 0), bits
//! varbit: 0 → 0 | 10+3 | 110+6 | 1110+9 | 11110+12 | 111110+18 | 1111110+25 | 11111110+56
//!         bits, an n-bit field holding -(2^(n-1)-1) ..= 2^(n-1) | 11111111 + 64 raw bits
//! ```
//!
//! Values xor against the last value that was not a staleness marker, so a stale sample
//! never costs the series its window. The encoder keeps the previous window only while a
//! new one would not save more than its own cost (12 bits in field A, 11 in field B), as
//! Prometheus's does; readers do not depend on that choice.

use super::bstream::{BitReader, BitWriter};
use super::ChunkError;
use crate::encoding::{put_uvarint, unzigzag, zigzag};

/// Sample count (2 bytes) and the start-timestamp header byte.
const HEADER_SIZE: usize = 3;
/// The largest sample index the start-timestamp header can name.
const MAX_FIRST_ST_CHANGE_ON: u16 = 0x7f;
const FIRST_ST_KNOWN: u8 = 0x80;
const LEADING_UNSET: u8 = 0xff;
/// Prometheus's staleness marker: a NaN with this exact bit pattern.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
/// Largest growth one append can cause: 69 bits of time, 80 of value, 72 of start time.
const MAX_APPEND_BYTES: usize = 32;
const INITIAL_CAPACITY: usize = 64;

/// An appendable XOR2 chunk: its bytes plus the state to keep appending.
#[derive(Clone)]
pub struct Xor2Chunk {
    bytes: Vec<u8>,
    st: i64,
    t: i64,
    t_delta: u64,
    /// The last value that was not a staleness marker (what values xor against).
    v_bits: u64,
    /// The newest value as appended, staleness markers included.
    last_v_bits: u64,
    /// `t_{n-1} - st_n` of the newest sample, once start-timestamp deltas are written.
    st_diff: i64,
    first_st_change_on: u16,
    /// Never encoded nor read by the chunk: as `XorChunk`'s, the head's.
    owner_word: u32,
    leading: u8,
    trailing: u8,
    free_bits: u8,
}

impl Default for Xor2Chunk {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Xor2Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xor2Chunk")
            .field("num_samples", &self.num_samples())
            .field("last_time", &self.last_time())
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Xor2Chunk {
    pub fn new() -> Self {
        let mut bytes = Vec::with_capacity(INITIAL_CAPACITY);
        bytes.extend_from_slice(&[0, 0, 0]);
        Xor2Chunk {
            bytes,
            st: 0,
            t: 0,
            t_delta: 0,
            v_bits: 0,
            last_v_bits: 0,
            st_diff: 0,
            first_st_change_on: 0,
            owner_word: 0,
            leading: LEADING_UNSET,
            trailing: 0,
            free_bits: 0,
        }
    }

    /// Restores a chunk and its appender state from bytes read from a file. Corrupt bytes
    /// are an error.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Result<Self, ChunkError> {
        let mut it = Xor2Iterator::new(&bytes);
        for _ in it.by_ref() {}
        if let Some(e) = it.err() {
            return Err(e.clone());
        }
        let count = it.num_total;
        let used_bits = HEADER_SIZE * 8 + it.br.position();
        let mut c = Xor2Chunk {
            st: it.st,
            t: it.t,
            t_delta: it.t_delta,
            v_bits: it.baseline,
            last_v_bits: it.v_bits,
            st_diff: it.st_diff,
            first_st_change_on: u16::from(it.first_st_change_on),
            owner_word: 0,
            leading: it.leading,
            trailing: it.trailing,
            free_bits: 0,
            bytes: Vec::new(),
        };
        let extra = bytes.len() - used_bits.div_ceil(8);
        if extra > 0 {
            return Err(ChunkError::TrailingBytes { count, extra });
        }
        c.free_bits = (bytes.len() * 8 - used_bits) as u8;
        if let Some(last) = bytes.last_mut() {
            *last &= !((1u16 << c.free_bits) - 1) as u8;
        }
        c.bytes = bytes;
        Ok(c)
    }

    /// Appends a sample with start timestamp `st` (0 = none); `t` must be greater than
    /// the last timestamp.
    ///
    /// # Panics
    /// When the chunk already holds `u16::MAX` samples: the head cuts chunks long before.
    pub fn append(&mut self, st: i64, t: i64, v: f64) {
        let n = self.num_samples();
        assert!(
            n < usize::from(u16::MAX),
            "XOR2 chunk sample count overflow"
        );
        debug_assert!(n == 0 || t > self.t, "timestamps must increase");
        if self.bytes.capacity() - self.bytes.len() < MAX_APPEND_BYTES {
            let extra = (self.bytes.len() / 2).max(INITIAL_CAPACITY / 2);
            self.bytes.reserve_exact(extra);
        }
        let v_bits = v.to_bits();
        let mut t_delta = 0u64;
        let mut st_diff = 0i64;
        match n {
            0 => {
                put_uvarint(&mut self.bytes, zigzag(t));
                self.bytes.extend_from_slice(&v_bits.to_be_bytes());
                if st != 0 {
                    put_uvarint(&mut self.bytes, zigzag(t.wrapping_sub(st)));
                    self.bytes[2] = FIRST_ST_KNOWN;
                }
                self.free_bits = 0;
            }
            1 => {
                t_delta = (t as u64).wrapping_sub(self.t as u64);
                put_uvarint(&mut self.bytes, t_delta);
                let mut w = BitWriter::new(&mut self.bytes, 0);
                write_value_a(
                    &mut w,
                    v_bits,
                    self.v_bits,
                    &mut self.leading,
                    &mut self.trailing,
                );
                if st != self.st {
                    st_diff = self.t.wrapping_sub(st);
                    put_varbit_int(&mut w, st_diff);
                    self.first_st_change_on = 1;
                }
                self.free_bits = w.free();
                if self.first_st_change_on == 1 {
                    self.bytes[2] |= 1;
                }
            }
            _ => {
                t_delta = (t as u64).wrapping_sub(self.t as u64);
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                let mut w = BitWriter::new(&mut self.bytes, self.free_bits);
                write_joint(
                    &mut w,
                    dod,
                    v_bits,
                    self.v_bits,
                    &mut self.leading,
                    &mut self.trailing,
                );
                let mut header_change = None;
                if self.first_st_change_on > 0 {
                    st_diff = self.t.wrapping_sub(st);
                    put_varbit_int(&mut w, st_diff.wrapping_sub(self.st_diff));
                } else if st != self.st || n == usize::from(MAX_FIRST_ST_CHANGE_ON) {
                    st_diff = self.t.wrapping_sub(st);
                    put_varbit_int(&mut w, st_diff);
                    self.first_st_change_on = n as u16;
                    header_change = Some(n as u8);
                }
                self.free_bits = w.free();
                if let Some(h) = header_change {
                    self.bytes[2] |= h;
                }
            }
        }
        self.st = st;
        self.t = t;
        self.t_delta = t_delta;
        self.st_diff = st_diff;
        self.last_v_bits = v_bits;
        if v_bits != STALE_NAN {
            self.v_bits = v_bits;
        }
        self.bytes[..2].copy_from_slice(&(n as u16 + 1).to_be_bytes());
    }

    /// The owner's word, 0 until set (see `XorChunk::owner_word`).
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
        usize::from(u16::from_be_bytes([self.bytes[0], self.bytes[1]]))
    }

    /// Exactly Prometheus's chunk bytes, headers included.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn first_time(&self) -> Option<i64> {
        if self.num_samples() == 0 {
            return None;
        }
        crate::encoding::Decbuf::new(&self.bytes[HEADER_SIZE..])
            .varint()
            .ok()
    }

    #[inline]
    pub fn last_time(&self) -> Option<i64> {
        (self.num_samples() > 0).then_some(self.t)
    }

    #[inline]
    pub fn last_value(&self) -> Option<f64> {
        (self.num_samples() > 0).then(|| f64::from_bits(self.last_v_bits))
    }

    pub fn iter(&self) -> Xor2Iterator<'_> {
        Xor2Iterator::new(&self.bytes)
    }

    #[inline]
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

/// Whether `v` fits an n-bit varbit field: `-(2^(n-1) - 1) ..= 2^(n-1)`.
#[inline]
fn bit_range(v: i64, n: u32) -> bool {
    let half = 1i64 << (n - 1);
    -(half - 1) <= v && v <= half
}

/// The varbit integer encoding (see the module's layout).
fn put_varbit_int(w: &mut BitWriter<'_>, v: i64) {
    let u = v as u64;
    let mask = |n: u32| u & ((1u64 << n) - 1);
    if v == 0 {
        w.write_bits(0, 1);
    } else if bit_range(v, 3) {
        w.write_bits((0b10 << 3) | mask(3), 5);
    } else if bit_range(v, 6) {
        w.write_bits((0b110 << 6) | mask(6), 9);
    } else if bit_range(v, 9) {
        w.write_bits((0b1110 << 9) | mask(9), 13);
    } else if bit_range(v, 12) {
        w.write_bits((0b11110 << 12) | mask(12), 17);
    } else if bit_range(v, 18) {
        w.write_bits((0b111110 << 18) | mask(18), 24);
    } else if bit_range(v, 25) {
        w.write_bits((0b1111110 << 25) | mask(25), 32);
    } else if bit_range(v, 56) {
        w.write_bits(0b1111_1110, 8);
        w.write_bits(mask(56), 56);
    } else {
        w.write_bits(0b1111_1111, 8);
        w.write_bits(u, 64);
    }
}

/// Control, timestamp and value of a sample from index 2 on.
fn write_joint(
    w: &mut BitWriter<'_>,
    dod: i64,
    v_bits: u64,
    prev_bits: u64,
    leading: &mut u8,
    trailing: &mut u8,
) {
    if dod == 0 {
        if v_bits == STALE_NAN {
            w.write_bits(0b11111, 5);
            return;
        }
        let x = v_bits ^ prev_bits;
        if x == 0 {
            w.write_bits(0, 1);
            return;
        }
        w.write_bits(0b10, 2);
        write_window(w, x, leading, trailing, (0, 1), (1, 1), 11);
        return;
    }
    let d = dod as u64;
    if (-(1 << 12)..(1 << 12)).contains(&dod) {
        w.write_bits((0b110 << 13) | (d & 0x1fff), 16);
    } else if (-(1 << 19)..(1 << 19)).contains(&dod) {
        w.write_bits((0b1110 << 20) | (d & 0xf_ffff), 24);
    } else {
        w.write_bits(0b11110, 5);
        w.write_bits(d, 64);
    }
    write_value_a(w, v_bits, prev_bits, leading, trailing);
}

/// Value field A: `0` unchanged, `10` previous window, `110` new window, `111` stale.
fn write_value_a(
    w: &mut BitWriter<'_>,
    v_bits: u64,
    prev_bits: u64,
    leading: &mut u8,
    trailing: &mut u8,
) {
    if v_bits == STALE_NAN {
        w.write_bits(0b111, 3);
        return;
    }
    let x = v_bits ^ prev_bits;
    if x == 0 {
        w.write_bits(0, 1);
        return;
    }
    write_window(w, x, leading, trailing, (0b10, 2), (0b110, 3), 12);
}

/// A non-zero xor in the previous window (after control `reuse`) or in a new one (after
/// control `open`); controls are (bits, width). The previous window is kept unless a new
/// one saves more than `new_cost` bits.
fn write_window(
    w: &mut BitWriter<'_>,
    x: u64,
    leading: &mut u8,
    trailing: &mut u8,
    reuse: (u64, u32),
    open: (u64, u32),
    new_cost: u32,
) {
    let lz = (x.leading_zeros() as u8).min(31);
    let tz = x.trailing_zeros() as u8;
    let fits = *leading != LEADING_UNSET && lz >= *leading && tz >= *trailing;
    if fits
        && u32::from(lz) + u32::from(tz) <= u32::from(*leading) + u32::from(*trailing) + new_cost
    {
        let sig = 64 - u32::from(*leading) - u32::from(*trailing);
        w.write_bits(reuse.0, reuse.1);
        w.write_bits(x >> *trailing, sig);
        return;
    }
    *leading = lz;
    *trailing = tz;
    let sig = 64 - u32::from(lz) - u32::from(tz);
    w.write_bits(open.0, open.1);
    w.write_bits((u64::from(lz) << 6) | u64::from(sig & 63), 11);
    w.write_bits(x >> tz, sig);
}

/// Decodes XOR2 chunk bytes, which may be mmapped, torn or corrupt. Yields `(t, v)`;
/// `st()` is the start timestamp of the sample last yielded.
#[derive(Clone)]
pub struct Xor2Iterator<'a> {
    br: BitReader<'a>,
    num_total: u16,
    num_read: u16,
    first_st_known: bool,
    first_st_change_on: u8,
    st: i64,
    t: i64,
    t_delta: u64,
    st_diff: i64,
    v_bits: u64,
    baseline: u64,
    leading: u8,
    trailing: u8,
    err: Option<ChunkError>,
}

/// Why a read stopped: `None` for a short stream, else what was malformed.
type Fail = Option<&'static str>;

impl<'a> Xor2Iterator<'a> {
    pub fn new(chunk_bytes: &'a [u8]) -> Self {
        let (num_total, header, stream, err) = match chunk_bytes.split_first_chunk::<HEADER_SIZE>()
        {
            Some((h, rest)) => (u16::from_be_bytes([h[0], h[1]]), h[2], rest, None),
            None => (
                0,
                0,
                &[][..],
                Some(ChunkError::TooShort {
                    len: chunk_bytes.len(),
                }),
            ),
        };
        Xor2Iterator {
            br: BitReader::new(stream),
            num_total,
            num_read: 0,
            first_st_known: header & FIRST_ST_KNOWN != 0,
            first_st_change_on: header & 0x7f,
            st: 0,
            t: 0,
            t_delta: 0,
            st_diff: 0,
            v_bits: 0,
            baseline: 0,
            // A 0/0 window until one is opened, as Prometheus's reader starts; an appender
            // restored from these bytes continues from it just as Prometheus's does.
            leading: 0,
            trailing: 0,
            err,
        }
    }

    pub fn num_samples(&self) -> usize {
        usize::from(self.num_total)
    }

    /// Start timestamp of the sample last returned (0 = none).
    #[inline]
    pub fn st(&self) -> i64 {
        self.st
    }

    /// Advances to the first sample with timestamp >= t (never backwards).
    pub fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        if self.err.is_some() {
            return None;
        }
        if self.num_read > 0 && self.t >= t {
            return Some((self.t, f64::from_bits(self.v_bits)));
        }
        for (ts, v) in self.by_ref() {
            if ts >= t {
                return Some((ts, v));
            }
        }
        None
    }

    pub fn err(&self) -> Option<&ChunkError> {
        self.err.as_ref()
    }

    fn fail(&mut self, reason: Fail) -> Option<(i64, f64)> {
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

    fn read_uvarint(&mut self) -> Result<u64, Fail> {
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

    /// Consecutive one bits, at most `max`, consuming the terminating zero if any.
    fn ones(&mut self, max: u32) -> Result<u32, Fail> {
        let mut n = 0;
        while n < max {
            if !self.br.read_bit().ok_or(None)? {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    fn read_bits(&mut self, n: u32) -> Result<u64, Fail> {
        self.br.read_bits(n).ok_or(None)
    }

    fn read_varbit_int(&mut self) -> Result<i64, Fail> {
        let size = match self.ones(8)? {
            0 => return Ok(0),
            1 => 3,
            2 => 6,
            3 => 9,
            4 => 12,
            5 => 18,
            6 => 25,
            7 => 56,
            _ => return Ok(self.read_bits(64)? as i64),
        };
        let bits = self.read_bits(size)?;
        Ok(if bits > 1 << (size - 1) {
            bits as i64 - (1i64 << size)
        } else {
            bits as i64
        })
    }

    /// A signed two's-complement dod of `w` bits.
    fn read_dod(&mut self, w: u32) -> Result<(), Fail> {
        let b = self.read_bits(w)?;
        let dod = if w < 64 && b >= 1 << (w - 1) {
            (b as i64).wrapping_sub(1i64 << w)
        } else {
            b as i64
        };
        self.t_delta = self.t_delta.wrapping_add(dod as u64);
        self.t = (self.t as u64).wrapping_add(self.t_delta) as i64;
        Ok(())
    }

    fn read_new_window(&mut self) -> Result<(), Fail> {
        let control = self.read_bits(11)?;
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
        self.read_window_bits()
    }

    fn read_window_bits(&mut self) -> Result<(), Fail> {
        let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = self.read_bits(sig)?;
        self.v_bits = self.baseline ^ (bits << self.trailing);
        self.baseline = self.v_bits;
        Ok(())
    }

    /// Value field A.
    fn read_value_a(&mut self) -> Result<(), Fail> {
        match self.ones(3)? {
            0 => self.v_bits = self.baseline,
            1 => self.read_window_bits()?,
            2 => self.read_new_window()?,
            _ => self.v_bits = STALE_NAN,
        }
        Ok(())
    }

    fn step(&mut self) -> Result<(), Fail> {
        match self.num_read {
            0 => {
                self.t = unzigzag(self.read_uvarint()?);
                self.v_bits = self.read_bits(64)?;
                if self.v_bits != STALE_NAN {
                    self.baseline = self.v_bits;
                }
                if self.first_st_known {
                    let d = unzigzag(self.read_uvarint()?);
                    self.st = self.t.wrapping_sub(d);
                }
            }
            1 => {
                let prev_t = self.t;
                self.t_delta = self.read_uvarint()?;
                self.t = (self.t as u64).wrapping_add(self.t_delta) as i64;
                self.read_value_a()?;
                if self.first_st_change_on == 1 {
                    self.st_diff = self.read_varbit_int()?;
                    self.st = prev_t.wrapping_sub(self.st_diff);
                }
            }
            n => {
                let prev_t = self.t;
                match self.ones(5)? {
                    0 => {
                        self.t = (self.t as u64).wrapping_add(self.t_delta) as i64;
                        self.v_bits = self.baseline;
                    }
                    1 => {
                        self.t = (self.t as u64).wrapping_add(self.t_delta) as i64;
                        if self.read_bits(1)? == 0 {
                            self.read_window_bits()?;
                        } else {
                            self.read_new_window()?;
                        }
                    }
                    2 => {
                        self.read_dod(13)?;
                        self.read_value_a()?;
                    }
                    3 => {
                        self.read_dod(20)?;
                        self.read_value_a()?;
                    }
                    4 => {
                        self.read_dod(64)?;
                        self.read_value_a()?;
                    }
                    _ => {
                        self.t = (self.t as u64).wrapping_add(self.t_delta) as i64;
                        self.v_bits = STALE_NAN;
                    }
                }
                let change_on = u16::from(self.first_st_change_on);
                if change_on > 0 && n >= change_on {
                    let d = self.read_varbit_int()?;
                    self.st_diff = if n == change_on {
                        d
                    } else {
                        self.st_diff.wrapping_add(d)
                    };
                    self.st = prev_t.wrapping_sub(self.st_diff);
                }
            }
        }
        Ok(())
    }
}

impl Iterator for Xor2Iterator<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.err.is_some() || self.num_read >= self.num_total {
            return None;
        }
        if let Err(reason) = self.step() {
            return self.fail(reason);
        }
        self.num_read += 1;
        Some((self.t, f64::from_bits(self.v_bits)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.num_total - self.num_read)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Sample = (i64, i64, u64);

    fn encode(samples: &[Sample]) -> Xor2Chunk {
        let mut c = Xor2Chunk::new();
        for &(st, t, v) in samples {
            c.append(st, t, f64::from_bits(v));
        }
        c
    }

    fn decode(b: &[u8]) -> Vec<Sample> {
        let mut it = Xor2Iterator::new(b);
        let mut out = Vec::new();
        while let Some((t, v)) = it.next() {
            out.push((it.st(), t, v.to_bits()));
        }
        assert_eq!(it.err(), None);
        out
    }

    #[test]
    fn without_start_timestamps_the_header_stays_zero() {
        let s: Vec<Sample> = (0..200)
            .map(|i| (0, i * 15_000, (i as f64).to_bits()))
            .collect();
        let c = encode(&s);
        // Sample 127 forces the change index even though no start timestamp ever came.
        assert_eq!(c.bytes()[2], 127);
        assert_eq!(decode(c.bytes()), s);
        let c = encode(&s[..100]);
        assert_eq!(c.bytes()[2], 0);
        assert_eq!(decode(c.bytes()), &s[..100]);
    }

    #[test]
    fn header_records_the_first_start_and_the_first_change() {
        let c = encode(&[(900, 1000, 1), (900, 2000, 2), (1500, 3000, 3)]);
        assert_eq!(c.bytes()[2], 0x80 | 2);
        assert_eq!(c.first_time(), Some(1000));
        assert_eq!(c.last_time(), Some(3000));
        assert_eq!(
            decode(c.bytes()),
            [(900, 1000, 1), (900, 2000, 2), (1500, 3000, 3)]
        );
    }

    #[test]
    fn varbit_edges_round_trip() {
        for v in [
            0i64,
            1,
            -3,
            4,
            5,
            -31,
            32,
            33,
            -255,
            256,
            -2047,
            2048,
            -131_071,
            131_072,
            -16_777_215,
            16_777_216,
            1 << 55,
            -(1 << 55) + 1,
            1 << 56,
            i64::MIN,
            i64::MAX,
        ] {
            let mut buf = vec![];
            let mut w = BitWriter::new(&mut buf, 0);
            put_varbit_int(&mut w, v);
            let mut it = Xor2Iterator::new(&[0, 0, 0]);
            it.br = BitReader::new(&buf);
            assert_eq!(it.read_varbit_int(), Ok(v), "{v}");
        }
    }

    /// Chunk sizes Prometheus's own test (`TestXOR2WindowSelection`, the cases without
    /// timestamp jitter) pins for its encoder: 120 samples at 15 s, start timestamps moving
    /// every 60 samples or absent, appending resumed from the bytes after sample 5.
    #[test]
    fn sizes_match_prometheus_for_its_window_cases() {
        let sign = |i: i64| {
            let v = 1e9 + i as f64;
            if i == 2 {
                -v
            } else {
                v
            }
        };
        let zero = |i: i64| {
            if i == 2 {
                0.0
            } else {
                1000.0 + i as f64 * 0.125
            }
        };
        type Values<'a> = &'a dyn Fn(i64) -> f64;
        let cases: [(&str, Values, bool, usize); 4] = [
            ("sign-excursion", &sign, false, 225),
            ("sign-excursion", &sign, true, 408),
            ("zero-excursion", &zero, false, 175),
            ("zero-excursion", &zero, true, 358),
        ];
        for (name, value, with_st, want) in cases {
            let s: Vec<Sample> = (0..120)
                .map(|i| {
                    let st = if with_st {
                        1_699_999_990_000 + (i / 60) * 900_000
                    } else {
                        0
                    };
                    (st, 1_700_000_000_000 + i * 15_000, value(i).to_bits())
                })
                .collect();
            let mut c = encode(&s[..5]);
            c = Xor2Chunk::from_bytes(c.bytes().to_vec()).unwrap();
            for &(st, t, v) in &s[5..] {
                c.append(st, t, f64::from_bits(v));
            }
            assert_eq!(c.bytes().len(), want, "{name} st={with_st}");
            assert_eq!(decode(c.bytes()), s, "{name} st={with_st}");
        }
    }

    fn samples() -> impl Strategy<Value = Vec<Sample>> {
        let delta = prop_oneof![
            1i64..=30,
            1i64..=20_000,
            1i64..=2_000_000,
            1i64..=(1i64 << 40),
        ];
        let value = prop_oneof![
            any::<u64>(),
            Just(STALE_NAN),
            (0u64..1000).prop_map(|i| (i as f64).to_bits()),
            (0u64..4).prop_map(|i| (i as f64 * 0.1).to_bits()),
        ];
        // Absent, constant, close to t and arbitrary start timestamps, mixed in one chunk.
        let start = prop_oneof![
            Just(None),
            Just(Some(-1)),
            (0i64..100).prop_map(Some),
            any::<i64>().prop_map(Some),
        ];
        (
            -(1i64 << 50)..(1i64 << 50),
            proptest::collection::vec((delta, value, start), 0..300),
        )
            .prop_map(|(mut t, rest)| {
                let mut out = Vec::new();
                for (d, v, st) in rest {
                    t += d;
                    let st = match st {
                        None => 0,
                        Some(-1) => 1_000,
                        Some(x) if x < 100 => t.wrapping_sub(x),
                        Some(x) => x,
                    };
                    out.push((st, t, v));
                }
                out
            })
    }

    proptest! {
        #[test]
        fn round_trip(s in samples()) {
            let c = encode(&s);
            prop_assert_eq!(c.num_samples(), s.len());
            prop_assert_eq!(decode(c.bytes()), s.clone());
            prop_assert_eq!(c.first_time(), s.first().map(|x| x.1));
            prop_assert_eq!(c.last_time(), s.last().map(|x| x.1));
            prop_assert_eq!(c.last_value().map(f64::to_bits), s.last().map(|x| x.2));

            // Restoring mid-way and continuing decodes the same samples.
            let half = s.len() / 2;
            let mut r = Xor2Chunk::from_bytes(encode(&s[..half]).bytes().to_vec()).unwrap();
            for &(st, t, v) in &s[half..] {
                r.append(st, t, f64::from_bits(v));
            }
            prop_assert_eq!(decode(r.bytes()), s.clone());

            if let Some(&(_, probe, _)) = s.get(s.len() / 3) {
                let want = s.iter().find(|x| x.1 >= probe - 1).map(|x| (x.1, x.2));
                prop_assert_eq!(c.iter().seek(probe - 1).map(|x| (x.0, x.1.to_bits())), want);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut it = Xor2Iterator::new(&b);
            let n = it.by_ref().count();
            prop_assert!(n <= it.num_samples());
            let _ = Xor2Chunk::from_bytes(b);
        }
    }
}
