//! Fixed-width number slots: how a sample value is written into the pre-rendered body.
//!
//! A slot is a run of bytes of constant width holding a decimal number padded with leading
//! zeros (`000000012345`, `-0001.250`), which both the 0.0.4 text parser and the OpenMetrics
//! parser read as the same number (Go's `ParseFloat` and the OpenMetrics ABNF both allow
//! leading zeros; OpenMetrics forbids the trailing blanks that right-padding would need).
//! Values are kept as integers scaled by `10^decimals`, so an update is integer-to-digits,
//! never float formatting. This module must never allocate or write outside its slot.

/// The shape of one kind of slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotFormat {
    /// Bytes in the body, sign and decimal point included.
    pub width: u8,
    /// Digits after the decimal point; 0 writes an integer (counts must be integers in
    /// OpenMetrics).
    pub decimals: u8,
}

/// Counters, bucket counts and `_count`: integers up to 10^12 - 1.
pub const COUNT: SlotFormat = SlotFormat {
    width: 12,
    decimals: 0,
};
/// Gauges: signed, three decimals.
pub const GAUGE: SlotFormat = SlotFormat {
    width: 14,
    decimals: 3,
};
/// `_sum` of durations in seconds, microsecond resolution.
pub const SECONDS_SUM: SlotFormat = SlotFormat {
    width: 16,
    decimals: 6,
};
/// Quantile values in seconds, microsecond resolution, below 1000 s.
pub const QUANTILE: SlotFormat = SlotFormat {
    width: 10,
    decimals: 6,
};

impl SlotFormat {
    fn digits(self) -> u32 {
        u32::from(self.width) - u32::from(self.decimals > 0)
    }

    /// The largest scaled magnitude that fits. Negative values get one digit less, because
    /// the sign takes the place of the leading zero.
    pub fn max(self) -> i64 {
        10i64.pow(self.digits()) - 1
    }

    /// The most negative scaled value that fits.
    pub fn min(self) -> i64 {
        -(10i64.pow(self.digits() - 1) - 1)
    }

    /// `10^decimals`: the scale between the stored integer and the written number.
    pub fn scale(self) -> f64 {
        10f64.powi(i32::from(self.decimals))
    }

    /// Writes `v` (already scaled) into `dst`, which must be exactly `width` bytes. Values out
    /// of range are clamped: a slot never grows, because every byte after it has a fixed
    /// offset.
    pub fn write(self, dst: &mut [u8], v: i64) {
        debug_assert_eq!(dst.len(), usize::from(self.width));
        let v = v.clamp(self.min(), self.max());
        let mut mag = v.unsigned_abs();
        let point = if self.decimals > 0 {
            dst.len() - 1 - usize::from(self.decimals)
        } else {
            usize::MAX
        };
        for (i, b) in dst.iter_mut().enumerate().rev() {
            if i == point {
                *b = b'.';
                continue;
            }
            *b = b'0' + (mag % 10) as u8;
            mag /= 10;
        }
        if v < 0 {
            dst[0] = b'-';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn render(f: SlotFormat, v: i64) -> String {
        let mut b = vec![b'?'; usize::from(f.width)];
        f.write(&mut b, v);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn pinned_renderings() {
        assert_eq!(render(COUNT, 12345), "000000012345");
        assert_eq!(render(COUNT, 0), "000000000000");
        assert_eq!(render(GAUGE, -1250), "-000000001.250");
        assert_eq!(render(GAUGE, 1250), "0000000001.250");
        assert_eq!(render(QUANTILE, 1), "000.000001");
        assert_eq!(render(COUNT, i64::MAX), "999999999999");
        assert_eq!(render(GAUGE, i64::MIN), "-999999999.999");
    }

    proptest! {
        #[test]
        fn every_slot_reads_back_as_its_value(v in any::<i64>(), which in 0usize..4) {
            let f = [COUNT, GAUGE, SECONDS_SUM, QUANTILE][which];
            let s = render(f, v);
            prop_assert_eq!(s.len(), usize::from(f.width));
            let clamped = v.clamp(f.min(), f.max());
            let parsed: f64 = s.parse().unwrap();
            let expect = clamped as f64 / f.scale();
            prop_assert!((parsed - expect).abs() <= expect.abs() * 1e-12, "{} vs {}", s, expect);
            prop_assert_eq!(f.decimals == 0, !s.contains('.'));
        }
    }
}
