//! Gunzip of a whole gzip member at once with libdeflate, which inflates scrape bodies
//! ~1.7× as fast as the streaming zlib-rs path (see BENCHMARKS.md, branch `cpu4`): gunzip was
//! a quarter of the server's CPU at 100 k samples/s.
//!
//! It owns the only `unsafe` of the scrape client: the libdeflate decompressor's pointer and
//! the call that writes into a body's spare capacity. It answers only "inflated, exactly this
//! one member" or "not handled": it never decides an error, so that whatever it does not
//! handle (several members, trailing bytes, corrupt data, a wrong size field) goes to the
//! streaming decoder, whose errors are Go's. Pure: no I/O.

use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// Shortest gzip member: 10 header bytes, an empty final block (2 bytes), 8 trailer bytes.
const MIN_MEMBER: usize = 20;

/// Deflate expands at most 1032:1 (a 258-byte match costs at least two bits, and a block
/// header some more), so a size field claiming more is a lie and never gets its buffer.
const MAX_RATIO: usize = 1032;

/// A libdeflate decompressor, allocated on the first body and reused.
pub struct WholeGunzip {
    decompressor: NonNull<libdeflate_decompressor>,
}

impl WholeGunzip {
    /// `None` when libdeflate cannot allocate its state (the caller then streams).
    pub fn new() -> Option<WholeGunzip> {
        // SAFETY: no arguments; a null result is handled.
        let p = unsafe { libdeflate_alloc_decompressor() };
        NonNull::new(p).map(|decompressor| WholeGunzip { decompressor })
    }

    /// Inflates `member`, which must be exactly one complete gzip member, appending to
    /// `out`; `true` if it did (CRC-32 and size checked by libdeflate). `false` leaves `out`
    /// as it was: not one member, corrupt, or a decompressed size of `limit` bytes or more
    /// (with `out`'s current length), any of which the streaming decoder must judge.
    pub fn inflate(&mut self, member: &[u8], out: &mut Vec<u8>, limit: usize) -> bool {
        if member.len() < MIN_MEMBER {
            return false;
        }
        let isize_field = &member[member.len() - 4..];
        let size = u32::from_le_bytes([
            isize_field[0],
            isize_field[1],
            isize_field[2],
            isize_field[3],
        ]) as usize;
        // The size field is the length modulo 2^32: a body of 4 GiB or more, or one whose
        // field lies, is either refused below (the field bounds the output buffer) or
        // caught by libdeflate's own length check.
        if size > member.len().saturating_mul(MAX_RATIO) || out.len().saturating_add(size) >= limit
        {
            return false;
        }
        out.reserve(size);
        let spare = out.spare_capacity_mut();
        let (mut used, mut written) = (0usize, 0usize);
        // SAFETY: the input is a live slice of `member.len()` bytes; the output pointer is
        // `out`'s spare capacity, at least `size` bytes after the `reserve`, and libdeflate
        // writes at most `out_nbytes_avail` bytes there. The decompressor is ours alone.
        let result = unsafe {
            libdeflate_gzip_decompress_ex(
                self.decompressor.as_ptr(),
                member.as_ptr().cast(),
                member.len(),
                spare.as_mut_ptr().cast(),
                size,
                &mut used,
                &mut written,
            )
        };
        if result != libdeflate_result_LIBDEFLATE_SUCCESS || used != member.len() {
            return false;
        }
        // libdeflate checked that `written` equals the size field, and wrote that many.
        debug_assert_eq!(written, size);
        // SAFETY: libdeflate initialised `written` (≤ `size` ≤ spare capacity) bytes.
        unsafe { out.set_len(out.len() + written) };
        true
    }
}

impl Drop for WholeGunzip {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_decompressor`, freed once.
        unsafe { libdeflate_free_decompressor(self.decompressor.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::{Compression, GzBuilder};
    use proptest::prelude::*;
    use std::io::Write;

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn inflates_one_member_after_what_out_holds() {
        let mut w = WholeGunzip::new().unwrap();
        let mut out = b"kept ".to_vec();
        assert!(w.inflate(&gzip(b"up 1\n", 6), &mut out, usize::MAX));
        assert_eq!(out, b"kept up 1\n");
    }

    #[test]
    fn leaves_everything_unusual_to_the_streaming_decoder() {
        let mut w = WholeGunzip::new().unwrap();
        let body = b"a_metric 1\n".repeat(100);
        let member = gzip(&body, 1);
        let mut out = Vec::new();
        // Two members, trailing bytes, a cut member.
        let two = [member.clone(), gzip(b"b 2\n", 1)].concat();
        assert!(!w.inflate(&two, &mut out, usize::MAX));
        assert!(!w.inflate(&[member.clone(), vec![0]].concat(), &mut out, usize::MAX));
        assert!(!w.inflate(&member[..member.len() - 1], &mut out, usize::MAX));
        // A flipped CRC bit, a size field one short or one long.
        let mut bad = member.clone();
        let n = bad.len();
        bad[n - 8] ^= 1;
        assert!(!w.inflate(&bad, &mut out, usize::MAX));
        for delta in [-1i64, 1] {
            let mut bad = member.clone();
            let size = (body.len() as i64 + delta) as u32;
            bad[n - 4..].copy_from_slice(&size.to_le_bytes());
            assert!(!w.inflate(&bad, &mut out, usize::MAX));
        }
        // Reaching the limit is the streaming decoder's error to give.
        assert!(!w.inflate(&member, &mut out, body.len()));
        assert!(out.is_empty());
        assert!(w.inflate(&member, &mut out, body.len() + 1));
        assert_eq!(out, body);
    }

    #[test]
    fn header_fields_are_passed_over() {
        let mut e = GzBuilder::new()
            .filename("metrics.txt")
            .comment("a comment")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), Compression::default());
        e.write_all(b"x 1\n").unwrap();
        let member = e.finish().unwrap();
        let mut out = Vec::new();
        assert!(WholeGunzip::new()
            .unwrap()
            .inflate(&member, &mut out, usize::MAX));
        assert_eq!(out, b"x 1\n");
    }

    proptest! {
        /// Whatever the body and level, one member inflates to the body.
        #[test]
        fn round_trips(body in proptest::collection::vec(any::<u8>(), 0..4000), level in 0u32..10) {
            let mut w = WholeGunzip::new().unwrap();
            let mut out = Vec::new();
            prop_assert!(w.inflate(&gzip(&body, level), &mut out, usize::MAX));
            prop_assert_eq!(out, body);
        }

        /// Corrupt input never panics and never leaves partial output behind.
        #[test]
        fn corrupt_input_is_refused_cleanly(
            body in proptest::collection::vec(any::<u8>(), 1..2000),
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut member = gzip(&body, 6);
            let i = at.index(member.len());
            member[i] ^= 1 << bit;
            let mut out = Vec::new();
            if !WholeGunzip::new().unwrap().inflate(&member, &mut out, usize::MAX) {
                prop_assert!(out.is_empty());
            }
        }
    }
}
