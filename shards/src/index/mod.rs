//! Selecting series by their labels: label matchers, set operations on sorted series-id
//! lists, the head's in-memory inverted index, and a block's `index` file (`writer`,
//! `reader`).

mod id_set;
pub mod matcher;
pub mod mem_postings;
pub mod posting_list;
pub mod postings;
pub mod reader;
pub mod writer;

pub use matcher::{MatchType, Matcher, MatcherError};
pub use mem_postings::MemPostings;
