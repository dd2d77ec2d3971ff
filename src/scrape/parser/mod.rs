//! The exposition parser: Prometheus text 0.0.4 and OpenMetrics 1.0 bodies, read in place.
//!
//! It owns the grammar of both formats (one parser, a `Format` flag selecting OpenMetrics's
//! stricter rules), number and timestamp syntax, escape resolution and the choice of format
//! from a `Content-Type`. It yields borrowed entries — a sample's series is the raw
//! `name{labels}` bytes, the scrape-cache key — and decodes labels only when asked, on a
//! cache miss. It never allocates per line on the cached path, never applies target labels,
//! relabeling or limits (the scrape loop does), and never touches storage.

mod entry;
mod error;
mod escape;
mod format;
mod labels;
mod names;
mod number;
#[allow(clippy::module_inception)]
mod parser;
mod swar;
mod utf8;
mod window;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use entry::{Entry, MetricType};
pub use error::{Found, ParseError, ParseErrorKind};
pub use escape::escape_label_value;
pub use format::{format_for_content_type, ContentTypeError, Format};
pub use labels::{recycle_label_buffer, LabelPairs, METRIC_NAME_LABEL};
pub use names::{is_valid_label_name, is_valid_metric_name};
pub use number::{NumberError, NORMAL_NAN_BITS};
pub use parser::Parser;
