//! Function calls. Range-vector functions run per series over the window of each step and
//! hand the arithmetic to the kernels (`promql::functions`); instant-vector functions run per
//! step. This file owns what the kernels must not: labels and `__name__` dropping, argument
//! checks and their errors, annotations, and the functions that work on label sets
//! (`label_replace`, `label_join`, `absent`, `sort*`, `histogram_quantile`'s grouping).

use std::collections::HashMap;

use promql_parser::label::{MatchOp, METRIC_NAME};
use promql_parser::parser::{Call, Expr};
use regex::Regex;
use shards::labels::Labels;

use super::{sample_of, unparen, Evaluated, Evaluator, Result};
use crate::promql::annotations;
use crate::promql::error::QueryError;
use crate::promql::functions::{
    counter_changes, date::DateFn, edge_values, histogram, math, over_time, rate, regression,
    smoothing,
};
use crate::promql::labelset::{signature, LabelsBuilder};
use crate::promql::range_modifier::RangeModifier;
use crate::promql::value::{FPoint, Matrix, Sample, Series, Vector};

/// Range-vector functions that keep the metric name (they select a sample, like `offset`).
fn keeps_name(name: &str) -> bool {
    matches!(name, "last_over_time" | "first_over_time")
}

impl Evaluator<'_, '_> {
    pub fn call(&mut self, c: &Call) -> Result<Evaluated> {
        let name = c.func.name;
        let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
        if name == "timestamp" {
            if let Expr::VectorSelector(vs) = unparen(args[0]) {
                let m = self.vector_selector(vs, true)?;
                return Ok(Evaluated::Vector(
                    m.into_iter()
                        .map(|mut s| {
                            s.drop_name = true;
                            s
                        })
                        .collect(),
                ));
            }
        }
        if let Some(i) = args
            .iter()
            .position(|a| matches!(unparen(a), Expr::MatrixSelector(_) | Expr::Subquery(_)))
        {
            return self.range_call(c, name, &args, i);
        }
        match name {
            "time" => Ok(Evaluated::Scalar(
                (0..self.steps())
                    .map(|k| (self.start + k as i64 * self.interval) as f64 / 1000.0)
                    .collect(),
            )),
            "pi" => Ok(Evaluated::Scalar(vec![std::f64::consts::PI; self.steps()])),
            "start" | "end" | "step" | "range" => {
                let sh = &self.sh;
                let v = match name {
                    "start" => sh.query_start,
                    "end" => sh.query_end,
                    "step" => sh.query_step,
                    _ => sh.query_end - sh.query_start,
                };
                Ok(Evaluated::Scalar(vec![v as f64 / 1000.0; self.steps()]))
            }
            "min_of" | "max_of" => {
                let a = self.eval_scalar(args[0])?;
                let b = self.eval_scalar(args[1])?;
                let min = name == "min_of";
                // Go's math.Min/Max: NaN wins.
                Ok(Evaluated::Scalar(
                    a.iter()
                        .zip(&b)
                        .map(|(&x, &y)| match (x.is_nan() || y.is_nan(), min) {
                            (true, _) => f64::NAN,
                            (false, true) => x.min(y),
                            (false, false) => x.max(y),
                        })
                        .collect(),
                ))
            }
            "vector" => {
                let s = self.eval_scalar(args[0])?;
                let empty = Matrix::new();
                let out = self.range_eval(&[&empty], |_, step, ts, _| {
                    Ok(vec![Sample {
                        labels: Labels::empty(),
                        t: ts,
                        f: s[step],
                        drop_name: false,
                    }])
                })?;
                Ok(Evaluated::Vector(out))
            }
            "scalar" => {
                let m = self.eval_vector(args[0])?;
                let mut out = vec![f64::NAN; self.steps()];
                let mut by_step: Vec<(usize, f64)> = vec![(0, f64::NAN); self.steps()];
                for s in &m {
                    for p in &s.points {
                        let k = ((p.t - self.start) / self.interval) as usize;
                        by_step[k].0 += 1;
                        by_step[k].1 = p.f;
                    }
                }
                for (k, (n, f)) in by_step.into_iter().enumerate() {
                    if n == 1 {
                        out[k] = f;
                    }
                }
                Ok(Evaluated::Scalar(out))
            }
            "label_replace" => self.label_replace(&args),
            "label_join" => self.label_join(&args),
            "absent" => {
                let m = self.eval_vector(args[0])?;
                let labels = absent_labels(args[0]);
                let mut present = vec![false; self.steps()];
                for s in &m {
                    for p in &s.points {
                        present[((p.t - self.start) / self.interval) as usize] = true;
                    }
                }
                let points: Vec<FPoint> = present
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !**p)
                    .map(|(k, _)| FPoint {
                        t: self.start + k as i64 * self.interval,
                        f: 1.0,
                    })
                    .collect();
                Ok(Evaluated::Vector(if points.is_empty() {
                    Vec::new()
                } else {
                    vec![Series {
                        labels,
                        points,
                        drop_name: false,
                    }]
                }))
            }
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
                let mut m = self.eval_vector(args[0])?;
                if self.sh.query_start != self.sh.query_end {
                    let at = self.sh.query.find(name).unwrap_or(0);
                    let pos = annotations::position(self.sh.query, at);
                    self.sh
                        .annotations
                        .warn(annotations::sort_in_range_query(pos));
                }
                if self.is_instant() {
                    let mut labels = Vec::new();
                    for a in &args[1..] {
                        labels.push(self.eval_string(a)?);
                    }
                    sort_series(name, &mut m, &labels);
                }
                Ok(Evaluated::Vector(m))
            }
            "histogram_quantile" => {
                let q = self.eval_scalar(args[0])?;
                if let Some(bad) = q
                    .iter()
                    .copied()
                    .find(|q| q.is_nan() || *q < 0.0 || *q > 1.0)
                {
                    let pos = self.position_of(Some(args[0]));
                    self.sh
                        .annotations
                        .warn(annotations::invalid_quantile(bad, pos));
                }
                self.classic_histogram(args[1], None, |step, b| {
                    let r = histogram::bucket_quantile(q[step], b);
                    vec![(String::new(), r.value, r.forced_monotonic)]
                })
            }
            "histogram_quantiles" => {
                let label = self.eval_string(args[1])?;
                let mut qs = Vec::new();
                for a in &args[2..] {
                    qs.push(self.eval_scalar(a)?);
                }
                for (i, q) in qs.iter().enumerate() {
                    if let Some(bad) = q
                        .iter()
                        .copied()
                        .find(|q| q.is_nan() || *q < 0.0 || *q > 1.0)
                    {
                        let pos = self.position_of(Some(args[2 + i]));
                        self.sh
                            .annotations
                            .warn(annotations::invalid_quantile(bad, pos));
                    }
                }
                self.classic_histogram(args[0], Some(&label), |step, b| {
                    qs.iter()
                        .map(|q| {
                            let mut b = b.clone();
                            let r = histogram::bucket_quantile(q[step], &mut b);
                            (quantile_label(q[step]), r.value, r.forced_monotonic)
                        })
                        .collect()
                })
            }
            "histogram_fraction" => {
                let lo = self.eval_scalar(args[0])?;
                let hi = self.eval_scalar(args[1])?;
                self.classic_histogram(args[2], None, |step, b| {
                    vec![(
                        String::new(),
                        histogram::bucket_fraction(lo[step], hi[step], b),
                        false,
                    )]
                })
            }
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                // Native histograms only: float samples are ignored.
                for a in &args {
                    let _ = self.eval(a)?;
                }
                Ok(Evaluated::Vector(Vec::new()))
            }
            "round" => {
                let m = self.eval_vector(args[0])?;
                let to = match args.get(1) {
                    Some(a) => self.eval_scalar(a)?,
                    None => vec![1.0; self.steps()],
                };
                self.map_values(&m, |step, f| Some(math::round(f, to[step])))
            }
            "clamp" => {
                let m = self.eval_vector(args[0])?;
                let lo = self.eval_scalar(args[1])?;
                let hi = self.eval_scalar(args[2])?;
                self.map_values(&m, |step, f| {
                    // An empty range yields nothing; NaN bounds propagate.
                    (lo[step] <= hi[step] || lo[step].is_nan() || hi[step].is_nan())
                        .then(|| math::clamp(f, lo[step], hi[step]))
                })
            }
            "clamp_min" => {
                let m = self.eval_vector(args[0])?;
                let lo = self.eval_scalar(args[1])?;
                self.map_values(&m, |step, f| Some(math::clamp(f, lo[step], f64::INFINITY)))
            }
            "clamp_max" => {
                let m = self.eval_vector(args[0])?;
                let hi = self.eval_scalar(args[1])?;
                self.map_values(&m, |step, f| {
                    Some(math::clamp(f, f64::NEG_INFINITY, hi[step]))
                })
            }
            "timestamp" => {
                let m = self.eval_vector(args[0])?;
                let start = self.start;
                let interval = self.interval;
                self.map_values(&m, |step, _| {
                    Some((start + step as i64 * interval) as f64 / 1000.0)
                })
            }
            "info" => self.info(c, &args),
            _ => {
                if let Some(d) = DateFn::from_name(name) {
                    if args.is_empty() {
                        let start = self.start;
                        let interval = self.interval;
                        let empty = Matrix::new();
                        let out = self.range_eval(&[&empty], |_, _, ts, _| {
                            Ok(vec![Sample {
                                labels: Labels::empty(),
                                t: ts,
                                f: d.apply(ts as f64 / 1000.0),
                                drop_name: false,
                            }])
                        })?;
                        let _ = (start, interval);
                        return Ok(Evaluated::Vector(out));
                    }
                    let m = self.eval_vector(args[0])?;
                    return self.map_values(&m, |_, f| Some(d.apply(f)));
                }
                if let Some(f) = math::MathFn::from_name(name) {
                    let m = self.eval_vector(args[0])?;
                    return self.map_values(&m, |_, x| Some(f.apply(x)));
                }
                Err(QueryError::BadData(format!(
                    "function {name:?} is not supported"
                )))
            }
        }
    }

    pub fn eval_string(&mut self, e: &Expr) -> Result<String> {
        match self.eval(e)? {
            Evaluated::Str(s) => Ok(s),
            _ => Err(QueryError::BadData(format!(
                "expected type string in expression {e}"
            ))),
        }
    }

    /// An element-wise function that computes a new value (so the name is dropped). `f`
    /// returning `None` drops the element.
    fn map_values(
        &mut self,
        m: &Matrix,
        f: impl Fn(usize, f64) -> Option<f64>,
    ) -> Result<Evaluated> {
        let start = self.start;
        let interval = self.interval;
        let mut out = Vec::with_capacity(m.len());
        for s in m {
            let points: Vec<FPoint> = s
                .points
                .iter()
                .filter_map(|p| {
                    let step = ((p.t - start) / interval) as usize;
                    f(step, p.f).map(|v| FPoint { t: p.t, f: v })
                })
                .collect();
            if !points.is_empty() {
                out.push(Series {
                    labels: s.labels.clone(),
                    points,
                    drop_name: true,
                });
            }
        }
        Ok(Evaluated::Vector(out))
    }

    fn range_call(&mut self, c: &Call, name: &str, args: &[&Expr], mi: usize) -> Result<Evaluated> {
        let mut scalars: Vec<Option<Vec<f64>>> = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            if i == mi {
                scalars.push(None);
            } else {
                scalars.push(Some(self.eval_scalar(a)?));
            }
        }
        let input = match unparen(args[mi]) {
            Expr::MatrixSelector(ms) => self.matrix_selector(ms)?,
            Expr::Subquery(sq) => self.subquery(sq)?,
            _ => unreachable!("the matrix argument was found above"),
        };
        let scalar = |i: usize, step: usize| -> f64 {
            scalars
                .get(i)
                .and_then(|s| s.as_ref())
                .map_or(f64::NAN, |s| s[step])
        };
        if name == "double_exponential_smoothing" || name == "holt_winters" {
            // Factors are checked at every step before any series is looked at.
            for step in 0..self.steps() {
                let (sf, tf) = (scalar(1, step), scalar(2, step));
                if !(sf > 0.0 && sf < 1.0) {
                    return Err(QueryError::exec(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
                        annotations::go_float(sf)
                    )));
                }
                if !(tf > 0.0 && tf < 1.0) {
                    return Err(QueryError::exec(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {}",
                        annotations::go_float(tf)
                    )));
                }
            }
        }
        let drop = !keeps_name(name);
        let mut out: Matrix = Vec::with_capacity(input.series.len());
        let mut warn_non_counter: Vec<String> = Vec::new();
        let mut bad_quantile: Option<f64> = None;
        let steps = self.steps();
        let mut warn_overlap: Vec<String> = Vec::new();
        for (k, s) in input.series.iter().enumerate() {
            self.sh.check_deadline()?;
            let mut points = Vec::new();
            let mut overlap = false;
            for step in 0..steps {
                let ts = self.start + step as i64 * self.interval;
                let bounds = input.window_bounds(&s.points, ts);
                let sts = input.start_timestamps_of(k, bounds.clone());
                let w = &s.points[bounds];
                if w.is_empty() {
                    continue;
                }
                if matches!(name, "rate" | "increase") && rate::start_time_overlap(w, sts) {
                    overlap = true;
                }
                let end = input.window_end(ts);
                let start = end - input.range;
                let smoothed = input.modifier == Some(RangeModifier::Smoothed);
                let v = match (name, input.modifier) {
                    ("rate", Some(_)) => {
                        edge_values::edge_rate(w, start, end, smoothed, true, true)
                    }
                    ("increase", Some(_)) => {
                        edge_values::edge_rate(w, start, end, smoothed, true, false)
                    }
                    ("delta", Some(_)) => {
                        edge_values::edge_rate(w, start, end, smoothed, false, false)
                    }
                    ("changes", Some(_)) => {
                        edge_values::anchored_points(w, start).and_then(counter_changes::changes)
                    }
                    ("resets", Some(_)) => edge_values::anchored_points(w, start).and_then(|a| {
                        let from = w.len() - a.len();
                        counter_changes::resets(a, sts.get(from..).unwrap_or(&[]))
                    }),
                    _ => match name {
                        "rate" => rate::extrapolated_rate(w, sts, start, end, true, true),
                        "increase" => rate::extrapolated_rate(w, sts, start, end, true, false),
                        "delta" => rate::extrapolated_rate(w, sts, start, end, false, false),
                        "irate" => rate::instant_rate(w, sts, true),
                        "idelta" => rate::instant_rate(w, sts, false),
                        "avg_over_time" => over_time::avg_over_time(w),
                        "sum_over_time" => over_time::sum_over_time(w),
                        "min_over_time" => over_time::min_over_time(w),
                        "max_over_time" => over_time::max_over_time(w),
                        "count_over_time" => over_time::count_over_time(w),
                        "last_over_time" => over_time::last_over_time(w),
                        "first_over_time" => over_time::first_over_time(w),
                        "present_over_time" => over_time::present_over_time(w),
                        "stddev_over_time" => over_time::stddev_over_time(w),
                        "stdvar_over_time" => over_time::stdvar_over_time(w),
                        "mad_over_time" => over_time::mad_over_time(w),
                        "quantile_over_time" => {
                            let q = scalar(0, step);
                            // Warned only where there is data, as Prometheus does.
                            if bad_quantile.is_none() && (q.is_nan() || !(0.0..=1.0).contains(&q)) {
                                bad_quantile = Some(q);
                            }
                            over_time::quantile_over_time(q, w)
                        }
                        "ts_of_min_over_time" => over_time::ts_of_min_over_time(w),
                        "ts_of_max_over_time" => over_time::ts_of_max_over_time(w),
                        "ts_of_first_over_time" => over_time::ts_of_first_over_time(w),
                        "ts_of_last_over_time" => over_time::ts_of_last_over_time(w),
                        "changes" => counter_changes::changes(w),
                        "resets" => counter_changes::resets(w, sts),
                        "deriv" => regression::deriv(w),
                        "predict_linear" => regression::predict_linear(w, scalar(1, step), ts),
                        "double_exponential_smoothing" | "holt_winters" => {
                            smoothing::double_exponential_smoothing(
                                w,
                                scalar(1, step),
                                scalar(2, step),
                            )
                        }
                        "absent_over_time" => Some(1.0),
                        _ => {
                            return Err(QueryError::BadData(format!(
                                "function {name:?} is not supported"
                            )))
                        }
                    },
                };
                if let Some(v) = v {
                    points.push(FPoint { t: ts, f: v });
                }
            }
            if points.is_empty() {
                continue;
            }
            if overlap {
                warn_overlap.push(s.labels.get(METRIC_NAME).unwrap_or("").to_string());
            }
            if name == "rate" || name == "increase" {
                if let Some(n) = s.labels.get(METRIC_NAME) {
                    if !["_total", "_sum", "_count", "_bucket"]
                        .iter()
                        .any(|suf| n.ends_with(suf))
                    {
                        warn_non_counter.push(n.to_string());
                    }
                }
            }
            self.sh.charge(points.len())?;
            out.push(Series {
                labels: s.labels.clone(),
                points,
                drop_name: s.drop_name || drop,
            });
        }
        if let Some(q) = bad_quantile {
            let pos = self.position_of(Some(args[0]));
            self.sh
                .annotations
                .warn(annotations::invalid_quantile(q, pos));
        }
        for n in warn_overlap {
            let pos = self.position_of(Some(args[0]));
            self.sh
                .annotations
                .warn(annotations::start_time_overlap(&n, pos));
        }
        for n in warn_non_counter {
            let pos = self.position_of(Some(args[0]));
            self.sh
                .annotations
                .info(annotations::possible_non_counter(&n, pos));
        }
        if name == "absent_over_time" {
            let mut present = vec![false; steps];
            for s in &out {
                for p in &s.points {
                    present[((p.t - self.start) / self.interval) as usize] = true;
                }
            }
            let points: Vec<FPoint> = present
                .iter()
                .enumerate()
                .filter(|(_, p)| !**p)
                .map(|(k, _)| FPoint {
                    t: self.start + k as i64 * self.interval,
                    f: 1.0,
                })
                .collect();
            return Ok(Evaluated::Vector(if points.is_empty() {
                Vec::new()
            } else {
                vec![Series {
                    labels: absent_labels(args[0]),
                    points,
                    drop_name: false,
                }]
            }));
        }
        let _ = c;
        Ok(Evaluated::Vector(out))
    }

    fn label_replace(&mut self, args: &[&Expr]) -> Result<Evaluated> {
        let m = self.eval_vector(args[0])?;
        let dst = self.eval_string(args[1])?;
        let repl = self.eval_string(args[2])?;
        let src = self.eval_string(args[3])?;
        let re_text = self.eval_string(args[4])?;
        let re = Regex::new(&format!("^(?s:{re_text})$")).map_err(|_| {
            QueryError::exec(format!(
                "invalid regular expression in label_replace(): {re_text}"
            ))
        })?;
        if !is_valid_label_name(&dst) {
            return Err(QueryError::exec(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let out = m
            .into_iter()
            .map(|mut s| {
                let v = s.labels.get(&src).unwrap_or("").to_string();
                if let Some(caps) = re.captures(&v) {
                    let mut res = String::new();
                    caps.expand(&repl, &mut res);
                    let mut b = LabelsBuilder::new(&s.labels);
                    b.set(&dst, &res);
                    s.labels = b.build();
                    if dst == METRIC_NAME {
                        s.drop_name = false;
                    }
                }
                s
            })
            .collect();
        Ok(Evaluated::Vector(merge_same_labels(out)?))
    }

    fn label_join(&mut self, args: &[&Expr]) -> Result<Evaluated> {
        let m = self.eval_vector(args[0])?;
        let dst = self.eval_string(args[1])?;
        let sep = self.eval_string(args[2])?;
        let mut srcs = Vec::new();
        for a in &args[3..] {
            srcs.push(self.eval_string(a)?);
        }
        if !is_valid_label_name(&dst) {
            return Err(QueryError::exec(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        let out = m
            .into_iter()
            .map(|mut s| {
                let joined: Vec<&str> =
                    srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
                let v = joined.join(&sep);
                let mut b = LabelsBuilder::new(&s.labels);
                b.set(&dst, &v);
                s.labels = b.build();
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
                s
            })
            .collect();
        Ok(Evaluated::Vector(merge_same_labels(out)?))
    }

    /// A function of classic histograms (`le` buckets): series are grouped by their labels
    /// without `le` and `__name__`, and `f` turns each group's buckets at a step into a value
    /// (and whether they had to be made monotonic).
    fn classic_histogram(
        &mut self,
        b_expr: &Expr,
        extra_label: Option<&str>,
        mut f: impl FnMut(usize, &mut Vec<histogram::Bucket>) -> Vec<(String, f64, bool)>,
    ) -> Result<Evaluated> {
        let m = self.eval_vector(b_expr)?;
        let mut groups_key: Vec<String> = Vec::with_capacity(m.len());
        let mut bounds: Vec<Option<f64>> = Vec::with_capacity(m.len());
        let mut group_labels: HashMap<String, Labels> = HashMap::new();
        // Grouped with the name (it is dropped at the end), so two histograms that differ only
        // by name are two groups, and then a duplicate label set: as Prometheus.
        let without = vec!["le".to_string()];
        let mut bad_le: Vec<(String, String)> = Vec::new();
        for s in &m {
            let le = s.labels.get("le").unwrap_or("");
            let ub = parse_go_float(le);
            if ub.is_none() {
                bad_le.push((
                    le.to_string(),
                    s.labels.get(METRIC_NAME).unwrap_or("").to_string(),
                ));
            }
            bounds.push(ub);
            let key = signature(&s.labels, false, &without);
            group_labels.entry(key.clone()).or_insert_with(|| {
                let mut b = LabelsBuilder::new(&s.labels);
                b.del("le");
                b.build()
            });
            groups_key.push(key);
        }
        for (le, name) in bad_le {
            let pos = self.position_of(Some(b_expr));
            self.sh
                .annotations
                .warn(annotations::bad_bucket_label(&le, &name, pos));
        }
        let mut forced: Vec<String> = Vec::new();
        let out = self.range_eval(&[&m], |_, step, ts, v| {
            let mut buckets: HashMap<&str, (Vec<histogram::Bucket>, String)> = HashMap::new();
            let mut order: Vec<&str> = Vec::new();
            for e in &v[0] {
                let Some(ub) = bounds[e.series] else {
                    continue;
                };
                let key = groups_key[e.series].as_str();
                let entry = buckets.entry(key).or_insert_with(|| {
                    order.push(key);
                    (
                        Vec::new(),
                        m[e.series]
                            .labels
                            .get(METRIC_NAME)
                            .unwrap_or("")
                            .to_string(),
                    )
                });
                entry.0.push(histogram::Bucket {
                    upper_bound: ub,
                    count: e.f,
                });
            }
            let mut out = Vec::with_capacity(order.len());
            for key in order {
                let Some((mut b, name)) = buckets.remove(key) else {
                    continue;
                };
                for (label_value, value, forced_monotonic) in f(step, &mut b) {
                    if forced_monotonic && !forced.contains(&name) {
                        forced.push(name.clone());
                    }
                    let labels = match extra_label {
                        Some(l) => {
                            let mut lb = LabelsBuilder::new(&group_labels[key]);
                            lb.set(l, &label_value);
                            lb.build()
                        }
                        None => group_labels[key].clone(),
                    };
                    out.push(Sample {
                        labels,
                        t: ts,
                        f: value,
                        drop_name: true,
                    });
                }
            }
            Ok(out)
        })?;
        for name in forced {
            let pos = self.position_of(Some(b_expr));
            self.sh
                .annotations
                .info(annotations::histogram_quantile_forced_monotonicity(
                    &name, pos,
                ));
        }
        Ok(Evaluated::Vector(out))
    }

    /// `info(v [, selector])` (experimental): adds to each series of `v` the data labels of
    /// the info series (`target_info` unless the selector names others) that share its
    /// identifying labels `instance` and `job`, as of the same time. Labels the series has
    /// are kept; conflicting info series resolve to the one with the newest sample. With data
    /// label matchers only the labels they name are added, and a series with no matching info
    /// series is dropped unless every data matcher accepts an empty value.
    fn info(&mut self, c: &Call, args: &[&Expr]) -> Result<Evaluated> {
        const IDENTIFYING: [&str; 2] = ["instance", "job"];
        let m = self.eval_vector(args[0])?;
        let name_matchers = super::prefetch::info_name_matchers(c)?;
        let data_matchers: Vec<shards::index::matcher::Matcher> =
            match args.get(1).map(|a| unparen(a)) {
                Some(Expr::VectorSelector(vs)) => super::prefetch::matchers(vs)?
                    .into_iter()
                    .filter(|m| {
                        m.name != METRIC_NAME
                            && m.name != crate::promql::duration_expr::INFO_SENTINEL
                    })
                    .collect(),
                _ => Vec::new(),
            };
        let any_positive_name = name_matchers
            .iter()
            .any(|m| !m.kind.is_negative() && !m.matches(""));
        let is_info_name = |n: &str| {
            name_matchers.iter().all(|m| m.matches(n))
                && (any_positive_name || n.ends_with("_info"))
        };
        let infos: Vec<&crate::promql::source::RawSeries> = self
            .sh
            .series_of(c as *const Call as usize)
            .iter()
            .filter(|s| is_info_name(s.labels.get(METRIC_NAME).unwrap_or("")))
            .collect();
        let (at, offset) =
            super::prefetch::info_time_shift(args[0], self.sh.query_start, self.sh.query_end);
        let lookback = self.sh.lookback;
        let drop_unmatched =
            !data_matchers.is_empty() && data_matchers.iter().any(|m| !m.matches(""));
        let out = self.range_eval(&[&m], |_, _, ts, v| {
            let reference = at.unwrap_or(ts) - offset;
            let mut out = Vec::with_capacity(v[0].len());
            for e in &v[0] {
                let base = &m[e.series];
                if is_info_name(base.labels.get(METRIC_NAME).unwrap_or("")) {
                    out.push(sample_of(base, e.f, ts));
                    continue;
                }
                // Newest sample per info metric name among those joining this series, in
                // name order, so that a conflict is reported the same way every time.
                let mut chosen: std::collections::BTreeMap<&str, (i64, &Labels)> =
                    std::collections::BTreeMap::new();
                for info in &infos {
                    if IDENTIFYING
                        .iter()
                        .any(|l| info.labels.get(l) != base.labels.get(l))
                    {
                        continue;
                    }
                    if !data_matchers
                        .iter()
                        .all(|dm| dm.matches(info.labels.get(&dm.name).unwrap_or("")))
                    {
                        continue;
                    }
                    let Some(p) =
                        super::selectors::lookback_sample(&info.points, reference, lookback)
                    else {
                        continue;
                    };
                    let name = info.labels.get(METRIC_NAME).unwrap_or("");
                    match chosen.get(name) {
                        Some((t, _)) if *t >= p.t => {}
                        _ => {
                            chosen.insert(name, (p.t, &info.labels));
                        }
                    }
                }
                if chosen.is_empty() {
                    if !drop_unmatched {
                        out.push(sample_of(base, e.f, ts));
                    }
                    continue;
                }
                let mut b = LabelsBuilder::new(&base.labels);
                // Data labels already taken from another info metric, which must agree.
                let mut added: HashMap<&str, &str> = HashMap::new();
                for (_, labels) in chosen.values() {
                    for l in labels.iter() {
                        if l.name == METRIC_NAME
                            || IDENTIFYING.contains(&l.name.as_str())
                            || base.labels.get(&l.name).is_some()
                        {
                            continue;
                        }
                        if !data_matchers.is_empty()
                            && !data_matchers.iter().any(|dm| dm.name == l.name)
                        {
                            continue;
                        }
                        match added.insert(&l.name, &l.value) {
                            Some(v) if v != l.value => {
                                return Err(QueryError::exec(format!(
                                    "conflicting label: info series disagree on {:?} ({:?} and {:?}) for {}",
                                    l.name, v, l.value, base.labels
                                )));
                            }
                            _ => {}
                        }
                        b.set(&l.name, &l.value);
                    }
                }
                out.push(Sample {
                    labels: b.build(),
                    t: ts,
                    f: e.f,
                    drop_name: base.drop_name,
                });
            }
            Ok(out)
        })?;
        Ok(Evaluated::Vector(out))
    }

    /// ` (line:col)` of a sub-expression, found by its text in the query (promql-parser keeps
    /// no positions); empty when it cannot be found.
    pub fn position_of(&self, e: Option<&Expr>) -> String {
        let Some(e) = e else {
            return String::new();
        };
        let text = e.to_string();
        match self.sh.query.find(&text) {
            Some(at) => annotations::position(self.sh.query, at),
            None => String::new(),
        }
    }
}

/// The label value `histogram_quantiles` gives a quantile: its shortest decimal form, with
/// `.0` on whole numbers (`0.0`, `0.25`, `1.0`, `NaN`).
fn quantile_label(q: f64) -> String {
    let s = crate::promql::eval::aggregate::format_float_f(q);
    if q.is_finite() && !s.contains('.') {
        format!("{s}.0")
    } else {
        s
    }
}

/// Labels of `absent`'s output: the selector's equality matchers, except `__name__` and
/// labels matched more than once.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match unparen(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in &vs.matchers.matchers {
        *counts.entry(m.name.as_str()).or_default() += 1;
    }
    let mut b = LabelsBuilder::empty();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME
            || m.name == crate::promql::range_modifier::SENTINEL
            || counts[m.name.as_str()] > 1
        {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) {
            b.set(&m.name, &m.value);
        }
    }
    b.build()
}

/// Label names Prometheus 3 accepts: any non-empty UTF-8.
fn is_valid_label_name(n: &str) -> bool {
    !n.is_empty()
}

/// Go's `strconv.ParseFloat` for bucket bounds: decimal, exponent, `+Inf`, `Inf`, `NaN`.
pub fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            return Some(if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    t.parse::<f64>().ok().or_else(|| {
        let hex = lower.trim_start_matches(['+', '-']).strip_prefix("0x")?;
        let v = i64::from_str_radix(hex, 16).ok()? as f64;
        Some(if lower.starts_with('-') { -v } else { v })
    })
}

/// Series that a label function made identical are one series if their points do not
/// overlap in time (delayed name removal can make them so); overlapping ones are an error.
pub fn merge_same_labels(m: Matrix) -> Result<Matrix> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut out: Matrix = Vec::with_capacity(m.len());
    for s in m {
        match index.get(&s.labels) {
            Some(&i) => {
                let t = &mut out[i];
                let mut pts = std::mem::take(&mut t.points);
                pts.extend(s.points);
                pts.sort_by_key(|p| p.t);
                if pts.windows(2).any(|w| w[0].t == w[1].t) {
                    return Err(QueryError::exec(
                        "vector cannot contain metrics with the same labelset",
                    ));
                }
                t.points = pts;
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Orders an instant vector for `sort`, `sort_desc`, `sort_by_label(_desc)`.
fn sort_series(name: &str, m: &mut Matrix, labels: &[String]) {
    let val = |s: &Series| s.points.first().map_or(f64::NAN, |p| p.f);
    match name {
        "sort" => m.sort_by(|a, b| {
            let (x, y) = (val(a), val(b));
            match (x.is_nan(), y.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
            }
        }),
        "sort_desc" => m.sort_by(|a, b| {
            let (x, y) = (val(a), val(b));
            match (x.is_nan(), y.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
            }
        }),
        _ => {
            let desc = name == "sort_by_label_desc";
            m.sort_by(|a, b| {
                for l in labels {
                    let (x, y) = (a.labels.get(l).unwrap_or(""), b.labels.get(l).unwrap_or(""));
                    let o = natural_cmp(x, y);
                    if o != std::cmp::Ordering::Equal {
                        return if desc { o.reverse() } else { o };
                    }
                }
                let o = a.labels.cmp(&b.labels);
                if desc {
                    o.reverse()
                } else {
                    o
                }
            });
        }
    }
}

/// Natural ("version") order: runs of digits compare as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while !x.is_empty() && !y.is_empty() {
        if x[0].is_ascii_digit() && y[0].is_ascii_digit() {
            let xe = x
                .iter()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(x.len());
            let ye = y
                .iter()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(y.len());
            let (xd, yd) = (&x[..xe], &y[..ye]);
            let xt = {
                let z = xd.iter().position(|c| *c != b'0').unwrap_or(xd.len());
                &xd[z..]
            };
            let yt = {
                let z = yd.iter().position(|c| *c != b'0').unwrap_or(yd.len());
                &yd[z..]
            };
            let o = xt.len().cmp(&yt.len()).then_with(|| xt.cmp(yt));
            if o != Ordering::Equal {
                return o;
            }
            x = &x[xe..];
            y = &y[ye..];
        } else {
            if x[0] != y[0] {
                return x[0].cmp(&y[0]);
            }
            x = &x[1..];
            y = &y[1..];
        }
    }
    x.len().cmp(&y.len())
}

/// Vectors of one step as samples (used by tests and the instant shortcut).
pub fn vector_at(m: &Matrix, t: i64) -> Vector {
    m.iter()
        .filter_map(|s| {
            s.points
                .iter()
                .find(|p| p.t == t)
                .map(|p| sample_of(s, p.f, t))
        })
        .collect()
}
