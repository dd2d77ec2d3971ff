//! Byte sizes as Prometheus writes them in `body_size_limit` (`units.Base2Bytes`): `0`,
//! `512B`, `10MB`, `1GiB`, `1.5GB`, `1GB512MB`. Both `KB` and `KiB` mean 1024, as in
//! Prometheus; the SI spelling `kB` is refused there and here. This module owns the syntax
//! only, never what a limit means.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

const UNITS: [(&str, &str, u64); 7] = [
    ("B", "B", 1),
    ("KiB", "KB", 1 << 10),
    ("MiB", "MB", 1 << 20),
    ("GiB", "GB", 1 << 30),
    ("TiB", "TB", 1 << 40),
    ("PiB", "PB", 1 << 50),
    ("EiB", "EB", 1 << 60),
];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SizeError {
    #[error("invalid byte size {0:?}: expected a number and a unit such as 10MB or 1GiB")]
    Invalid(String),
    #[error("unknown unit {unit:?} in byte size {input:?}: use B, KB, MB, GB, TB, PB or EB (or KiB, MiB, ...)")]
    UnknownUnit { unit: String, input: String },
    #[error("byte size {0:?} is negative")]
    Negative(String),
    #[error("byte size {0:?} is out of range")]
    OutOfRange(String),
}

/// A size in bytes; zero means "no limit" where it is a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn bytes(self) -> u64 {
        self.0
    }

    pub fn parse(input: &str) -> Result<ByteSize, SizeError> {
        let invalid = || SizeError::Invalid(input.to_string());
        let mut s = input;
        if let Some(rest) = s.strip_prefix('+') {
            s = rest;
        } else if s.starts_with('-') {
            return Err(SizeError::Negative(input.to_string()));
        }
        if s == "0" {
            return Ok(ByteSize(0));
        }
        if s.is_empty() {
            return Err(invalid());
        }
        let mut total = 0f64;
        while !s.is_empty() {
            let number_len = s
                .bytes()
                .take_while(|b| b.is_ascii_digit() || *b == b'.')
                .count();
            let number = &s[..number_len];
            if number.is_empty() || number == "." || number.matches('.').count() > 1 {
                return Err(invalid());
            }
            let value: f64 = number.parse().map_err(|_| invalid())?;
            s = &s[number_len..];
            let unit_len = s
                .bytes()
                .take_while(|b| !b.is_ascii_digit() && *b != b'.')
                .count();
            let unit = &s[..unit_len];
            s = &s[unit_len..];
            let Some(&(_, _, mult)) = UNITS
                .iter()
                .find(|(iec, old, _)| unit == *iec || unit == *old)
            else {
                return Err(SizeError::UnknownUnit {
                    unit: unit.to_string(),
                    input: input.to_string(),
                });
            };
            total += value * mult as f64;
        }
        // Same bound as Prometheus (an int64 of bytes).
        if total > i64::MAX as f64 {
            return Err(SizeError::OutOfRange(input.to_string()));
        }
        Ok(ByteSize(total as u64))
    }
}

/// The biggest unit that divides the size exactly, in the IEC spelling (`10MiB`), which
/// parses back to the same size.
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0B");
        }
        let (unit, _, mult) = UNITS
            .iter()
            .rev()
            .find(|(_, _, mult)| self.0.is_multiple_of(*mult))
            .copied()
            .unwrap_or(UNITS[0]);
        write!(f, "{}{unit}", self.0 / mult)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        ByteSize::parse(&s).map_err(de::Error::custom)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(s: &str) -> u64 {
        ByteSize::parse(s).unwrap().bytes()
    }

    #[test]
    fn parses_base2_units() {
        assert_eq!(bytes("0"), 0);
        assert_eq!(bytes("512B"), 512);
        assert_eq!(bytes("10MB"), 10 << 20);
        assert_eq!(bytes("10MiB"), 10 << 20);
        assert_eq!(bytes("1GiB"), 1 << 30);
        assert_eq!(bytes("1KB"), 1024);
        assert_eq!(bytes("1.5GB"), 3 << 29);
        assert_eq!(bytes("1GB512MB"), (1 << 30) + (512 << 20));
    }

    #[test]
    fn refuses_bad_sizes() {
        for bad in [
            "", "1000", "10kB", "10mb", "MB", "1..5MB", "-1MB", "10 MB", "99999EB",
        ] {
            assert!(ByteSize::parse(bad).is_err(), "{bad} accepted");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(n in 0u64..(1u64 << 52)) {
            let s = ByteSize(n);
            prop_assert_eq!(ByteSize::parse(&s.to_string()), Ok(s));
        }
    }
}
