//! What rule evaluation needs from the data: an instant query, the newest raw sample of the
//! series matching some labels (to restore `for` state), and appends. `EngineStorage` gives
//! all three over any `SeriesSource` with the PromQL engine, plus an appender: the router on
//! the server, series in memory for `promcore test rules`.
//!
//! Nothing here decides what to evaluate or when; that is the group's and the manager's.

use std::future::Future;

use shards::index::matcher::{MatchType, Matcher};
use shards::labels::Labels;

use crate::promql::engine::{Engine, QueryParams};
use crate::promql::source::SeriesSource;
use crate::promql::value::{Sample, Value};

use super::alerting::LabelMap;

pub trait RuleStorage {
    /// Evaluates `expr` at `t` (ms); a scalar is one sample without labels, as Prometheus's
    /// rule query function returns it.
    fn query(&self, expr: &str, t: i64) -> impl Future<Output = Result<Vec<Sample>, String>>;
    /// The newest sample in `[mint, maxt]` of the one series with exactly these labels.
    fn last_sample(
        &self,
        labels: &LabelMap,
        mint: i64,
        maxt: i64,
    ) -> impl Future<Output = Result<Option<(i64, f64)>, String>>;
    /// Appends samples (labels include `__name__`); refusals of single samples (out of
    /// order, ...) are not errors.
    fn append(&self, samples: Vec<(Labels, i64, f64)>) -> impl Future<Output = Result<(), String>>;
}

/// Turns a query's value into what a rule sees.
pub fn rule_vector(value: Value) -> Result<Vec<Sample>, String> {
    match value {
        Value::Vector(v) => Ok(v),
        Value::Scalar { t, f } => Ok(vec![Sample {
            labels: Labels::empty(),
            t,
            f,
            drop_name: false,
        }]),
        other => Err(format!(
            "rule result is not a vector or scalar: {}",
            other.type_name()
        )),
    }
}

pub async fn engine_query<S: SeriesSource>(
    engine: &Engine,
    source: &S,
    expr: &str,
    t: i64,
) -> Result<Vec<Sample>, String> {
    let r = engine
        .instant_query(source, expr, t, &QueryParams::default())
        .await
        .map_err(|e| e.to_string())?;
    rule_vector(r.value)
}

pub async fn newest_sample<S: SeriesSource>(
    source: &S,
    labels: &LabelMap,
    mint: i64,
    maxt: i64,
) -> Result<Option<(i64, f64)>, String> {
    let matchers = labels
        .iter()
        .map(|(k, v)| Matcher::new(MatchType::Equal, k.clone(), v.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let series = source.select(&matchers, mint, maxt).await?;
    // Exactly these labels: a series with more labels matches the equality matchers too.
    Ok(series
        .iter()
        .find(|s| s.labels.len() == labels.len())
        .and_then(|s| s.points.last())
        .map(|p| (p.t, p.f)))
}
