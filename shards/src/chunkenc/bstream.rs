//! MSB-first bit streams over bytes, as Prometheus's `bstream`: the first bit written is the
//! most significant bit of the first byte, and a final partial byte is padded with zeros.
//!
//! The writer is a short-lived view over a caller-owned `Vec<u8>` plus the number of free
//! bits in its last byte, so a chunk can keep its appender state in a few bytes of its own
//! instead of a second struct. The reader works on a borrowed slice (possibly mmapped) and
//! returns `None` instead of reading past the end; it never allocates.

/// A growable byte buffer a `BitWriter` appends to: a `Vec<u8>`, or the head's compact
/// open-chunk buffer.
pub trait ByteSink {
    fn put_bytes(&mut self, b: &[u8]);
    fn last_byte_mut(&mut self) -> Option<&mut u8>;
    fn byte_len(&self) -> usize;
}

impl ByteSink for Vec<u8> {
    #[inline]
    fn put_bytes(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }

    #[inline]
    fn last_byte_mut(&mut self) -> Option<&mut u8> {
        self.last_mut()
    }

    #[inline]
    fn byte_len(&self) -> usize {
        self.len()
    }
}

/// Appends bits to a byte buffer. `free` is how many low bits of the last byte are still
/// unwritten (0..=7; 0 means the next bit starts a new byte).
pub struct BitWriter<'a, B: ByteSink = Vec<u8>> {
    buf: &'a mut B,
    free: u8,
}

impl<'a, B: ByteSink> BitWriter<'a, B> {
    /// Continues a stream whose last byte has `free` unwritten low bits (which must be 0).
    #[inline]
    pub fn new(buf: &'a mut B, free: u8) -> Self {
        debug_assert!(free < 8 && (free == 0 || buf.byte_len() > 0));
        BitWriter { buf, free }
    }

    /// Unwritten low bits of the last byte after the writes so far.
    #[inline]
    pub fn free(&self) -> u8 {
        self.free
    }

    /// Writes whole bytes; the stream must be byte-aligned.
    #[inline]
    pub fn write_aligned_bytes(&mut self, b: &[u8]) {
        debug_assert_eq!(self.free, 0);
        self.buf.put_bytes(b);
    }

    /// Writes the low `nbits` bits of `value` (1..=64), most significant first. Bits of
    /// `value` above `nbits` are ignored.
    #[inline]
    pub fn write_bits(&mut self, value: u64, nbits: u32) {
        debug_assert!((1..=64).contains(&nbits));
        // Left-align so the next bit to write is bit 63 and everything below the payload is 0.
        let mut v = value << (64 - nbits);
        let mut n = nbits;
        if self.free > 0 {
            let free = u32::from(self.free);
            if let Some(last) = self.buf.last_byte_mut() {
                *last |= (v >> (64 - free)) as u8;
            }
            if n <= free {
                self.free -= n as u8;
                return;
            }
            v <<= free;
            n -= free;
        }
        // One copy of up to 8 bytes instead of a loop of pushes; the zero bits of the last
        // byte beyond `n` are exactly the padding the format wants.
        let nbytes = n.div_ceil(8);
        self.buf.put_bytes(&v.to_be_bytes()[..nbytes as usize]);
        self.free = (nbytes * 8 - n) as u8;
    }
}

/// Reads bits MSB-first from a borrowed slice.
#[derive(Clone)]
pub struct BitReader<'a> {
    b: &'a [u8],
    /// Bit position of the next read.
    pos: usize,
}

impl<'a> BitReader<'a> {
    #[inline]
    pub fn new(b: &'a [u8]) -> Self {
        BitReader { b, pos: 0 }
    }

    /// Bits consumed so far.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn remaining_bits(&self) -> usize {
        self.b.len() * 8 - self.pos
    }

    #[inline]
    pub fn read_bit(&mut self) -> Option<bool> {
        let byte = *self.b.get(self.pos >> 3)?;
        let bit = (byte >> (7 - (self.pos & 7))) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    /// Reads `nbits` (1..=64) bits as the low bits of the result; `None` if fewer remain
    /// (the position is then unchanged).
    #[inline]
    pub fn read_bits(&mut self, nbits: u32) -> Option<u64> {
        debug_assert!((1..=64).contains(&nbits));
        let n = nbits as usize;
        if n > self.remaining_bits() {
            return None;
        }
        let byte = self.pos >> 3;
        let off = (self.pos & 7) as u32;
        let mut v = load_be_u64_padded(&self.b[byte..]) << off;
        // An unaligned read of more than 64 - off bits spans a 9th byte, which exists
        // because the length check above passed.
        if n as u32 > 64 - off {
            v |= u64::from(self.b[byte + 8]) >> (8 - off);
        }
        self.pos += n;
        Some(v >> (64 - n))
    }

    #[inline]
    pub fn read_byte(&mut self) -> Option<u8> {
        self.read_bits(8).map(|v| v as u8)
    }
}

/// The first 8 bytes of `b` as a big-endian u64, zero-filled past its end.
#[inline]
fn load_be_u64_padded(b: &[u8]) -> u64 {
    if let Some(head) = b.first_chunk::<8>() {
        u64::from_be_bytes(*head)
    } else {
        let mut a = [0u8; 8];
        a[..b.len()].copy_from_slice(b);
        u64::from_be_bytes(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn msb_first_and_zero_padded() {
        let mut buf = Vec::new();
        let mut w = BitWriter::new(&mut buf, 0);
        w.write_bits(1, 1);
        w.write_bits(0b01, 2);
        assert_eq!(w.free(), 5);
        assert_eq!(buf, [0b1010_0000]);
        let mut w = BitWriter::new(&mut buf, 5);
        w.write_bits(0x1ff, 9);
        assert_eq!(buf, [0b1011_1111, 0b1111_0000]);
    }

    #[test]
    fn reader_stops_at_end() {
        let b = [0xAB];
        let mut r = BitReader::new(&b);
        assert_eq!(r.read_bits(9), None);
        assert_eq!(r.read_bits(4), Some(0xA));
        assert_eq!(r.read_bit(), Some(true));
        assert_eq!(r.read_bits(3), Some(0b011));
        assert_eq!(r.read_bit(), None);
    }

    proptest! {
        #[test]
        fn round_trip(fields in proptest::collection::vec((any::<u64>(), 1u32..=64), 0..200)) {
            let mut buf = Vec::new();
            let mut free = 0;
            for &(v, n) in &fields {
                let mut w = BitWriter::new(&mut buf, free);
                w.write_bits(v, n);
                free = w.free();
            }
            let total: usize = fields.iter().map(|&(_, n)| n as usize).sum();
            prop_assert_eq!(buf.len(), total.div_ceil(8));
            let mut r = BitReader::new(&buf);
            for &(v, n) in &fields {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                prop_assert_eq!(r.read_bits(n), Some(v & mask));
            }
            prop_assert!(r.remaining_bits() < 8);
            while let Some(bit) = r.read_bit() {
                prop_assert!(!bit, "padding must be zero");
            }
        }
    }
}
