//! The errors a query can end with. Their texts are API-visible (Prometheus's own, which the
//! test files check with `expect fail msg:`), so they are written out exactly here.

use thiserror::Error;

/// Where in the query's life an error happened, as Prometheus names it in its messages.
pub const ENV_EXECUTION: &str = "query execution";
pub const ENV_EVALUATION: &str = "expression evaluation";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    /// The text is not valid PromQL, or a parameter is unusable (HTTP `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// Evaluation refused the data (HTTP `execution`, 422).
    #[error("{0}")]
    Execution(String),
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The storage could not answer.
    #[error("{0}")]
    Storage(String),
}

impl QueryError {
    pub fn exec(msg: impl Into<String>) -> Self {
        QueryError::Execution(msg.into())
    }

    /// Prometheus's `errorType` of the HTTP API for this error.
    pub fn api_error_type(&self) -> &'static str {
        match self {
            QueryError::BadData(_) => "bad_data",
            QueryError::Execution(_) | QueryError::TooManySamples(_) => "execution",
            QueryError::Timeout(_) => "timeout",
            QueryError::Storage(_) => "internal",
        }
    }
}
