//! Each shard's list for one label request and one `match[]` selector, kept by the router
//! while that shard's sources are unchanged, so that a label answer the router has not kept
//! whole is merged from the lists it has, asking only the shards whose lists it lacks.
//!
//! A kept whole answer (`label_cache`) serves only the very same request. The lists behind it
//! serve more: a request that differs only in its `limit` or in its other selectors, a range
//! that reads the same sources, and, after a change in one shard, every other shard's part.
//! A list is given again under the same rule as a whole answer, per shard: only while the
//! shard's published sources for the new range (at the generation of what the request reads,
//! see `shards::label_generation`) equal those the list was read from; it is then exactly
//! what that shard would answer. This module only names lists (what they depend on: the
//! request, the selector, the shard); it never reads shard state and never merges. The lists
//! have a budget of their own, the same as the whole answers' (`label_cache::MAX_BYTES`,
//! `MAX_ENTRIES`): a shard's `instance` list at a million series is ~10 MB.

use std::fmt::Write;
use std::rc::Rc;

use shards::index::matcher::{MatchType, Matcher};
use shards::string_list::StringList;

use super::label_cache::KeptAnswers;
use super::LabelRequest;

/// Shard lists, each keyed by `shard_key` and kept with the one shard's sources.
pub type LabelListCache = KeptAnswers<Rc<StringList>>;

/// What a shard's list depends on besides the shard and the range: the request and one
/// selector's matchers. Every string is written with its length first, so that two
/// different requests never give the same key whatever bytes their names and values hold.
pub fn list_key(request: LabelRequest<'_>, matchers: &[Matcher]) -> String {
    let mut key = String::new();
    match request {
        LabelRequest::Names => key.push('n'),
        LabelRequest::Values(name) => {
            let _ = write!(key, "v{}:{name}", name.len());
        }
    }
    for m in matchers {
        let op = match m.kind {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        };
        let _ = write!(
            key,
            "|{}:{}{op}{}:{}",
            m.name.len(),
            m.name,
            m.value.len(),
            m.value
        );
    }
    key
}

/// The key of `shard`'s list for `list_key`.
pub fn shard_key(list_key: &str, shard: usize) -> String {
    format!("{shard}#{list_key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MatchType, name: &str, value: &str) -> Matcher {
        Matcher::new(kind, name, value).unwrap()
    }

    #[test]
    fn keys_tell_every_request_selector_and_shard_apart() {
        use LabelRequest::{Names, Values};
        let eq = |n, v| m(MatchType::Equal, n, v);
        let keys = [
            list_key(Names, &[]),
            list_key(Values("job"), &[]),
            list_key(Values("jo"), &[]),
            list_key(Names, &[eq("a", "b")]),
            list_key(Names, &[m(MatchType::NotEqual, "a", "b")]),
            list_key(Names, &[m(MatchType::Regex, "a", "b")]),
            list_key(Names, &[m(MatchType::NotRegex, "a", "b")]),
            // Names and values whose bytes would run together without lengths.
            list_key(Names, &[eq("a", "b|1:c=1:d")]),
            list_key(Names, &[eq("a", "b"), eq("c", "d")]),
            list_key(Values("a|1:b=1:c"), &[]),
            list_key(Values("a"), &[eq("b", "c")]),
        ];
        let mut distinct: Vec<_> = keys.iter().collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
        assert_eq!(list_key(Names, &[eq("a", "b")]), keys[3]);
        assert_ne!(shard_key(&keys[0], 0), shard_key(&keys[0], 1));
        assert_ne!(shard_key("1#n", 0), shard_key("n", 10));
    }
}
