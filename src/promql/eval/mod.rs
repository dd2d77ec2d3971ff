//! The evaluator: walks the AST once over all steps of a query, as Prometheus's engine does.
//! Every instant-vector node evaluates to a matrix whose points sit on the step timestamps;
//! scalars to one value per step; range vectors only exist as function arguments (or as the
//! whole result of an instant query).
//!
//! It owns evaluation semantics only: data was fetched before (`engine` and `prefetch`), so
//! nothing here waits on I/O. Limits (samples held, deadline) are checked as it goes.

pub mod agg_state;
pub mod aggregate;
pub mod binary;
pub mod call;
pub mod group_fold;
pub mod prefetch;
pub mod selectors;

use std::collections::HashMap;
use std::time::Instant;

use promql_parser::parser::{AtModifier, Expr, Offset};
use shards::labels::Labels;

use super::error::{QueryError, ENV_EVALUATION, ENV_EXECUTION};
use super::source::RawSeries;
use super::value::{Annotations, FPoint, Matrix, Sample, Series, Vector};

pub type Result<T> = std::result::Result<T, QueryError>;

/// What a node evaluates to over the evaluator's steps.
#[derive(Debug, Clone)]
pub enum Evaluated {
    /// One value per step.
    Scalar(Vec<f64>),
    /// An instant vector at every step: each series' points sit on step timestamps.
    Vector(Matrix),
    /// A range vector (instant evaluation only): raw points.
    Matrix(Matrix),
    Str(String),
}

/// An element of an instant vector at one step, pointing into the evaluated argument's
/// matrix instead of copying its labels.
#[derive(Debug, Clone, Copy)]
pub struct StepSample {
    pub series: usize,
    pub f: f64,
}

/// State shared by the evaluator of a query and those of its subqueries.
pub struct Shared<'a> {
    /// Series of each selector, by the address of its AST node (see `prefetch`).
    pub data: &'a HashMap<usize, Vec<RawSeries>>,
    /// Answers of the leaves the shards evaluated (see `plan`), by the address of their node.
    pub pushed: HashMap<usize, PushedLeaf>,
    /// How many shards the series are spread over (by label hash): aggregations with mergeable
    /// state partition their input the same way (see `agg_state`). 1 on a shard.
    pub shards: usize,
    pub max_samples: usize,
    pub current_samples: usize,
    pub deadline: Option<Instant>,
    pub annotations: Annotations,
    /// The query's own start and end, which `@ start()` / `@ end()` mean everywhere.
    pub query_start: i64,
    pub query_end: i64,
    /// The range query's step (0 for an instant query), for `step()`.
    pub query_step: i64,
    pub lookback: i64,
    /// Step of subqueries that give none.
    pub default_subquery_step: i64,
    /// The query text, for the positions annotations carry.
    pub query: &'a str,
}

impl<'a> Shared<'a> {
    pub fn check_deadline(&self) -> Result<()> {
        match self.deadline {
            Some(d) if Instant::now() > d => Err(QueryError::Timeout(ENV_EVALUATION)),
            _ => Ok(()),
        }
    }

    /// Counts `n` more samples held in memory.
    pub fn charge(&mut self, n: usize) -> Result<()> {
        self.current_samples += n;
        if self.current_samples > self.max_samples {
            return Err(QueryError::TooManySamples(ENV_EXECUTION));
        }
        Ok(())
    }

    pub fn release(&mut self, n: usize) {
        self.current_samples = self.current_samples.saturating_sub(n);
    }

    pub fn series_of(&self, node: usize) -> &'a [RawSeries] {
        self.data.get(&node).map_or(&[], |v| v.as_slice())
    }
}

/// A leaf's merged answer and the step grid it was evaluated on.
#[derive(Debug, Clone)]
pub struct PushedLeaf {
    pub start: i64,
    pub end: i64,
    pub interval: i64,
    pub series: Matrix,
    /// Samples the shards held for the leaf's sub-expressions besides its answer: charged with
    /// the answer, so that the router holds what evaluating the leaf here would have held.
    pub held_below: usize,
}

pub struct Evaluator<'s, 'a> {
    pub sh: &'s mut Shared<'a>,
    pub start: i64,
    pub end: i64,
    pub interval: i64,
}

/// Milliseconds of an `@` modifier, `start()`/`end()` resolved.
pub fn at_ms(at: &Option<AtModifier>, query_start: i64, query_end: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(query_start),
        Some(AtModifier::End) => Some(query_end),
        Some(AtModifier::At(t)) => Some(match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => round_nanos_to_ms(d.as_nanos() as i128),
            Err(e) => -round_nanos_to_ms(e.duration().as_nanos() as i128),
        }),
    }
}

fn round_nanos_to_ms(n: i128) -> i64 {
    ((n + 500_000) / 1_000_000) as i64
}

pub fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

pub fn duration_ms(d: &std::time::Duration) -> i64 {
    d.as_millis() as i64
}

/// Strips parentheses.
pub fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

impl<'s, 'a> Evaluator<'s, 'a> {
    pub fn steps(&self) -> usize {
        if self.end < self.start {
            return 0;
        }
        ((self.end - self.start) / self.interval + 1) as usize
    }

    pub fn is_instant(&self) -> bool {
        self.start == self.end
    }

    pub fn at(&self, at: &Option<AtModifier>) -> Option<i64> {
        at_ms(at, self.sh.query_start, self.sh.query_end)
    }

    /// An evaluator for a sub-range sharing this one's state.
    pub fn sub(&mut self, start: i64, end: i64, interval: i64) -> Evaluator<'_, 'a> {
        Evaluator {
            sh: &mut *self.sh,
            start,
            end,
            interval,
        }
    }

    pub fn eval(&mut self, e: &Expr) -> Result<Evaluated> {
        self.sh.check_deadline()?;
        if !self.sh.pushed.is_empty() {
            if let Some(m) = self.take_pushed(e)? {
                return Ok(Evaluated::Vector(m));
            }
        }
        match e {
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::NumberLiteral(n) => Ok(Evaluated::Scalar(vec![n.val; self.steps()])),
            Expr::StringLiteral(s) => Ok(Evaluated::Str(s.val.clone())),
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Evaluated::Scalar(mut v) => {
                    v.iter_mut().for_each(|x| *x = -*x);
                    Ok(Evaluated::Scalar(v))
                }
                Evaluated::Vector(mut m) => {
                    for s in &mut m {
                        s.drop_name = true;
                        s.points.iter_mut().for_each(|p| p.f = -p.f);
                    }
                    Ok(Evaluated::Vector(m))
                }
                _ => Err(QueryError::BadData(
                    "unary expression only allowed on expressions of type scalar or instant vector"
                        .into(),
                )),
            },
            Expr::VectorSelector(vs) => Ok(Evaluated::Vector(self.vector_selector(vs, false)?)),
            Expr::MatrixSelector(ms) => {
                if !self.is_instant() {
                    return Err(QueryError::exec(
                        "cannot do range evaluation of matrix selector",
                    ));
                }
                let input = self.matrix_selector(ms)?;
                Ok(Evaluated::Matrix(input.window_matrix(self.start)))
            }
            Expr::Subquery(sq) => {
                if !self.is_instant() {
                    return Err(QueryError::exec("cannot do range evaluation of subquery"));
                }
                let input = self.subquery(sq)?;
                Ok(Evaluated::Matrix(input.window_matrix(self.start)))
            }
            Expr::Binary(b) => self.binary(b),
            Expr::Aggregate(a) => self.aggregate(a),
            Expr::Call(c) => self.call(c),
            Expr::Extension(_) => Err(QueryError::BadData(
                "extension expressions are not supported".into(),
            )),
        }
    }

    /// The shards' answer for `e` when it is a planned leaf. The planner only picks nodes the
    /// evaluator reaches once, on the query's own grid; anything else is a planner bug, reported
    /// as an error rather than a silently different answer.
    fn take_pushed(&mut self, e: &Expr) -> Result<Option<Matrix>> {
        let Some(leaf) = self.sh.pushed.remove(&(e as *const Expr as usize)) else {
            return Ok(None);
        };
        if (leaf.start, leaf.end, leaf.interval) != (self.start, self.end, self.interval) {
            return Err(QueryError::exec(
                "internal: a pushed-down leaf was evaluated on another step grid",
            ));
        }
        let held: usize = leaf.series.iter().map(|s| s.points.len()).sum();
        self.sh.charge(held + leaf.held_below)?;
        Ok(Some(leaf.series))
    }

    /// Evaluates an expression that must yield a scalar (per step).
    pub fn eval_scalar(&mut self, e: &Expr) -> Result<Vec<f64>> {
        match self.eval(e)? {
            Evaluated::Scalar(v) => Ok(v),
            _ => Err(QueryError::BadData(format!(
                "expected type scalar in expression {e}"
            ))),
        }
    }

    /// Evaluates an expression that must yield an instant vector.
    pub fn eval_vector(&mut self, e: &Expr) -> Result<Matrix> {
        match self.eval(e)? {
            Evaluated::Vector(m) => Ok(m),
            _ => Err(QueryError::BadData(format!(
                "expected type instant vector in expression {e}"
            ))),
        }
    }

    /// Calls `f` at every step with the elements each input matrix has at that step, and
    /// stitches the vectors it returns into series (Prometheus's `rangeEval`). For an instant
    /// evaluation the output keeps `f`'s order.
    pub fn range_eval(
        &mut self,
        inputs: &[&Matrix],
        mut f: impl FnMut(&mut Shared<'a>, usize, i64, &[Vec<StepSample>]) -> Result<Vector>,
    ) -> Result<Matrix> {
        let mut cursors: Vec<Vec<usize>> = inputs.iter().map(|m| vec![0; m.len()]).collect();
        let mut vectors: Vec<Vec<StepSample>> = inputs.iter().map(|_| Vec::new()).collect();
        let mut out: Matrix = Vec::new();
        let mut index: HashMap<Labels, (usize, i64)> = HashMap::new();
        let before = self.sh.current_samples;
        let mut held = 0usize;
        for step in 0..self.steps() {
            let ts = self.start + step as i64 * self.interval;
            self.sh.check_deadline()?;
            for (i, m) in inputs.iter().enumerate() {
                vectors[i].clear();
                for (si, s) in m.iter().enumerate() {
                    let c = &mut cursors[i][si];
                    if let Some(p) = s.points.get(*c) {
                        if p.t == ts {
                            vectors[i].push(StepSample { series: si, f: p.f });
                            *c += 1;
                        }
                    }
                }
            }
            let result = f(self.sh, step, ts, &vectors)?;
            held += result.len();
            self.sh.charge(result.len())?;
            if self.is_instant() {
                self.sh.current_samples = before + result.len();
                return Ok(result
                    .into_iter()
                    .map(|s| Series {
                        labels: s.labels,
                        points: vec![FPoint { t: ts, f: s.f }],
                        drop_name: s.drop_name,
                    })
                    .collect());
            }
            for s in result {
                match index.get_mut(&s.labels) {
                    Some((i, last)) => {
                        if *last == ts {
                            return Err(QueryError::exec(
                                "vector cannot contain metrics with the same labelset",
                            ));
                        }
                        *last = ts;
                        out[*i].points.push(FPoint { t: ts, f: s.f });
                    }
                    None => {
                        index.insert(s.labels.clone(), (out.len(), ts));
                        out.push(Series {
                            labels: s.labels,
                            points: vec![FPoint { t: ts, f: s.f }],
                            drop_name: s.drop_name,
                        });
                    }
                }
            }
        }
        self.sh.current_samples = before + held;
        Ok(out)
    }
}

/// A sample at `t` built from a series of an evaluated matrix.
pub fn sample_of(series: &Series, f: f64, t: i64) -> Sample {
    Sample {
        labels: series.labels.clone(),
        t,
        f,
        drop_name: series.drop_name,
    }
}
