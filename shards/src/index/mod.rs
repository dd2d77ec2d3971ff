//! Selecting series by their labels: label matchers, set operations on sorted series-id
//! lists, and the head's in-memory inverted index. Nothing here does I/O.

pub mod matcher;
pub mod mem_postings;
pub mod postings;

pub use matcher::{MatchType, Matcher, MatcherError};
pub use mem_postings::MemPostings;
