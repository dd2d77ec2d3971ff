//! Prometheus durations (`model.Duration`): `1h30m`, `15s`, `100ms`, `1d`, `1w`, `1y`, parsed
//! and printed exactly as Prometheus does, so that `__scrape_interval__` labels and the
//! configuration shown by the API read the same. This module owns the syntax only; it never
//! decides what a duration is valid for (zero intervals, timeout > interval are the callers').

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

const MS_PER_SECOND: u64 = 1_000;
const MS_PER_MINUTE: u64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: u64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;
const MS_PER_WEEK: u64 = 7 * MS_PER_DAY;
const MS_PER_YEAR: u64 = 365 * MS_PER_DAY;
const NS_PER_MS: u64 = 1_000_000;

/// Units from biggest to smallest; a duration must use them in this order, each at most once.
const UNITS: [(&str, u64); 7] = [
    ("y", MS_PER_YEAR),
    ("w", MS_PER_WEEK),
    ("d", MS_PER_DAY),
    ("h", MS_PER_HOUR),
    ("m", MS_PER_MINUTE),
    ("s", MS_PER_SECOND),
    ("ms", 1),
];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("empty duration string")]
    Empty,
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit { unit: String, input: String },
    /// Go's `time.Duration` holds at most 2^63-1 ns (about 292 years); Prometheus refuses
    /// more, and so do we, so that a configuration accepted here is accepted there.
    #[error("duration out of range: {0:?}")]
    OutOfRange(String),
}

/// A non-negative span of whole milliseconds, at most 2^63-1 ns as in Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    ms: u64,
}

impl Duration {
    pub const ZERO: Duration = Duration { ms: 0 };
    /// The largest duration Prometheus can represent, in whole milliseconds.
    pub const MAX: Duration = Duration {
        ms: i64::MAX as u64 / NS_PER_MS,
    };

    pub const fn from_millis(ms: u64) -> Duration {
        Duration { ms }
    }

    pub const fn from_secs(s: u64) -> Duration {
        Duration {
            ms: s * MS_PER_SECOND,
        }
    }

    pub const fn as_millis(self) -> u64 {
        self.ms
    }

    pub const fn is_zero(self) -> bool {
        self.ms == 0
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ms)
    }

    /// Parses Prometheus's syntax: `0`, or number-unit pairs from the biggest unit down.
    pub fn parse(input: &str) -> Result<Duration, DurationError> {
        match input {
            "0" => return Ok(Duration::ZERO),
            "" => return Err(DurationError::Empty),
            _ => {}
        }
        let invalid = || DurationError::Invalid(input.to_string());
        let bytes = input.as_bytes();
        let mut pos = 0;
        let mut next_unit = 0; // index into UNITS of the smallest unit still allowed
        let mut total_ns: u64 = 0;
        while pos < bytes.len() {
            let digits = bytes[pos..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 {
                return Err(invalid());
            }
            let number: u64 = input[pos..pos + digits].parse().map_err(|_| invalid())?;
            pos += digits;
            let unit_len = bytes[pos..]
                .iter()
                .take_while(|b| !b.is_ascii_digit())
                .count();
            if unit_len == 0 {
                return Err(invalid());
            }
            let unit = &input[pos..pos + unit_len];
            pos += unit_len;
            let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
                return Err(DurationError::UnknownUnit {
                    unit: unit.to_string(),
                    input: input.to_string(),
                });
            };
            if index < next_unit {
                return Err(invalid());
            }
            next_unit = index + 1;
            let unit_ns = UNITS[index].1 * NS_PER_MS;
            let out_of_range = || DurationError::OutOfRange(input.to_string());
            if number > (1u64 << 63) / unit_ns {
                return Err(out_of_range());
            }
            total_ns = total_ns
                .checked_add(number * unit_ns)
                .filter(|ns| *ns <= i64::MAX as u64)
                .ok_or_else(out_of_range)?;
        }
        Ok(Duration {
            ms: total_ns / NS_PER_MS,
        })
    }
}

/// Prometheus's form: biggest units first, `y` and `w` only when they divide exactly
/// (`90d` reads better than `12w6d`), `0s` for zero.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ms == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.ms;
        for (unit, mult) in UNITS {
            let exact_only = unit == "y" || unit == "w";
            if exact_only && !rest.is_multiple_of(mult) {
                continue;
            }
            let n = rest / mult;
            if n > 0 {
                write!(f, "{n}{unit}")?;
                rest -= n * mult;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Duration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duration::parse(s)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Duration::parse(&s).map_err(de::Error::custom)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(s: &str) -> u64 {
        Duration::parse(s).unwrap().as_millis()
    }

    #[test]
    fn parses_prometheus_examples() {
        assert_eq!(ms("0"), 0);
        assert_eq!(ms("0s"), 0);
        assert_eq!(ms("15s"), 15_000);
        assert_eq!(ms("100ms"), 100);
        assert_eq!(ms("1h30m"), 90 * MS_PER_MINUTE);
        assert_eq!(ms("1d"), MS_PER_DAY);
        assert_eq!(ms("1w"), 7 * MS_PER_DAY);
        assert_eq!(ms("1y"), 365 * MS_PER_DAY);
        assert_eq!(
            ms("1y2w3d4h5m6s7ms"),
            ms("1y") + ms("2w") + ms("3d") + 4 * MS_PER_HOUR + 5 * MS_PER_MINUTE + 6_007
        );
        // Leading zeros are plain digits in Prometheus too.
        assert_eq!(ms("01m"), MS_PER_MINUTE);
    }

    #[test]
    fn refuses_what_prometheus_refuses() {
        assert_eq!(Duration::parse(""), Err(DurationError::Empty));
        for bad in [
            "15", "s", "1.5s", "-1s", "1m1h", "1s1s", " 1s", "1s ", "1h 2m",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            Duration::parse("15x"),
            Err(DurationError::UnknownUnit {
                unit: "x".into(),
                input: "15x".into()
            })
        );
        assert_eq!(
            Duration::parse("15x").unwrap_err().to_string(),
            "unknown unit \"x\" in duration \"15x\""
        );
        assert!(matches!(
            Duration::parse("300y"),
            Err(DurationError::OutOfRange(_))
        ));
        assert!(matches!(
            Duration::parse("99999999999999999999s"),
            Err(DurationError::Invalid(_))
        ));
        assert_eq!(ms("292y"), 292 * MS_PER_YEAR);
    }

    #[test]
    fn prints_as_prometheus() {
        let cases = [
            ("0s", "0"),
            ("15s", "15s"),
            ("1m", "60s"),
            ("1h30m", "90m"),
            ("1d", "24h"),
            ("1w", "7d"),
            ("90d", "90d"),
            ("1y", "365d"),
            ("366d", "1y1d"),
            ("1y", "52w1d"),
            ("8d", "1w1d"),
            ("1m30s100ms", "90100ms"),
        ];
        for (want, input) in cases {
            assert_eq!(Duration::parse(input).unwrap().to_string(), want, "{input}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(ms in 0..=Duration::MAX.as_millis()) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(Duration::parse(&d.to_string()), Ok(d));
        }

        #[test]
        fn parse_then_format_is_stable(d in 0u64..10_000, s in 0u64..60, m in 0u64..1000) {
            let text = format!("{d}d{s}s{m}ms");
            let once = Duration::parse(&text).unwrap();
            prop_assert_eq!(Duration::parse(&once.to_string()).unwrap(), once);
        }
    }
}
