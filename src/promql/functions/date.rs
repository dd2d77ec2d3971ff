//! The date functions (`year`, `month`, `day_of_month`, …): calendar fields, in UTC, of a
//! value read as unix seconds. The proleptic Gregorian calendar is computed directly from
//! the day count, so any i64 second is valid and no time-zone data is involved.

use crate::http::date::civil_from_days;

/// A date function, by its PromQL name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFn {
    DayOfMonth,
    DayOfWeek,
    DayOfYear,
    DaysInMonth,
    Hour,
    Minute,
    Month,
    Year,
}

const SECONDS_PER_DAY: i64 = 86_400;

impl DateFn {
    pub fn from_name(name: &str) -> Option<DateFn> {
        use DateFn::*;
        Some(match name {
            "day_of_month" => DayOfMonth,
            "day_of_week" => DayOfWeek,
            "day_of_year" => DayOfYear,
            "days_in_month" => DaysInMonth,
            "hour" => Hour,
            "minute" => Minute,
            "month" => Month,
            "year" => Year,
            _ => return None,
        })
    }

    /// The field of the UTC date at `unix_seconds`, truncated toward zero to whole seconds
    /// as Prometheus does (`day_of_week`: 0 is Sunday). NaN and ±Inf give NaN: Go's integer
    /// conversion of those is platform-dependent, so there is no Prometheus value to copy.
    pub fn apply(self, unix_seconds: f64) -> f64 {
        if !unix_seconds.is_finite() {
            return f64::NAN;
        }
        // Saturates far outside any calendar anyone asks about; the arithmetic below is i128.
        let secs = unix_seconds as i64;
        let days = secs.div_euclid(SECONDS_PER_DAY);
        let of_day = secs.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let year = i128::from(year);
        use DateFn::*;
        let v = match self {
            DayOfMonth => day as i128,
            // 1970-01-01 was a Thursday.
            DayOfWeek => (days as i128 + 4).rem_euclid(7),
            DayOfYear => (cumulative_days(year, month) + day) as i128,
            DaysInMonth => days_in_month(year, month) as i128,
            Hour => (of_day / 3600) as i128,
            Minute => (of_day % 3600 / 60) as i128,
            Month => month as i128,
            Year => year,
        };
        v as f64
    }
}

fn is_leap(year: i128) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i128, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days of the year before the first of `month`.
fn cumulative_days(year: i128, month: u32) -> u32 {
    (1..month).map(|m| days_in_month(year, m)).sum()
}

#[cfg(test)]
mod tests {
    use super::DateFn::*;
    use super::*;

    #[test]
    fn fields_as_the_test_files() {
        // functions.test, "Test time-related functions".
        let epoch = [
            (Year, 1970.0),
            (Month, 1.0),
            (DayOfMonth, 1.0),
            (DayOfYear, 1.0),
        ];
        for (f, want) in epoch {
            assert_eq!(f.apply(0.0), want, "{f:?}");
        }
        assert_eq!(DayOfWeek.apply(0.0), 4.0);
        assert_eq!(Hour.apply(0.0), 0.0);
        assert_eq!(Minute.apply(0.0), 0.0);
        let t = 1136239445.0; // 2006-01-02T22:04:05Z, a Monday
        let want = [
            (Year, 2006.0),
            (Month, 1.0),
            (DayOfMonth, 2.0),
            (DayOfYear, 2.0),
            (DayOfWeek, 1.0),
            (Hour, 22.0),
            (Minute, 4.0),
        ];
        for (f, w) in want {
            assert_eq!(f.apply(t), w, "{f:?}");
        }
        assert_eq!(Year.apply(1230767999.0), 2008.0);
        assert_eq!(Year.apply(1230768000.0), 2009.0);
        assert_eq!(
            (Month.apply(1456790399.0), DayOfMonth.apply(1456790399.0)),
            (2.0, 29.0)
        );
        assert_eq!(
            (Month.apply(1456790400.0), DayOfMonth.apply(1456790400.0)),
            (3.0, 1.0)
        );
        assert_eq!(DayOfYear.apply(1483191420.0), 366.0);
        assert_eq!(DayOfYear.apply(1672493820.0), 365.0);
        assert_eq!(DaysInMonth.apply(1454284800.0), 29.0);
        assert_eq!(DaysInMonth.apply(1485907200.0), 28.0);
    }

    #[test]
    fn before_the_epoch_and_fractions() {
        // 1969-12-31T23:59:59Z, a Wednesday; fractions truncate toward zero.
        let t = -1.0;
        assert_eq!(Year.apply(t), 1969.0);
        assert_eq!(DayOfYear.apply(t), 365.0);
        assert_eq!(DayOfWeek.apply(t), 3.0);
        assert_eq!(Hour.apply(t), 23.0);
        assert_eq!(Minute.apply(59.9), 0.0);
        assert_eq!(Year.apply(-0.5), 1970.0);
        // 1900 is not a leap year, 2000 is.
        assert_eq!(DaysInMonth.apply(-2_206_310_400.0), 28.0); // 1900-02-01
        assert_eq!(DaysInMonth.apply(949_363_200.0), 29.0); // 2000-02-01
        assert!(Year.apply(f64::NAN).is_nan());
        assert!(Month.apply(f64::INFINITY).is_nan());
        assert!(Year.apply(1e300).is_finite());
    }

    #[test]
    fn names_round_trip() {
        let names = [
            "day_of_month",
            "day_of_week",
            "day_of_year",
            "days_in_month",
            "hour",
            "minute",
            "month",
            "year",
        ];
        for name in names {
            assert!(DateFn::from_name(name).is_some(), "{name}");
        }
        assert_eq!(DateFn::from_name("time"), None);
    }
}
