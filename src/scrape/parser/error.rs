//! Why an exposition was refused. Any error fails the whole scrape (as in Prometheus), so
//! errors are built only once per scrape and may allocate; they carry the 1-based line and
//! enough of the offending text to fix the exporter.

use std::fmt;

use thiserror::Error;

use super::number::NumberError;

/// A refused exposition: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line number in the body.
    pub line: usize,
    /// Boxed: errors are rare, and a small `Result` keeps the per-line hot path in registers.
    pub kind: Box<ParseErrorKind>,
}

/// The error of the per-line functions, boxed for the same reason.
pub(crate) type Fail = Box<ParseErrorKind>;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    #[error("expected {expected}, found {found}")]
    Syntax {
        expected: &'static str,
        found: Found,
    },
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    #[error("quoted (UTF-8) metric and label names are not supported: expose legacy names ([a-zA-Z_:][a-zA-Z0-9_:]*)")]
    QuotedName,
    #[error("invalid {what} {text:?}: {reason}")]
    InvalidNumber {
        what: &'static str,
        text: String,
        reason: NumberError,
    },
    #[error("invalid metric type {0:?}")]
    InvalidMetricType(String),
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    #[error("label name {0:?} is not unique")]
    DuplicateLabelName(String),
    #[error("unit {unit:?} not a suffix of metric {metric:?}")]
    UnitNotSuffix { unit: String, metric: String },
    #[error("blank lines are not allowed in OpenMetrics")]
    BlankLine,
    #[error("only # HELP, # TYPE, # UNIT and # EOF lines may start with '#' in OpenMetrics")]
    InvalidComment,
    #[error("data does not end with # EOF")]
    MissingEof,
    #[error("unexpected data after # EOF")]
    DataAfterEof,
}

impl ParseErrorKind {
    /// `line` may run on past the line (the parser reads samples in the body): its
    /// newline is the end of the line.
    #[cold]
    pub(crate) fn syntax(expected: &'static str, line: &[u8], at: usize) -> Fail {
        Box::new(ParseErrorKind::Syntax {
            expected,
            found: match line.get(at) {
                None | Some(b'\n') => Found::EndOfLine,
                Some(&b) => Found::Byte(b),
            },
        })
    }

    #[cold]
    pub(crate) fn number(what: &'static str, text: &[u8], reason: NumberError) -> Fail {
        Box::new(ParseErrorKind::InvalidNumber {
            what,
            text: snippet(text),
            reason,
        })
    }
}

/// What stood where something else was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    EndOfLine,
    Byte(u8),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Found::EndOfLine => f.write_str("end of line"),
            Found::Byte(b) if b.is_ascii_graphic() => write!(f, "{:?}", b as char),
            Found::Byte(b' ') => f.write_str("space"),
            Found::Byte(b'\t') => f.write_str("tab"),
            Found::Byte(b) => write!(f, "byte 0x{b:02x}"),
        }
    }
}

/// At most 64 bytes of the offending text, lossily decoded: a message, not data.
pub(crate) fn snippet(text: &[u8]) -> String {
    const MAX: usize = 64;
    let cut = &text[..text.len().min(MAX)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if text.len() > MAX {
        s.push('…');
    }
    s
}
