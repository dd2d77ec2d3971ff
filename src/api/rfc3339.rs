//! RFC 3339 timestamps the way Go's `time` package reads and writes them, because the API's
//! time parameters are parsed with `time.Parse(time.RFC3339Nano, s)` and its JSON times are
//! printed with `Format(time.RFC3339Nano)`. This module owns the civil-date arithmetic of
//! those two; it never decides what a time means for a query.
//!
//! Go's parser is more lenient than the RFC and we follow it: a one-digit hour (`T5:04:05Z`),
//! a comma before the fraction, any number of fraction digits (beyond nine ignored), and
//! offsets up to `±24:60`. It is stricter in one way: the year has exactly four digits.

use crate::http::date::civil_from_days;

const SECS_PER_DAY: i64 = 86_400;

/// A parsed instant: seconds since the Unix epoch and nanoseconds within that second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant {
    pub secs: i64,
    pub nanos: u32,
}

impl Instant {
    /// Milliseconds since the epoch, rounded down as Prometheus's `timestamp.FromTime` does.
    pub fn as_millis(self) -> i64 {
        self.secs
            .saturating_mul(1000)
            .saturating_add(i64::from(self.nanos / 1_000_000))
    }
}

/// Parses `2023-11-14T22:13:20.123Z` or `2023-11-14T23:13:20+01:00` as Go's
/// `time.Parse(time.RFC3339Nano, s)` does; `None` where Go reports an error.
pub fn parse(s: &str) -> Option<Instant> {
    let mut p = Cursor { b: s.as_bytes() };
    let year = p.fixed_digits(4)?;
    p.literal(b'-')?;
    let month = p.fixed_digits(2)?;
    p.literal(b'-')?;
    let day = p.fixed_digits(2)?;
    p.literal(b'T')?;
    let hour = p.hour()?;
    p.literal(b':')?;
    let minute = p.fixed_digits(2)?;
    p.literal(b':')?;
    let second = p.fixed_digits(2)?;
    let nanos = p.fraction();
    let offset = p.zone()?;
    if !p.b.is_empty()
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second - offset;
    Some(Instant { secs, nanos })
}

/// Go's `Format(time.RFC3339Nano)` of a UTC instant: the fraction only when non-zero and
/// without trailing zeros (`.123456789`, `.5`), years beyond four digits as they come.
pub fn format_nano(out: &mut Vec<u8>, t: Instant) {
    let days = t.secs.div_euclid(SECS_PER_DAY);
    let rem = t.secs.rem_euclid(SECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    if year < 0 {
        out.push(b'-');
    }
    let year = year.unsigned_abs();
    if year < 1000 {
        out.extend_from_slice(format!("{year:04}").as_bytes());
    } else {
        out.extend_from_slice(year.to_string().as_bytes());
    }
    let fields = [
        (b'-', u64::from(month)),
        (b'-', u64::from(day)),
        (b'T', (rem / 3600) as u64),
        (b':', (rem / 60 % 60) as u64),
        (b':', (rem % 60) as u64),
    ];
    for (sep, n) in fields {
        out.push(sep);
        out.push(b'0' + (n / 10) as u8);
        out.push(b'0' + (n % 10) as u8);
    }
    if t.nanos != 0 {
        let digits = format!("{:09}", t.nanos);
        out.push(b'.');
        out.extend_from_slice(digits.trim_end_matches('0').as_bytes());
    }
    out.push(b'Z');
}

/// Howard Hinnant's civil-to-days algorithm, the inverse of `civil_from_days`: days since
/// 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl Cursor<'_> {
    fn literal(&mut self, c: u8) -> Option<()> {
        let (&first, rest) = self.b.split_first()?;
        (first == c).then(|| self.b = rest)
    }

    fn fixed_digits(&mut self, n: usize) -> Option<i64> {
        let digits = self.b.get(..n)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.b = &self.b[n..];
        Some(
            digits
                .iter()
                .fold(0, |acc, d| acc * 10 + i64::from(d - b'0')),
        )
    }

    /// Go reads the `15` of its layout as one or two digits.
    fn hour(&mut self) -> Option<i64> {
        let two = self.b.len() >= 2 && self.b[1].is_ascii_digit();
        self.fixed_digits(if two { 2 } else { 1 })
    }

    /// An optional `.` or `,` followed by at least one digit; digits past the ninth are
    /// read and ignored.
    fn fraction(&mut self) -> u32 {
        let starts = self.b.len() >= 2
            && (self.b[0] == b'.' || self.b[0] == b',')
            && self.b[1].is_ascii_digit();
        if !starts {
            return 0;
        }
        let n = self.b[1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let digits = &self.b[1..1 + n];
        self.b = &self.b[1 + n..];
        let mut nanos = 0u32;
        for i in 0..9 {
            nanos = nanos * 10 + digits.get(i).map_or(0, |d| u32::from(d - b'0'));
        }
        nanos
    }

    /// `Z` or `±hh:mm`, as seconds east of UTC.
    fn zone(&mut self) -> Option<i64> {
        if self.literal(b'Z').is_some() {
            return Some(0);
        }
        let sign = match self.b.first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.b = &self.b[1..];
        let hours = self.fixed_digits(2)?;
        self.literal(b':')?;
        let minutes = self.fixed_digits(2)?;
        // Go tests with `>` here, not `>=`: some write offsets of 24 hours or 60 minutes.
        if hours > 24 || minutes > 60 {
            return None;
        }
        Some(sign * (hours * 3600 + minutes * 60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> Option<i64> {
        parse(s).map(Instant::as_millis)
    }

    #[test]
    fn parses_what_go_parses() {
        assert_eq!(ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(ms("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(ms("2023-11-14T22:13:20.123Z"), Some(1_700_000_000_123));
        assert_eq!(ms("2023-11-14T22:13:20.1239Z"), Some(1_700_000_000_123));
        assert_eq!(ms("2023-11-14T23:13:20.5+01:00"), Some(1_700_000_000_500));
        assert_eq!(ms("2023-11-14T21:43:20-00:30"), Some(1_700_000_000_000));
        assert_eq!(ms("2015-07-01T20:10:51.781Z"), Some(1_435_781_451_781));
        assert_eq!(ms("2019-07-07T20:47:40+03:00"), Some(1_562_521_660_000));
        // Go's leniencies.
        assert_eq!(ms("2023-11-14T2:13:20Z"), ms("2023-11-14T02:13:20Z"));
        assert_eq!(ms("2023-11-14T22:13:20,25Z"), Some(1_700_000_000_250));
        assert_eq!(
            parse("2023-11-14T22:13:20.1234567891234Z").map(|t| t.nanos),
            Some(123_456_789)
        );
        assert_eq!(ms("2023-11-14T22:13:20+24:00"), Some(1_699_913_600_000));
        assert_eq!(ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(ms("0000-01-01T00:00:00Z"), Some(-62_167_219_200_000));
        assert_eq!(ms("1969-12-31T23:59:59.999Z"), Some(-1));
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in [
            "",
            "2023-11-14",
            "2023-11-14T22:13Z",
            "2023-11-14T22:13:20",
            "2023-11-14 22:13:20Z",
            "2023-11-14t22:13:20Z",
            "2023-11-14T22:13:20z",
            "23-11-14T22:13:20Z",
            "12023-11-14T22:13:20Z",
            "2023-13-14T22:13:20Z",
            "2023-00-14T22:13:20Z",
            "2023-02-29T22:13:20Z",
            "2023-04-31T00:00:00Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:60:00Z",
            "2023-11-14T22:13:60Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0100",
            "2023-11-14T22:13:20+01",
            "2023-11-14T22:13:20+25:00",
            "2023-11-14T22:13:20Zjunk",
            "2023-11-14T123:13:20Z",
            "-292273086-05-16T16:47:06Z",
        ] {
            assert_eq!(parse(bad), None, "{bad} accepted");
        }
    }

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    fn formatted(secs: i64, nanos: u32) -> String {
        let mut out = Vec::new();
        format_nano(&mut out, Instant { secs, nanos });
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_as_go_rfc3339nano() {
        assert_eq!(formatted(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            formatted(1_700_000_000, 123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            formatted(1_700_000_000, 500_000_000),
            "2023-11-14T22:13:20.5Z"
        );
        assert_eq!(
            formatted(1_700_000_000, 1_000),
            "2023-11-14T22:13:20.000001Z"
        );
        // Go's zero time, which the API prints for "never".
        assert_eq!(formatted(-62_135_596_800, 0), "0001-01-01T00:00:00Z");
        // Prometheus's MinTime and MaxTime, as its API formats them.
        assert_eq!(
            formatted(i64::MIN / 1000 + 62_135_596_801, 0),
            "-292273086-05-16T16:47:06Z"
        );
        assert_eq!(
            formatted(i64::MAX / 1000 - 62_135_596_801, 999_999_999),
            "292277025-08-18T07:12:54.999999999Z"
        );
    }

    #[test]
    fn format_then_parse_round_trips() {
        for secs in (-62_135_596_800i64..253_402_300_799).step_by(86_399_999) {
            let t = Instant {
                secs,
                nanos: (secs.rem_euclid(1_000_000_000)) as u32,
            };
            let mut out = Vec::new();
            format_nano(&mut out, t);
            assert_eq!(parse(std::str::from_utf8(&out).unwrap()), Some(t));
        }
    }
}
