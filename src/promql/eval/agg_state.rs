//! The mergeable state of the decomposable aggregations (`sum avg min max count group stddev
//! stdvar`) for one group at one step: built sample by sample over one shard's series, merged
//! across shards in shard order, then finished into the answer.
//!
//! Both evaluation paths use it the same way, which is what makes pushdown exact: the router
//! evaluating alone partitions an aggregation's input by the shard each series lives on (its
//! label hash) and merges the partitions in shard order, exactly as it merges the shards'
//! partial states when the aggregation was pushed. Within one partition the arithmetic is
//! Prometheus's (Kahan sums, Welford variances, `+0`/`-0` and NaN as its loops treat them), so a
//! group whose series all live on one shard gets Prometheus's answer bit for bit. This file is
//! pure arithmetic: it never sees series, labels or shards.

use promql_parser::parser::token::{
    T_AVG, T_COUNT, T_GROUP, T_MAX, T_MIN, T_STDDEV, T_STDVAR, T_SUM,
};

use crate::promql::functions::kahan::kahan_sum_inc;

/// An aggregation whose state merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
}

impl AggOp {
    /// The operator of a parser token, when its state merges.
    pub fn of_token(id: u16) -> Option<AggOp> {
        Some(match id {
            T_SUM => AggOp::Sum,
            T_AVG => AggOp::Avg,
            T_MIN => AggOp::Min,
            T_MAX => AggOp::Max,
            T_COUNT => AggOp::Count,
            T_GROUP => AggOp::Group,
            T_STDDEV => AggOp::Stddev,
            T_STDVAR => AggOp::Stdvar,
            _ => return None,
        })
    }
}

/// One group's state at one step. `value` is the Kahan sum (sum, avg), the extreme (min, max)
/// or the sum of squared deviations (stddev, stdvar); `kahan_c` its compensation; `mean` the
/// running mean (avg once the sum overflowed, stddev, stdvar).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AggState {
    pub value: f64,
    pub kahan_c: f64,
    pub mean: f64,
    pub count: f64,
    pub incremental_mean: bool,
}

impl AggState {
    /// The state after the group's first sample.
    pub fn first(op: AggOp, f: f64) -> AggState {
        let value = match op {
            AggOp::Stddev | AggOp::Stdvar if f.is_nan() || f.is_infinite() => f64::NAN,
            AggOp::Stddev | AggOp::Stdvar => 0.0,
            AggOp::Group => 1.0,
            _ => f,
        };
        AggState {
            value,
            kahan_c: 0.0,
            mean: f,
            count: 1.0,
            incremental_mean: false,
        }
    }

    /// Adds one more sample, as Prometheus's aggregation loop does.
    pub fn add(&mut self, op: AggOp, f: f64) {
        match op {
            AggOp::Sum => (self.value, self.kahan_c) = kahan_sum_inc(f, self.value, self.kahan_c),
            AggOp::Avg => self.add_to_mean(f),
            AggOp::Group => {}
            AggOp::Max => {
                if self.value < f || self.value.is_nan() {
                    self.value = f
                }
            }
            AggOp::Min => {
                if self.value > f || self.value.is_nan() {
                    self.value = f
                }
            }
            AggOp::Count => self.count += 1.0,
            AggOp::Stddev | AggOp::Stdvar => {
                self.count += 1.0;
                let delta = f - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (f - self.mean);
            }
        }
    }

    /// Prometheus's `avg`: a Kahan sum while it stays finite, then an incremental mean.
    fn add_to_mean(&mut self, f: f64) {
        self.count += 1.0;
        if !self.incremental_mean {
            let (v, c) = kahan_sum_inc(f, self.value, self.kahan_c);
            if !v.is_infinite() {
                self.value = v;
                self.kahan_c = c;
                return;
            }
            self.incremental_mean = true;
            self.mean = self.value / (self.count - 1.0);
            self.kahan_c /= self.count - 1.0;
        }
        if self.mean.is_infinite() {
            if f.is_infinite() && (self.mean > 0.0) == (f > 0.0) {
                return;
            }
            if !f.is_infinite() && !f.is_nan() {
                return;
            }
        }
        let current = self.mean + self.kahan_c;
        (self.mean, self.kahan_c) = kahan_sum_inc(
            f / self.count - current / self.count,
            self.mean,
            self.kahan_c,
        );
    }

    /// Merges the state of the next shard's series into this one.
    pub fn merge(&mut self, op: AggOp, other: &AggState) {
        match op {
            AggOp::Sum => {
                (self.value, self.kahan_c) = kahan_sum_inc(other.value, self.value, self.kahan_c);
                // An infinite sum resets the compensation; keep it reset.
                if !self.value.is_infinite() {
                    self.kahan_c += other.kahan_c;
                }
            }
            AggOp::Avg => self.merge_mean(other),
            AggOp::Group => {}
            // The other shard's extreme is one more sample to this one's loop.
            AggOp::Max | AggOp::Min => self.add(op, other.value),
            AggOp::Count => self.count += other.count,
            AggOp::Stddev | AggOp::Stdvar => {
                // Chan et al.'s pairwise update of Welford's (count, mean, M2).
                let n = self.count + other.count;
                let delta = other.mean - self.mean;
                self.mean += delta * (other.count / n);
                self.value += other.value + delta * delta * (self.count * other.count / n);
                self.count = n;
            }
        }
    }

    fn merge_mean(&mut self, other: &AggState) {
        let n = self.count + other.count;
        if !self.incremental_mean && !other.incremental_mean {
            let (v, c) = kahan_sum_inc(other.value, self.value, self.kahan_c);
            if !v.is_infinite() {
                self.value = v;
                self.kahan_c = c + other.kahan_c;
                self.count = n;
                return;
            }
        }
        // A sum that overflowed: weigh the two means, with Prometheus's infinities (an
        // infinite mean stays unless a NaN or the opposite infinity comes).
        let (a, b) = (self.finish(AggOp::Avg), other.finish(AggOp::Avg));
        let mean = if a.is_nan() || b.is_nan() {
            f64::NAN
        } else if a.is_infinite() && b.is_infinite() {
            if (a > 0.0) == (b > 0.0) {
                a
            } else {
                f64::NAN
            }
        } else if a.is_infinite() {
            a
        } else if b.is_infinite() {
            b
        } else {
            // Weights at most 1: neither product overflows.
            a * (self.count / n) + b * (other.count / n)
        };
        *self = AggState {
            value: 0.0,
            kahan_c: 0.0,
            mean,
            count: n,
            incremental_mean: true,
        };
    }

    /// The aggregation's answer.
    pub fn finish(&self, op: AggOp) -> f64 {
        match op {
            AggOp::Avg if self.incremental_mean => self.mean + self.kahan_c,
            AggOp::Avg => (self.value + self.kahan_c) / self.count,
            AggOp::Count => self.count,
            AggOp::Stdvar => self.value / self.count,
            AggOp::Stddev => (self.value / self.count).sqrt(),
            AggOp::Sum => self.value + self.kahan_c,
            AggOp::Min | AggOp::Max | AggOp::Group => self.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(op: AggOp, xs: &[f64]) -> AggState {
        let mut s = AggState::first(op, xs[0]);
        for &x in &xs[1..] {
            s.add(op, x);
        }
        s
    }

    fn split(op: AggOp, xs: &[f64], at: usize) -> f64 {
        let mut a = fold(op, &xs[..at]);
        a.merge(op, &fold(op, &xs[at..]));
        a.finish(op)
    }

    #[test]
    fn merged_sums_keep_the_compensation() {
        // The classic case plain summation gets wrong, split across two shards.
        let xs = [1.0, 1e100, 1.0, -1e100];
        assert_eq!(fold(AggOp::Sum, &xs).finish(AggOp::Sum), 2.0);
        assert_eq!(split(AggOp::Sum, &xs, 2), 2.0);
        assert_eq!(
            split(AggOp::Sum, &[1.0, f64::INFINITY, 2.0], 1),
            f64::INFINITY
        );
        assert!(split(AggOp::Sum, &[f64::INFINITY, f64::NEG_INFINITY], 1).is_nan());
    }

    #[test]
    fn merged_means_survive_an_overflowing_sum() {
        let big = 9.988_465_674_311_58e307;
        assert!((split(AggOp::Avg, &[big, big, big], 1) / big - 1.0).abs() < 1e-15);
        assert_eq!(split(AggOp::Avg, &[1.0, 2.0, 3.0, 6.0], 2), 3.0);
        assert_eq!(
            split(AggOp::Avg, &[f64::INFINITY, 1.0, big, big], 2),
            f64::INFINITY
        );
        assert!(split(AggOp::Avg, &[f64::INFINITY, big, big, f64::NEG_INFINITY], 2).is_nan());
        assert!(split(AggOp::Avg, &[1.0, f64::NAN], 1).is_nan());
    }

    #[test]
    fn merged_extremes_follow_prometheus_loop() {
        // The first shard's zero wins a tie, as the first series' does in one loop.
        assert!(split(AggOp::Max, &[-0.0, 0.0], 1).is_sign_negative());
        assert!(split(AggOp::Min, &[0.0, -0.0], 1).is_sign_positive());
        assert_eq!(split(AggOp::Max, &[f64::NAN, 1.0], 1), 1.0);
        assert_eq!(split(AggOp::Min, &[3.0, f64::NAN, 2.0], 2), 2.0);
        assert_eq!(split(AggOp::Count, &[3.0, f64::NAN, 2.0], 1), 3.0);
    }

    #[test]
    fn merged_variances_match_one_pass() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        for at in 1..xs.len() {
            assert!((split(AggOp::Stdvar, &xs, at) - 4.0).abs() < 1e-12);
            assert!((split(AggOp::Stddev, &xs, at) - 2.0).abs() < 1e-12);
        }
        assert!(split(AggOp::Stddev, &[1.0, 2.0, f64::INFINITY], 2).is_nan());
        assert!(split(AggOp::Stdvar, &[f64::NAN, 2.0], 1).is_nan());
    }
}
