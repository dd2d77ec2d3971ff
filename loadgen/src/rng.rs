//! The simulator's random numbers: a tiny seeded SplitMix64 generator and a stateless mixer.
//!
//! Owns only determinism: the same seed gives the same bodies on every machine, so a
//! benchmark run can be repeated. It must never be used for anything security-related, and
//! never reads an OS entropy source (seeds come from the command line).

/// SplitMix64: one add, three multiplies/xor-shifts a number, and good enough statistics for
/// simulated traffic. Its state is 8 bytes, so every target can own one.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Log-uniform in `[lo, hi)`: simulated rates span orders of magnitude, as real ones do.
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo * (hi / lo).powf(self.unit())
    }

    /// Rounds `x >= 0` up or down at random so that many small increments still add up to
    /// the intended rate.
    pub fn round_stochastic(&mut self, x: f64) -> i64 {
        let floor = x.floor();
        floor as i64 + i64::from(self.unit() < x - floor)
    }

    /// An event count with the given mean, spread evenly over half to one and a half times
    /// it: traffic that varies between scrapes without a heavy-tailed sampler.
    pub fn jittered(&mut self, mean: f64) -> i64 {
        let factor = 0.5 + self.unit();
        self.round_stochastic(mean * factor)
    }
}

/// The SplitMix64 finaliser: a bijection on `u64` that spreads every input bit.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn unit_and_log_uniform_stay_in_range() {
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            let l = r.log_uniform(0.5, 2000.0);
            assert!((0.5..2000.0).contains(&l), "{l}");
        }
    }

    #[test]
    fn stochastic_rounding_keeps_the_mean() {
        let mut r = Rng::new(3);
        let total: i64 = (0..100_000).map(|_| r.round_stochastic(0.25)).sum();
        assert!((24_000..26_000).contains(&total), "{total}");
        assert_eq!(r.round_stochastic(3.0), 3);
    }
}
