//! `double_exponential_smoothing` (Prometheus 2's `holt_winters`): Holt's linear smoothing
//! of a window's values, returning the last smoothed value.

use crate::promql::value::FPoint;

/// The smoothed value after the last point, with smoothing factor `smoothing` and trend
/// factor `trend` (the caller validates both are strictly between 0 and 1). None with < 2
/// points.
pub fn double_exponential_smoothing(points: &[FPoint], smoothing: f64, trend: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, points[0].f);
    let mut b = points[1].f - points[0].f;
    for (i, p) in points.iter().enumerate().skip(1) {
        let x = smoothing * p.f;
        // The first trend is the first difference itself; later ones are smoothed.
        if i > 1 {
            b = trend * (s1 - s0) + (1.0 - trend) * b;
        }
        let y = (1.0 - smoothing) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Some(s1)
}

#[cfg(test)]
mod tests {
    use super::super::load_notation::{assert_close, expand, window, MINUTE, SECOND};
    use super::*;

    #[test]
    fn follows_linear_trends() {
        // functions.test, "positive trends" and "negative trends" (load 10s), at 8000s [1m].
        let cases = [
            ("0+10x1000 100+30x1000", 8000.0),
            ("0+20x1000 200+30x1000", 16000.0),
            ("0+30x1000 300+80x1000", 24000.0),
            ("0+40x2000", 32000.0),
            ("8000-10x1000", 0.0),
            ("0-20x1000", -16000.0),
            ("0+30x1000 300-80x1000", 24000.0),
            ("0-40x1000 0+40x1000", -32000.0),
        ];
        for (spec, want) in cases {
            let p = window(&expand(spec, 10 * SECOND), 8000 * SECOND, MINUTE);
            assert_close(double_exponential_smoothing(&p, 0.01, 0.1), want);
        }
        // At 20010s the first three are in their second segment.
        let p = window(
            &expand("0+10x1000 100+30x1000", 10 * SECOND),
            20010 * SECOND,
            MINUTE,
        );
        assert_close(double_exponential_smoothing(&p, 0.01, 0.1), 30100.0);
    }

    #[test]
    fn one_point_gives_nothing() {
        let p = expand("1", SECOND);
        assert_eq!(double_exponential_smoothing(&p, 0.5, 0.5), None);
    }
}
