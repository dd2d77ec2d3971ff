//! The values PromQL expressions evaluate to: points, samples, series, and the four result
//! types (scalar, string, instant vector, range vector).

/// One float sample of a series: a timestamp in milliseconds and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FPoint {
    pub t: i64,
    pub f: f64,
}
