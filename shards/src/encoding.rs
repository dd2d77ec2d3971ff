//! Primitive encodings shared by every on-disk format of Prometheus's TSDB: big-endian
//! fixed-width integers, Go's `binary.PutUvarint`/`PutVarint` (LEB128, zigzag for signed),
//! length-prefixed strings, and CRC32-Castagnoli.
//!
//! `Encbuf` appends to a caller-owned `Vec<u8>` so hot paths reuse one allocation;
//! `Decbuf` reads from a borrowed slice and reports a typed error instead of panicking,
//! because everything it reads came from a file that may be torn or corrupt.

use thiserror::Error;

/// Why a `Decbuf` could not read what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("unexpected end of data")]
    UnexpectedEof,
    #[error("varint overflows 64 bits")]
    VarintOverflow,
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
}

/// CRC32-Castagnoli, the checksum of every Prometheus TSDB format.
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Appends Prometheus's primitive encodings to a byte vector.
pub struct Encbuf<'a> {
    pub buf: &'a mut Vec<u8>,
}

impl<'a> Encbuf<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Encbuf { buf }
    }

    #[inline]
    pub fn put_u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    #[inline]
    pub fn put_be_u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn put_be_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn put_be_u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn put_be_i64(&mut self, v: i64) {
        self.put_be_u64(v as u64);
    }

    #[inline]
    pub fn put_be_f64(&mut self, v: f64) {
        self.put_be_u64(v.to_bits());
    }

    #[inline]
    pub fn put_uvarint(&mut self, v: u64) {
        put_uvarint(self.buf, v);
    }

    #[inline]
    pub fn put_varint(&mut self, v: i64) {
        put_uvarint(self.buf, zigzag(v));
    }

    /// A uvarint byte length followed by the bytes.
    #[inline]
    pub fn put_uvarint_bytes(&mut self, b: &[u8]) {
        self.put_uvarint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    #[inline]
    pub fn put_uvarint_str(&mut self, s: &str) {
        self.put_uvarint_bytes(s.as_bytes());
    }

    #[inline]
    pub fn put_bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Go's `binary.PutUvarint`.
#[inline]
pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Number of bytes `put_uvarint` writes for `v`.
#[inline]
pub fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads Prometheus's primitive encodings from a borrowed slice.
#[derive(Clone)]
pub struct Decbuf<'a> {
    b: &'a [u8],
}

impl<'a> Decbuf<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Decbuf { b }
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.b.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    /// The bytes not yet read.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        self.b
    }

    #[inline]
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.bytes(n).map(|_| ())
    }

    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.b.len() < n {
            return Err(DecodeError::UnexpectedEof);
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    #[inline]
    pub fn be_u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    #[inline]
    pub fn be_u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    #[inline]
    pub fn be_u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    #[inline]
    pub fn be_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.be_u64()? as i64)
    }

    #[inline]
    pub fn be_f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(self.be_u64()?))
    }

    /// Go's `binary.Uvarint`, refusing overlong encodings that overflow 64 bits.
    #[inline]
    pub fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut x: u64 = 0;
        let mut shift = 0u32;
        for (i, &byte) in self.b.iter().enumerate() {
            if i == 10 || (i == 9 && byte > 1) {
                return Err(DecodeError::VarintOverflow);
            }
            if byte < 0x80 {
                self.b = &self.b[i + 1..];
                return Ok(x | (u64::from(byte) << shift));
            }
            x |= u64::from(byte & 0x7f) << shift;
            shift += 7;
        }
        Err(DecodeError::UnexpectedEof)
    }

    #[inline]
    pub fn varint(&mut self) -> Result<i64, DecodeError> {
        Ok(unzigzag(self.uvarint()?))
    }

    #[inline]
    pub fn uvarint_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::UnexpectedEof)?;
        self.bytes(n)
    }

    #[inline]
    pub fn uvarint_str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.uvarint_bytes()?).map_err(|_| DecodeError::InvalidUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn go_varint_golden() {
        let mut b = Vec::new();
        Encbuf::new(&mut b).put_varint(1000);
        assert_eq!(b, [0xd0, 0x0f]);
        b.clear();
        Encbuf::new(&mut b).put_uvarint(15000);
        assert_eq!(b, [0x98, 0x75]);
        b.clear();
        Encbuf::new(&mut b).put_varint(-2);
        assert_eq!(b, [0x03]);
    }

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert_eq!(
            Decbuf::new(&[0x80]).uvarint(),
            Err(DecodeError::UnexpectedEof)
        );
        assert_eq!(
            Decbuf::new(&[0, 1]).be_u32(),
            Err(DecodeError::UnexpectedEof)
        );
        let over = [0xff; 11];
        assert_eq!(
            Decbuf::new(&over).uvarint(),
            Err(DecodeError::VarintOverflow)
        );
    }

    proptest! {
        #[test]
        fn round_trip(u in any::<u64>(), i in any::<i64>(), s in ".*") {
            let mut b = Vec::new();
            let mut e = Encbuf::new(&mut b);
            e.put_uvarint(u);
            e.put_varint(i);
            e.put_uvarint_str(&s);
            e.put_be_i64(i);
            prop_assert_eq!(uvarint_len(u), {
                let mut t = Vec::new();
                put_uvarint(&mut t, u);
                t.len()
            });
            let mut d = Decbuf::new(&b);
            prop_assert_eq!(d.uvarint().unwrap(), u);
            prop_assert_eq!(d.varint().unwrap(), i);
            prop_assert_eq!(d.uvarint_str().unwrap(), s.as_str());
            prop_assert_eq!(d.be_i64().unwrap(), i);
            prop_assert!(d.is_empty());
        }
    }
}
