//! The `Date` response header (RFC 9110 IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`), which an
//! origin server with a clock must send and Prometheus's CORS setup exposes to browsers.
//!
//! Formatted at most once per second per executor thread; never allocates.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

pub const DATE_LEN: usize = 29;

thread_local! {
    static CACHE: Cell<(u64, [u8; DATE_LEN])> = const { Cell::new((u64::MAX, [0; DATE_LEN])) };
}

/// Today's `Date` value for the current second.
pub fn now() -> [u8; DATE_LEN] {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let (cached_secs, cached) = c.get();
        if cached_secs == secs {
            return cached;
        }
        let fresh = format(secs);
        c.set((secs, fresh));
        fresh
    })
}

/// Formats seconds since the Unix epoch as an IMF-fixdate.
pub fn format(secs: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    two_digits(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    let year = year.clamp(0, 9999) as u32;
    two_digits(&mut out[12..14], year / 100);
    two_digits(&mut out[14..16], year % 100);
    two_digits(&mut out[17..19], (rem / 3600) as u32);
    two_digits(&mut out[20..22], (rem / 60 % 60) as u32);
    two_digits(&mut out[23..25], (rem % 60) as u32);
    out
}

fn two_digits(out: &mut [u8], n: u32) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// Howard Hinnant's days-to-civil algorithm: (year, month 1..=12, day 1..=31) of the day
/// `days` after 1970-01-01, proleptic Gregorian. Used by the log's timestamps, the API's
/// RFC 3339 times, templates, PromQL's date functions and `tsdb list`. The arithmetic is
/// i128 so that every i64 day count (PromQL's `year(vector(1e300))` saturates to one) is
/// valid; the year of any i64 day count fits in an i64.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i128::from(month <= 2);
    (year as i64, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_dates() {
        let f = |s| String::from_utf8(format(s).to_vec()).unwrap();
        assert_eq!(f(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(f(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(f(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(f(1_798_761_599), "Thu, 31 Dec 2026 23:59:59 GMT");
    }

    #[test]
    fn now_is_well_formed() {
        let d = now();
        assert_eq!(&d[25..], b" GMT");
        assert_eq!(now().len(), DATE_LEN);
    }
}
