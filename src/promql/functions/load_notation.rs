//! Test-only: the series notation of Prometheus's `load` blocks in its `.test` files
//! (`0+10x4 0+10x5`, `_`, `NaN`, `Inf`), so unit tests can quote those files verbatim, and the
//! window cut a range selector makes. Tolerance as the files' test runner compares floats.

use crate::promql::value::FPoint;

/// The points of one `load <step>` series line: one slot per value, `_` leaves its slot
/// empty, `a+bxn` / `a-bxn` expand to n+1 values, `axn` to n+1 copies of `a`.
pub fn expand(spec: &str, step_ms: i64) -> Vec<FPoint> {
    let mut values: Vec<Option<f64>> = Vec::new();
    for token in spec.split_whitespace() {
        if token == "_" {
            values.push(None);
            continue;
        }
        let Some((head, n)) = token.rsplit_once('x') else {
            values.push(Some(number(token)));
            continue;
        };
        let n: usize = n.parse().expect("repeat count");
        // The operator of `a+bxn` is the first sign that is neither leading nor an exponent's.
        let bytes = head.as_bytes();
        let op = (1..bytes.len())
            .find(|&i| matches!(bytes[i], b'+' | b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
        let (start, inc) = match op {
            Some(i) => {
                let inc = number(&head[i + 1..]);
                (
                    number(&head[..i]),
                    if bytes[i] == b'-' { -inc } else { inc },
                )
            }
            None => (number(head), 0.0),
        };
        for k in 0..=n {
            values.push(Some(start + inc * k as f64));
        }
    }
    values
        .into_iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.map(|f| FPoint {
                t: i as i64 * step_ms,
                f,
            })
        })
        .collect()
}

fn number(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

/// The points a range selector `[range]` sees at `at` (all in ms): `(at - range, at]`.
pub fn window(points: &[FPoint], at: i64, range: i64) -> Vec<FPoint> {
    points
        .iter()
        .copied()
        .filter(|p| p.t > at - range && p.t <= at)
        .collect()
}

pub const SECOND: i64 = 1000;
pub const MINUTE: i64 = 60 * SECOND;

/// Whether `got` matches `want` as the test files' runner compares them: NaN matches NaN,
/// otherwise a relative difference below 1e-6.
pub fn close(got: f64, want: f64) -> bool {
    if got.is_nan() || want.is_nan() {
        return got.is_nan() && want.is_nan();
    }
    if got == want {
        return true;
    }
    let diff = (got - want).abs();
    let scale = got.abs() + want.abs();
    if got == 0.0 || want == 0.0 || scale < f64::MIN_POSITIVE {
        return diff < 1e-6 * f64::MIN_POSITIVE;
    }
    diff / scale.min(f64::MAX) < 1e-6
}

#[track_caller]
pub fn assert_close(got: Option<f64>, want: f64) {
    let got = got.expect("a value");
    assert!(close(got, want), "got {got}, want {want}");
}

#[test]
fn expands_the_notation() {
    let p = expand("0+10x2 _ 5 1x1 8000-10x1 1e10", 5);
    let ts: Vec<i64> = p.iter().map(|p| p.t).collect();
    let fs: Vec<f64> = p.iter().map(|p| p.f).collect();
    assert_eq!(ts, vec![0, 5, 10, 20, 25, 30, 35, 40, 45]);
    assert_eq!(
        fs,
        vec![0.0, 10.0, 20.0, 5.0, 1.0, 1.0, 8000.0, 7990.0, 1e10]
    );
    assert_eq!(window(&p, 20, 15).len(), 2);
}
