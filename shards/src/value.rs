//! Special sample values shared by every writer and reader of samples.
//!
//! A staleness marker is one particular NaN bit pattern (Prometheus's `value.StaleNaN`): it
//! ends a series in queries and federation. Any other NaN is an ordinary value, which is why
//! a NaN must be compared by its bits, never with `is_nan`.

/// The bits of Prometheus's staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is a staleness marker (and not some other NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_marker_bits_are_stale() {
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(f64::from_bits(0x7ff8_0000_0000_0001)));
        assert!(stale_nan().is_nan());
    }
}
