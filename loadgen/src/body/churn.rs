//! Series churn: which label set gets replaced next, and the new `pod` value it gets.
//!
//! Churn is paced by elapsed time, not by scrapes, so a target scraped by three servers
//! churns at the same rate as one scraped by one. A replaced group keeps its slot offsets
//! (the `pod` value has a fixed width); only its label value and its values change. This
//! module decides; it never touches a body.

use super::render::POD_WIDTH;
use super::shape::Group;
use crate::rng::mix;

#[derive(Debug, Clone)]
pub struct Churn {
    per_second: f64,
    /// Series owed to churn but not replaced yet.
    credit: f64,
    cursor: usize,
}

impl Churn {
    /// `per_minute` series of this target replaced every minute.
    pub fn new(per_minute: f64) -> Churn {
        Churn {
            per_second: per_minute.max(0.0) / 60.0,
            credit: 0.0,
            cursor: 0,
        }
    }

    /// Accrues `dt` seconds of churn. After a long pause nothing is replaced twice in one
    /// go: the credit never exceeds the target's series.
    pub fn tick(&mut self, dt: f64, total_series: usize) {
        self.credit = (self.credit + self.per_second * dt).min(total_series as f64);
    }

    /// The next group to replace, if enough churn has accrued for all its series. Groups are
    /// replaced in turn, so every one of them is eventually replaced.
    pub fn next_due(&mut self, groups: &[Group]) -> Option<usize> {
        let g = groups.get(self.cursor)?;
        let size = g.kind.series() as f64;
        if self.credit < size {
            return None;
        }
        self.credit -= size;
        let due = self.cursor;
        self.cursor = (self.cursor + 1) % groups.len();
        Some(due)
    }
}

/// The `pod` label value of a group in its `generation`: eight lowercase hex digits that
/// never repeat across the generations of one group (the map from generation to value is a
/// bijection on `u32`), and look unrelated between targets and groups.
pub fn pod_value(target_seed: u64, group: usize, generation: u32) -> [u8; POD_WIDTH] {
    let key = mix(target_seed ^ mix(group as u64));
    // xor with a key and multiplication by an odd number are both bijections mod 2^32.
    let x = (generation ^ key as u32).wrapping_mul((key >> 32) as u32 | 1);
    let x = x ^ (key >> 40) as u32;
    let mut out = [0u8; POD_WIDTH];
    for (i, b) in out.iter_mut().enumerate() {
        let nibble = (x >> (28 - 4 * i)) & 0xf;
        *b = b"0123456789abcdef"[nibble as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::shape::{Shape, ShapeConfig};
    use std::collections::HashSet;

    #[test]
    fn pod_values_never_repeat_within_a_group() {
        let mut seen = HashSet::new();
        for generation in 0..50_000 {
            assert!(seen.insert(pod_value(9, 3, generation)));
        }
        assert_ne!(pod_value(9, 3, 0), pod_value(9, 4, 0));
        assert_ne!(pod_value(9, 3, 0), pod_value(10, 3, 0));
        assert!(pod_value(1, 2, 3).iter().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn churn_follows_the_rate_over_time() {
        let shape = Shape::new(ShapeConfig {
            series: 500,
            labels: 2,
            label_values: 4,
        })
        .unwrap();
        let mut churn = Churn::new(120.0);
        let mut replaced = 0;
        for _ in 0..600 {
            churn.tick(0.1, 499);
            while let Some(g) = churn.next_due(&shape.groups) {
                replaced += shape.groups[g].kind.series();
            }
        }
        // 60 s at 120 series a minute, give or take the group in progress.
        assert!((106..=120).contains(&replaced), "{replaced}");
    }

    #[test]
    fn no_churn_when_disabled_and_credit_is_capped() {
        let shape = Shape::new(ShapeConfig {
            series: 30,
            labels: 1,
            label_values: 2,
        })
        .unwrap();
        let mut off = Churn::new(0.0);
        off.tick(1e9, 29);
        assert_eq!(off.next_due(&shape.groups), None);
        let mut on = Churn::new(60.0);
        on.tick(1e9, 29);
        let mut replaced = 0;
        while let Some(g) = on.next_due(&shape.groups) {
            replaced += shape.groups[g].kind.series();
        }
        assert!(replaced <= 29);
    }
}
