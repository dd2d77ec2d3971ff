//! The elementwise math functions (`abs` … `rad`, `round`, `clamp`) on one float, with Go's
//! semantics where Rust's differ (NaN in min/max, `sgn` of NaN and ±0, round half up).

/// A one-argument math function, by its PromQL name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathFn {
    Abs,
    Ceil,
    Floor,
    Exp,
    Sqrt,
    Ln,
    Log2,
    Log10,
    Sgn,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Deg,
    Rad,
}

impl MathFn {
    pub fn from_name(name: &str) -> Option<MathFn> {
        use MathFn::*;
        Some(match name {
            "abs" => Abs,
            "ceil" => Ceil,
            "floor" => Floor,
            "exp" => Exp,
            "sqrt" => Sqrt,
            "ln" => Ln,
            "log2" => Log2,
            "log10" => Log10,
            "sgn" => Sgn,
            "sin" => Sin,
            "cos" => Cos,
            "tan" => Tan,
            "asin" => Asin,
            "acos" => Acos,
            "atan" => Atan,
            "sinh" => Sinh,
            "cosh" => Cosh,
            "tanh" => Tanh,
            "asinh" => Asinh,
            "acosh" => Acosh,
            "atanh" => Atanh,
            "deg" => Deg,
            "rad" => Rad,
            _ => return None,
        })
    }

    pub fn apply(self, x: f64) -> f64 {
        use MathFn::*;
        match self {
            Abs => x.abs(),
            Ceil => x.ceil(),
            Floor => x.floor(),
            Exp => x.exp(),
            Sqrt => x.sqrt(),
            Ln => x.ln(),
            Log2 => x.log2(),
            Log10 => x.log10(),
            // Zero (either sign) and NaN are returned as they are.
            Sgn if x < 0.0 => -1.0,
            Sgn if x > 0.0 => 1.0,
            Sgn => x,
            Sin => x.sin(),
            Cos => x.cos(),
            Tan => x.tan(),
            Asin => x.asin(),
            Acos => x.acos(),
            Atan => x.atan(),
            Sinh => x.sinh(),
            Cosh => x.cosh(),
            Tanh => x.tanh(),
            Asinh => x.asinh(),
            Acosh => x.acosh(),
            Atanh => x.atanh(),
            // Multiplied first, as Prometheus does, for the same last bit.
            Deg => x * 180.0 / std::f64::consts::PI,
            Rad => x * std::f64::consts::PI / 180.0,
        }
    }
}

/// `round(x, to_nearest)`: the nearest multiple of `to_nearest`, ties rounded up (towards
/// +Inf: `round(-2.5)` is -2). Divides by the inverse, as Prometheus does, so that e.g.
/// `round(x, 0.1)` lands on the float nearest the decimal.
pub fn round(x: f64, to_nearest: f64) -> f64 {
    let inverse = 1.0 / to_nearest;
    (x * inverse + 0.5).floor() / inverse
}

/// `max(min, min(max, x))` with NaN in any argument propagating (Go's `math.Max/Min`; Rust's
/// `f64::max/min` would drop it). The engine drops the series when `min > max`.
pub fn clamp(x: f64, min: f64, max: f64) -> f64 {
    go_max(min, go_min(max, x))
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        // -0 is the smaller zero.
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else if a < b {
        a
    } else {
        b
    }
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_positive() {
            a
        } else {
            b
        }
    } else if a > b {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::super::load_notation::close;
    use super::*;

    const INF: f64 = f64::INFINITY;

    fn same(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a == b
    }

    #[test]
    fn abs_ceil_floor_round_as_the_test_files() {
        // functions.test, "Test for abs, ceil(), floor(), round()".
        let data = [2.5, 2.0, -2.5, -2.0, 0.0, -0.0, INF, -INF, f64::NAN];
        let want = [
            (
                MathFn::Abs,
                [2.5, 2.0, 2.5, 2.0, 0.0, 0.0, INF, INF, f64::NAN],
            ),
            (
                MathFn::Ceil,
                [3.0, 2.0, -2.0, -2.0, 0.0, 0.0, INF, -INF, f64::NAN],
            ),
            (
                MathFn::Floor,
                [2.0, 2.0, -3.0, -2.0, 0.0, 0.0, INF, -INF, f64::NAN],
            ),
        ];
        for (f, want) in want {
            for (x, w) in data.iter().zip(want) {
                assert!(same(f.apply(*x), w), "{f:?}({x})");
            }
        }
        let rounded = [3.0, 2.0, -2.0, -2.0, 0.0, 0.0, INF, -INF, f64::NAN];
        for (x, w) in data.iter().zip(rounded) {
            assert!(same(round(*x, 1.0), w), "round({x})");
        }
    }

    #[test]
    fn round_to_nearest_uses_the_inverse() {
        assert_eq!(round(-2.5, 1.0), -2.0);
        assert_eq!(round(12.345, 0.1), 12.3);
        assert_eq!(round(12.35, 0.1), 12.4);
        assert_eq!(round(1234.5, 10.0), 1230.0);
        assert_eq!(round(1235.0, 10.0), 1240.0);
        assert_eq!(round(7.0, 5.0), 5.0);
    }

    #[test]
    fn sgn_keeps_zero_and_nan() {
        // functions.test, sgn(test_sgn): -1 0 1 and NaN for NaN.
        assert_eq!(MathFn::Sgn.apply(-3.0), -1.0);
        assert_eq!(MathFn::Sgn.apply(7.0), 1.0);
        assert_eq!(MathFn::Sgn.apply(-INF), -1.0);
        assert_eq!(MathFn::Sgn.apply(0.0), 0.0);
        assert!(MathFn::Sgn.apply(-0.0).is_sign_negative());
        assert!(MathFn::Sgn.apply(f64::NAN).is_nan());
    }

    #[test]
    fn clamp_propagates_nan() {
        // functions.test: clamp(test_clamp, -25, 75) over -50 0 100, and NaN bounds.
        assert_eq!(clamp(-50.0, -25.0, 75.0), -25.0);
        assert_eq!(clamp(0.0, -25.0, 75.0), 0.0);
        assert_eq!(clamp(100.0, -25.0, 75.0), 75.0);
        assert!(clamp(100.0, 0.0, f64::NAN).is_nan());
        assert!(clamp(100.0, f64::NAN, 0.0).is_nan());
        assert!(clamp(f64::NAN, 0.0, 1.0).is_nan());
        assert_eq!(clamp(3.0, -INF, 2.0), 2.0);
    }

    #[test]
    fn trigonometry_and_angles() {
        // trig_functions.test (trig 10 and 20; the inverse functions at trig - 10.1).
        use MathFn::*;
        let cases = [
            (Sin, [-0.5440211108893699, 0.9129452507276277]),
            (Cos, [-0.8390715290764524, 0.40808206181339196]),
            (Tan, [0.6483608274590867, 2.2371609442247427]),
            (Atan, [1.4711276743037345, 1.5208379310729538]),
            (Sinh, [11013.232920103324, 2.4258259770489514e+08]),
            (Cosh, [11013.232920103324, 2.4258259770489514e+08]),
            (Tanh, [0.9999999958776927, 1.0]),
            (Asinh, [2.99822295029797, 3.6895038689889055]),
            (Acosh, [2.993222846126381, 3.6882538673612966]),
            (Rad, [0.17453292519943295, 0.3490658503988659]),
        ];
        for (f, want) in cases {
            for (x, w) in [10.0, 20.0].into_iter().zip(want) {
                assert!(close(f.apply(x), w), "{f:?}({x}) = {}", f.apply(x));
            }
            assert!(f.apply(f64::NAN).is_nan());
        }
        let inverse = [
            (Asin, -0.10016742116155944),
            (Acos, 1.670963747956456),
            (Atanh, -0.10033534773107522),
        ];
        for (f, w) in inverse {
            assert!(close(f.apply(10.0 - 10.1), w), "{f:?}");
            assert!(f.apply(20.0 - 10.1).is_nan());
        }
        assert_eq!(Rad.apply(0.0), 0.0);
        assert!(close(Deg.apply(std::f64::consts::PI), 180.0));
        assert!(Ln.apply(-1.0).is_nan());
        assert_eq!(Ln.apply(0.0), -INF);
        assert_eq!(Log2.apply(8.0), 3.0);
        assert_eq!(Log10.apply(1000.0), 3.0);
    }

    #[test]
    fn names_round_trip() {
        for name in [
            "abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "sgn", "sin", "cos",
            "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
            "deg", "rad",
        ] {
            let f = MathFn::from_name(name).unwrap();
            assert_eq!(format!("{f:?}").to_lowercase(), name);
        }
        assert_eq!(MathFn::from_name("round"), None);
    }
}
