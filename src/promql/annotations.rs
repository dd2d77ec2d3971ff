//! The texts of PromQL annotations (warnings and infos), word for word as Prometheus writes
//! them, each followed by the ` (line:col)` of the sub-expression it is about.

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): shortest digits, with an
/// exponent below 1e-4 or from 1e21 on.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let exp = f.abs().log10().floor() as i32;
    if (-4..21).contains(&exp) {
        return format!("{f}");
    }
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

pub fn invalid_quantile(q: f64, pos: String) -> String {
    format!(
        "PromQL warning: quantile value should be between 0 and 1, got {}{pos}",
        go_float(q)
    )
}

pub fn invalid_ratio(got: f64, capped: f64, pos: String) -> String {
    format!(
        "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}{pos}",
        go_float(got),
        go_float(capped)
    )
}

pub fn start_time_overlap(name: &str, pos: String) -> String {
    format!(
        "PromQL warning: sample has start time that overlaps with previous sample timestamp for metric {}{pos}",
        quoted(name)
    )
}

pub fn possible_non_counter(name: &str, pos: String) -> String {
    format!(
        "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}{pos}",
        quoted(name)
    )
}

pub fn bad_bucket_label(le: &str, name: &str, pos: String) -> String {
    format!(
        "PromQL warning: bucket label \"le\" is missing or has a malformed value of {} for metric name {}{pos}",
        quoted(le),
        quoted(name)
    )
}

pub fn histogram_quantile_forced_monotonicity(name: &str, pos: String) -> String {
    format!(
        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {}{pos}",
        quoted(name)
    )
}

pub fn sort_in_range_query(pos: String) -> String {
    format!("PromQL warning: sort is ineffective for range queries since results are always ordered by labels{pos}")
}

fn quoted(s: &str) -> String {
    let mut q = String::new();
    // Writing to a String cannot fail.
    let _ = shards::index::matcher::write_go_quoted(&mut q, s);
    q
}

/// ` (line:col)` of byte offset `at` in `query`, 1-based, as Prometheus's position ranges.
pub fn position(query: &str, at: usize) -> String {
    let before = &query[..at.min(query.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    format!(" ({line}:{col})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_formats_like_strconv() {
        assert_eq!(go_float(1.1), "1.1");
        assert_eq!(go_float(-1.0), "-1");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(f64::NAN), "NaN");
    }

    #[test]
    fn positions_are_one_based() {
        assert_eq!(position("abc", 0), " (1:1)");
        assert_eq!(position("ab\ncd", 4), " (2:2)");
    }
}
