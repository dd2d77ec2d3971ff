//! Thirty-two bytes of the body at once, as bit masks of byte classes (bit `k` set when
//! byte `k` belongs to the class): a label or a metric name is then found with a few bit
//! operations instead of a chain of byte tests, each waiting on the one before. On x86_64
//! the masks come from SSE2, which every x86_64 processor has; elsewhere from the same
//! eight-byte words as `swar`. This file only classifies bytes; it never decides what a
//! token means.

/// The 32 bytes at some index of the body.
#[derive(Clone, Copy)]
pub(crate) struct Window(imp::Bytes);

impl Window {
    /// The window at `s[i..i + 32]`, if that many bytes remain.
    #[inline(always)]
    pub(crate) fn at(s: &[u8], i: usize) -> Option<Window> {
        let chunk: &[u8; 32] = s.get(i..)?.first_chunk()?;
        Some(Window(imp::Bytes::load(chunk)))
    }

    /// Bytes equal to `b`.
    #[inline(always)]
    pub(crate) fn eq(self, b: u8) -> u32 {
        self.0.eq(b)
    }

    /// ASCII digits.
    #[inline(always)]
    pub(crate) fn digits(self) -> u32 {
        self.0.in_range(b'0', b'9')
    }

    /// Bytes that may continue a label name: `[a-zA-Z0-9_]`.
    #[inline(always)]
    pub(crate) fn label_name(self) -> u32 {
        self.0.letters() | self.digits() | self.eq(b'_')
    }

    /// Bytes that may continue a metric name: `[a-zA-Z0-9_:]`.
    #[inline(always)]
    pub(crate) fn metric_name(self) -> u32 {
        self.0.letters() | self.0.in_range(b'0', b':') | self.eq(b'_')
    }
}

/// Two windows side by side: 64 bytes, masks as `u64`.
#[derive(Clone, Copy)]
pub(crate) struct Window64(Window, Window);

impl Window64 {
    /// The 64 bytes at `s[i..i + 64]`, if that many remain.
    #[inline(always)]
    pub(crate) fn at(s: &[u8], i: usize) -> Option<Window64> {
        if s.len().checked_sub(i)? < 64 {
            return None;
        }
        Some(Window64(Window::at(s, i)?, Window::at(s, i + 32)?))
    }

    #[inline(always)]
    fn join(self, class: impl Fn(Window) -> u32) -> u64 {
        u64::from(class(self.0)) | (u64::from(class(self.1)) << 32)
    }

    /// Bytes equal to `b`.
    #[inline(always)]
    pub(crate) fn eq(self, b: u8) -> u64 {
        self.join(|w| w.eq(b))
    }

    /// ASCII digits.
    #[inline(always)]
    pub(crate) fn digits(self) -> u64 {
        self.join(Window::digits)
    }

    /// Bytes that may continue a label name: `[a-zA-Z0-9_]`.
    #[inline(always)]
    pub(crate) fn label_name(self) -> u64 {
        self.join(Window::label_name)
    }
}

/// The classes a label set is checked with, from a window of either width, as `u64` masks
/// (clear past the window).
pub(crate) trait ClassMasks: Copy {
    fn eq(self, b: u8) -> u64;
    fn digits(self) -> u64;
    fn label_name(self) -> u64;
    /// A backslash or a newline.
    fn escape_or_newline(self) -> u64;
}

impl ClassMasks for Window {
    #[inline(always)]
    fn eq(self, b: u8) -> u64 {
        u64::from(Window::eq(self, b))
    }
    #[inline(always)]
    fn digits(self) -> u64 {
        u64::from(Window::digits(self))
    }
    #[inline(always)]
    fn label_name(self) -> u64 {
        u64::from(Window::label_name(self))
    }
    #[inline(always)]
    fn escape_or_newline(self) -> u64 {
        u64::from(self.0.eq_either(b'\\', b'\n'))
    }
}

impl ClassMasks for Window64 {
    #[inline(always)]
    fn eq(self, b: u8) -> u64 {
        Window64::eq(self, b)
    }
    #[inline(always)]
    fn digits(self) -> u64 {
        Window64::digits(self)
    }
    #[inline(always)]
    fn label_name(self) -> u64 {
        Window64::label_name(self)
    }
    #[inline(always)]
    fn escape_or_newline(self) -> u64 {
        self.join(|w| w.0.eq_either(b'\\', b'\n'))
    }
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8, _mm_set_epi64x,
    };

    // SAFETY (every `unsafe` below): these intrinsics only compute on registers, and SSE2,
    // the one feature they need, is part of the x86_64 baseline that every build targets.

    #[derive(Clone, Copy)]
    pub(super) struct Bytes {
        lo: __m128i,
        hi: __m128i,
    }

    impl Bytes {
        #[inline(always)]
        pub(super) fn load(chunk: &[u8; 32]) -> Bytes {
            let word = |k: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&chunk[k..k + 8]);
                i64::from_le_bytes(w)
            };
            // Compiles to two unaligned loads.
            unsafe {
                Bytes {
                    lo: _mm_set_epi64x(word(8), word(0)),
                    hi: _mm_set_epi64x(word(24), word(16)),
                }
            }
        }

        #[inline(always)]
        fn mask(self, class: impl Fn(__m128i) -> __m128i) -> u32 {
            let (lo, hi) = unsafe {
                (
                    _mm_movemask_epi8(class(self.lo)),
                    _mm_movemask_epi8(class(self.hi)),
                )
            };
            (lo as u32 & 0xffff) | ((hi as u32) << 16)
        }

        #[inline(always)]
        pub(super) fn eq(self, b: u8) -> u32 {
            self.mask(|v| unsafe { _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)) })
        }

        #[inline(always)]
        pub(super) fn eq_either(self, a: u8, b: u8) -> u32 {
            self.mask(|v| unsafe {
                _mm_or_si128(
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(a as i8)),
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)),
                )
            })
        }

        /// `lo <= byte <= hi`, for `0 < lo <= hi < 0x7f`: signed comparisons, in which
        /// bytes from 0x80 up are negative and so below `lo`.
        #[inline(always)]
        pub(super) fn in_range(self, lo: u8, hi: u8) -> u32 {
            self.mask(|v| unsafe { range(v, lo, hi) })
        }

        /// `[a-zA-Z]`: setting 0x20 folds upper case onto lower case and nothing else onto
        /// a-z.
        #[inline(always)]
        pub(super) fn letters(self) -> u32 {
            self.mask(|v| unsafe { range(_mm_or_si128(v, _mm_set1_epi8(0x20)), b'a', b'z') })
        }
    }

    #[inline(always)]
    unsafe fn range(v: __m128i, lo: u8, hi: u8) -> __m128i {
        _mm_and_si128(
            _mm_cmpgt_epi8(v, _mm_set1_epi8(lo as i8 - 1)),
            _mm_cmplt_epi8(v, _mm_set1_epi8(hi as i8 + 1)),
        )
    }
}

#[cfg(not(target_arch = "x86_64"))]
use portable as imp;

/// The same classes from eight-byte words; the only ones on other architectures, and the
/// reference the SSE2 ones are tested against.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
mod portable {
    use super::super::swar;

    #[derive(Clone, Copy)]
    pub(super) struct Bytes([u64; 4]);

    impl Bytes {
        #[inline(always)]
        pub(super) fn load(chunk: &[u8; 32]) -> Bytes {
            let mut words = [0u64; 4];
            for (k, word) in words.iter_mut().enumerate() {
                *word = swar::word_or_newlines(chunk, 8 * k);
            }
            Bytes(words)
        }

        /// One bit per byte from the high bits of each word's class.
        #[inline(always)]
        fn mask(self, class: impl Fn(u64) -> u64) -> u32 {
            self.0.iter().enumerate().fold(0, |mask, (k, &word)| {
                // Gathers the eight high bits into the top byte, in byte order.
                let bits = ((class(word) >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32;
                mask | (bits << (8 * k))
            })
        }

        #[inline(always)]
        pub(super) fn eq(self, b: u8) -> u32 {
            self.mask(|w| swar::equal(w, b))
        }

        #[inline(always)]
        pub(super) fn eq_either(self, a: u8, b: u8) -> u32 {
            self.mask(|w| swar::equal(w, a) | swar::equal(w, b))
        }

        #[inline(always)]
        pub(super) fn in_range(self, lo: u8, hi: u8) -> u32 {
            self.mask(|w| swar::in_range(w, lo, hi))
        }

        #[inline(always)]
        pub(super) fn letters(self) -> u32 {
            self.mask(|w| swar::in_range(w | (swar::ONES * 0x20), b'a', b'z') & !w)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each class against its byte-at-a-time definition, for every byte value in every
    /// position, with both implementations.
    #[test]
    fn classes_match_their_definitions() {
        for pos in 0..32 {
            for b in 0..=255u8 {
                let mut chunk = [b'a'; 32];
                chunk[pos] = b;
                let bit = |mask: u32| mask >> pos & 1 == 1;
                let others = |mask: u32| mask & !(1 << pos);
                let w = Window::at(&chunk, 0).unwrap();
                let p = portable::Bytes::load(&chunk);
                for (got, want) in [
                    (w.eq(b'"'), b == b'"'),
                    (p.eq(b'"'), b == b'"'),
                    (w.digits(), b.is_ascii_digit()),
                    (p.in_range(b'0', b'9'), b.is_ascii_digit()),
                    (w.0.eq_either(b'\\', b'\n'), b == b'\\' || b == b'\n'),
                    (p.eq_either(b'\\', b'\n'), b == b'\\' || b == b'\n'),
                ] {
                    assert_eq!(bit(got), want, "{pos} {b:#x}");
                    assert_eq!(others(got), 0, "{pos} {b:#x}");
                }
                let name = b.is_ascii_alphanumeric() || b == b'_';
                assert_eq!(bit(w.label_name()), name, "{pos} {b:#x}");
                assert_eq!(bit(w.metric_name()), name || b == b':', "{pos} {b:#x}");
                assert_eq!(bit(p.letters()), b.is_ascii_alphabetic(), "{pos} {b:#x}");
                // The other bytes are 'a'.
                assert_eq!(others(w.label_name()), !(1 << pos));
                assert_eq!(others(p.letters()), !(1 << pos));
            }
        }
    }

    #[test]
    fn wide_windows_join_two() {
        let mut bytes = [b'a'; 70];
        bytes[3] = b'"';
        bytes[40] = b'"';
        let w = Window64::at(&bytes, 1).unwrap();
        assert_eq!(w.eq(b'"'), 1 << 2 | 1 << 39);
        assert_eq!(w.label_name(), !(1 << 2 | 1 << 39));
        assert_eq!(w.digits(), 0);
        assert!(Window64::at(&bytes, 7).is_none());
        assert!(Window64::at(&bytes, 6).is_some());
    }

    #[test]
    fn windows_need_32_bytes() {
        assert!(Window::at(&[0; 31], 0).is_none());
        assert!(Window::at(&[0; 40], 9).is_none());
        assert!(Window::at(&[0; 40], 8).is_some());
        assert!(Window::at(&[0; 40], 41).is_none());
    }
}
