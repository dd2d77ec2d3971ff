//! Start timestamps (the "created" time of a cumulative sample, or the start of a delta
//! sample's interval) as Prometheus 3 reads them: a counter reset that values alone cannot
//! show, and overlapping intervals that hint at bad data. Pure comparisons of timestamps in
//! ms; 0 means the start timestamp is unknown.

/// Whether the sample at `curr_t` (start `curr_st`) starts a new counter after the one at
/// `prev_t` (start `prev_st`).
pub fn is_reset(prev_st: i64, prev_t: i64, curr_st: i64, curr_t: i64) -> bool {
    // Unknown, clearly invalid (after the sample), or OTel's "unknown start" (equal to it).
    if curr_st == 0 || curr_st >= curr_t || curr_st < prev_t {
        return false;
    }
    if curr_st > prev_t {
        return true;
    }
    // The interval starts exactly at the previous sample: a delta sample, unless the
    // previous start is unknown (a cumulative series of unknown start) or invalid.
    prev_st <= prev_t && prev_st != 0 && prev_st != prev_t
}

/// Whether a sample's interval reaches back over the previous sample without sharing its
/// start: neither a delta (`curr_st == prev_t`) nor the same cumulative run.
pub fn overlaps(prev_st: i64, prev_t: i64, curr_st: i64) -> bool {
    curr_st != 0 && curr_st < prev_t && curr_st != prev_st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_by_start_timestamp() {
        // Cumulative with a new start after the previous sample: reset.
        assert!(is_reset(0, 60, 90, 120));
        // Same start as before: the same run.
        assert!(!is_reset(30, 60, 30, 120));
        // Delta samples: each starts at the previous one.
        assert!(is_reset(1, 60, 60, 120));
        // Unknown previous start: cumulative of unknown start, not a reset.
        assert!(!is_reset(0, 60, 60, 120));
        assert!(!is_reset(60, 60, 60, 120));
        // Invalid previous start (after its sample).
        assert!(!is_reset(120, 60, 60, 120));
        // Unknown or invalid current start.
        assert!(!is_reset(1, 60, 0, 120));
        assert!(!is_reset(1, 60, 120, 120));
    }

    #[test]
    fn overlapping_intervals() {
        assert!(overlaps(0, 120, 60));
        assert!(!overlaps(60, 120, 60));
        assert!(!overlaps(0, 120, 120));
        assert!(!overlaps(0, 120, 0));
    }
}
