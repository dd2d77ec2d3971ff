//! ULIDs, the names of block directories: 48 bits of Unix milliseconds and 80 random bits,
//! written as 26 characters of Crockford's base32, so that names sort by creation time.
//!
//! This file owns the text form and its parsing; it never decides when a block is created.
//! Randomness comes from the kernel (`getrandom`), so two shards creating blocks in the same
//! millisecond never collide in practice.

use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ulid(pub u128);

impl Ulid {
    /// A ULID for `ms` since the epoch and the given 80 random bits (the top 48 of `random`
    /// are ignored).
    pub fn from_parts(ms: u64, random: u128) -> Ulid {
        let ms = u128::from(ms & ((1 << 48) - 1));
        Ulid((ms << 80) | (random & ((1u128 << 80) - 1)))
    }

    /// A new ULID for the current time.
    pub fn new() -> Ulid {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Ulid::from_parts(ms, random_u128())
    }

    pub fn timestamp_ms(self) -> u64 {
        (self.0 >> 80) as u64
    }

    /// Parses the 26-character text form (case-insensitive, as Crockford allows).
    pub fn parse(s: &str) -> Option<Ulid> {
        let b = s.as_bytes();
        if b.len() != 26 || b[0] > b'7' {
            return None;
        }
        let mut v: u128 = 0;
        for &c in b {
            let c = c.to_ascii_uppercase();
            let d = ALPHABET.iter().position(|&a| a == c)?;
            v = (v << 5) | d as u128;
        }
        Some(Ulid(v))
    }
}

impl Default for Ulid {
    fn default() -> Self {
        Ulid::new()
    }
}

impl fmt::Display for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        for (i, o) in out.iter_mut().enumerate() {
            let shift = 5 * (25 - i);
            *o = ALPHABET[((self.0 >> shift) & 31) as usize];
        }
        // Only ASCII from the alphabet above.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

fn random_u128() -> u128 {
    let mut b = [0u8; 16];
    // SAFETY: the pointer and length describe `b`, which outlives the call.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // getrandom cannot fail for 16 bytes on Linux ≥ 3.17 once the pool is initialised;
        // fall back to the clock and address-space noise rather than refusing a block.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return t ^ ((&b as *const _ as usize as u128) << 64);
    }
    u128::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_sorts_by_time() {
        // From the ULID spec: 01ARZ3NDEKTSV4RRFFQ69G5FAV has timestamp 1469922850259.
        let u = Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap();
        assert_eq!(u.timestamp_ms(), 1_469_922_850_259);
        assert_eq!(u.to_string(), "01ARZ3NDEKTSV4RRFFQ69G5FAV");
        assert_eq!(Ulid::parse("01arz3ndektsv4rrffq69g5fav"), Some(u));
        let a = Ulid::from_parts(1000, u128::MAX).to_string();
        let b = Ulid::from_parts(1001, 0).to_string();
        assert!(a < b);
        assert_eq!(Ulid::parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"), None);
        assert_eq!(Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FA"), None);
        assert_eq!(Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FAU"), None);
        assert_ne!(Ulid::new(), Ulid::new());
    }
}
