//! TEMPORARY STUB (not committed): signatures of the kernels API so the engine compiles until
//! the `kernels` branch lands. Every body panics.
#![allow(unused, clippy::ptr_arg)]
pub mod kahan {
    pub fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
        let t = sum + inc;
        let c = if sum.abs() >= inc.abs() {
            c + ((sum - t) + inc)
        } else {
            c + ((inc - t) + sum)
        };
        (t, c)
    }
}
pub mod quantile {
    pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
        todo!()
    }
}
pub mod rate {
    use crate::promql::value::FPoint;
    pub fn extrapolated_rate(
        points: &[FPoint],
        range_start: i64,
        range_end: i64,
        is_counter: bool,
        is_rate: bool,
    ) -> Option<f64> {
        todo!()
    }
    pub fn instant_rate(points: &[FPoint], is_rate: bool) -> Option<f64> {
        todo!()
    }
}
pub mod over_time {
    use crate::promql::value::FPoint;
    pub fn avg_over_time(p: &[FPoint]) -> Option<f64> {
        todo!()
    }
    pub fn sum_over_time(p: &[FPoint]) -> Option<f64> {
        todo!()
    }
    pub fn min_over_time(p: &[FPoint]) -> Option<f64> {
        todo!()
    }
    pub fn max_over_time(p: &[FPoint]) -> Option<f64> {
        todo!()
    }
    pub fn count_over_time(p: &[FPoint]) -> Option<f64> {
        Some(p.len() as f64)
    }
    pub fn last_over_time(p: &[FPoint]) -> Option<f64> {
        p.last().map(|p| p.f)
    }
    pub fn present_over_time(p: &[FPoint]) -> Option<f64> {
        todo!()
    }
    pub fn stddev_over_time(p: &[FPoint]) -> Option<f64> {
        todo!()
    }
    pub fn stdvar_over_time(p: &[FPoint]) -> Option<f64> {
        todo!()
    }
    pub fn mad_over_time(p: &[FPoint]) -> Option<f64> {
        todo!()
    }
    pub fn quantile_over_time(q: f64, p: &[FPoint]) -> Option<f64> {
        todo!()
    }
}
pub mod regression {
    use crate::promql::value::FPoint;
    pub fn deriv(p: &[FPoint]) -> Option<f64> {
        todo!()
    }
    pub fn predict_linear(p: &[FPoint], s: f64, t: i64) -> Option<f64> {
        todo!()
    }
}
pub mod counter_changes {
    use crate::promql::value::FPoint;
    pub fn changes(p: &[FPoint]) -> Option<f64> {
        todo!()
    }
    pub fn resets(p: &[FPoint]) -> Option<f64> {
        todo!()
    }
}
pub mod smoothing {
    use crate::promql::value::FPoint;
    pub fn double_exponential_smoothing(p: &[FPoint], s: f64, t: f64) -> Option<f64> {
        todo!()
    }
}
pub mod math {
    #[derive(Clone, Copy)]
    pub enum MathFn {
        Abs,
    }
    impl MathFn {
        pub fn from_name(name: &str) -> Option<MathFn> {
            None
        }
        pub fn apply(self, x: f64) -> f64 {
            todo!()
        }
    }
    pub fn round(x: f64, to_nearest: f64) -> f64 {
        todo!()
    }
    pub fn clamp(x: f64, min: f64, max: f64) -> f64 {
        todo!()
    }
}
pub mod date {
    #[derive(Clone, Copy)]
    pub enum DateFn {
        Hour,
    }
    impl DateFn {
        pub fn from_name(name: &str) -> Option<DateFn> {
            None
        }
        pub fn apply(self, s: f64) -> f64 {
            todo!()
        }
    }
}
pub mod histogram {
    pub struct Bucket {
        pub upper_bound: f64,
        pub count: f64,
    }
    pub struct BucketQuantile {
        pub value: f64,
        pub forced_monotonic: bool,
    }
    pub fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> BucketQuantile {
        todo!()
    }
}
