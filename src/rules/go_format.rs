//! Go's number formatting as templates print numbers: `%v` (`fmt.Sprint` of a float64),
//! `%.Ng` (what `humanize` and friends use), and the `printf` verbs templates use. Rust's own
//! float formatting never switches to exponents the way Go's does, so alert texts would differ
//! from Prometheus's without this. Pure functions, no I/O.

/// An argument of `printf`.
#[derive(Debug, Clone, PartialEq)]
pub enum FormatArg {
    Num(f64),
    Int(i64),
    Bool(bool),
    Str(String),
}

/// Go's `fmt.Sprint(v)` of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`).
pub fn format_value(v: f64) -> String {
    format_g(v, None)
}

/// Go's `fmt.Sprintf("%.{prec}g", v)`.
pub fn format_float_g(v: f64, prec: usize) -> String {
    format_g(v, Some(prec.max(1)))
}

fn format_g(v: f64, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sci = match prec {
        Some(p) => format!("{:.*e}", p - 1, v),
        None => format!("{v:e}"),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let mut digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let mut eprec = prec.map_or(6, |p| p as i32);
    if prec.is_some() && eprec > nd && nd >= dp {
        eprec = nd;
    }
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if dp <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-dp) as usize));
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        out.push_str(&"0".repeat((dp - nd) as usize));
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %f %e %g %q %x %%`, with an
/// optional `-`/`0` flag, width and precision.
pub fn printf(format: &str, args: &[FormatArg]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut zero = false;
        let mut plus = false;
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let mut s = match (verb, arg) {
            ('s' | 'v', FormatArg::Str(s)) => match prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            },
            ('q', FormatArg::Str(s)) => format!("{s:?}"),
            ('v', FormatArg::Num(f)) => format_value(*f),
            ('d' | 'v', FormatArg::Int(i)) => i.to_string(),
            ('x', FormatArg::Int(i)) => format!("{i:x}"),
            ('X', FormatArg::Int(i)) => format!("{i:X}"),
            ('o', FormatArg::Int(i)) => format!("{i:o}"),
            ('b', FormatArg::Int(i)) => format!("{i:b}"),
            ('c', FormatArg::Int(i)) => char::from_u32(*i as u32).unwrap_or('\u{FFFD}').to_string(),
            ('t' | 'v', FormatArg::Bool(b)) => b.to_string(),
            (_, FormatArg::Int(i)) => format!("%!{verb}(int={i})"),
            (_, FormatArg::Bool(b)) => format!("%!{verb}(bool={b})"),
            ('x', FormatArg::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('f' | 'F', FormatArg::Num(f)) if f.is_finite() => {
                format!("{:.*}", prec.unwrap_or(6), f)
            }
            ('e', FormatArg::Num(f)) if f.is_finite() => {
                let s = format!("{:.*e}", prec.unwrap_or(6), f);
                match s.split_once('e') {
                    Some((m, e)) => {
                        let e: i32 = e.parse().unwrap_or(0);
                        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
                    }
                    None => s,
                }
            }
            ('g', FormatArg::Num(f)) => match prec {
                Some(p) => format_float_g(*f, p),
                None => format_value(*f),
            },
            ('f' | 'F' | 'e', FormatArg::Num(f)) => format_value(*f),
            (_, FormatArg::Num(f)) => format!("%!{verb}(float64={})", format_value(*f)),
            (_, FormatArg::Str(s)) => format!("%!{verb}(string={s})"),
        };
        let non_negative = match arg {
            FormatArg::Num(f) => *f >= 0.0,
            FormatArg::Int(i) => *i >= 0,
            _ => false,
        };
        if plus && non_negative && !s.starts_with('+') {
            s.insert(0, '+');
        }
        let w: usize = width.parse().unwrap_or(0);
        let len = s.chars().count();
        if len < w {
            let pad = w - len;
            if left {
                s.push_str(&" ".repeat(pad));
            } else if zero && matches!(arg, FormatArg::Num(_) | FormatArg::Int(_)) {
                let at = usize::from(s.starts_with(['-', '+']));
                s.insert_str(at, &"0".repeat(pad));
            } else {
                s.insert_str(0, &" ".repeat(pad));
            }
        }
        out.push_str(&s);
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| match a {
                FormatArg::Num(f) => format!("float64={}", format_value(*f)),
                FormatArg::Int(i) => format!("int={i}"),
                FormatArg::Bool(b) => format!("bool={b}"),
                FormatArg::Str(s) => format!("string={s}"),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_prints_them() {
        let cases = [
            (1.0, "1"),
            (0.5, "0.5"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (f64::INFINITY, "+Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(format_value(v), want, "{v}");
        }
        assert_eq!(format_float_g(1234.0, 4), "1234");
        assert_eq!(format_float_g(12345.0, 4), "1.234e+04");
        assert_eq!(format_float_g(100000.0, 4), "1e+05");
        assert_eq!(format_float_g(1.5, 4), "1.5");
        assert_eq!(format_float_g(0.000123, 4), "0.000123");
    }

    #[test]
    fn printf_verbs() {
        let n = FormatArg::Num;
        let s = |x: &str| FormatArg::Str(x.into());
        assert_eq!(printf("%.2f%%", &[n(12.345)]), "12.35%");
        assert_eq!(printf("%s=%d", &[s("a"), FormatArg::Int(3)]), "a=3");
        assert_eq!(printf("%d", &[n(3.0)]), "%!d(float64=3)");
        assert_eq!(
            printf("%03d|%x", &[FormatArg::Int(7), FormatArg::Int(255)]),
            "007|ff"
        );
        assert_eq!(printf("%5.1f|%-4s|", &[n(2.25), s("x")]), "  2.2|x   |");
        assert_eq!(printf("%q %v", &[s("a"), n(1e6)]), "\"a\" 1e+06");
        assert_eq!(printf("%d", &[]), "%!d(MISSING)");
    }
}
