//! Sorted, deduplicated lists of strings packed into one buffer — the answers of label-name
//! and label-value requests — and their k-way merge.
//!
//! A label-values answer can hold a million values (`instance` over every series). Kept as
//! `Vec<String>` that is a million allocations on the shard, a million frees on the router
//! and a sort of a million strings there; packed, it is two allocations, and since every
//! source (a block's label table, the head's postings, a shard's answer) is sorted already,
//! combining sources is a linear merge, never a sort. This module owns only that list and
//! merge: it never reads storage and never decides which values belong in a list.

/// Strings in ascending byte order, each once, in one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringList {
    bytes: String,
    /// End offset in `bytes` of each string; string `i` starts where `i - 1` ends.
    ends: Vec<usize>,
}

impl StringList {
    pub fn new() -> Self {
        StringList::default()
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Appends `s` unless it equals the last string. Sources hand strings in ascending order;
    /// one out of order is a caller's bug, caught in debug builds.
    pub fn push(&mut self, s: &str) {
        match self.last() {
            Some(last) if last == s => return,
            Some(last) => debug_assert!(last < s, "{last:?} pushed before {s:?}"),
            None => {}
        }
        self.bytes.push_str(s);
        self.ends.push(self.bytes.len());
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.bytes.get(start..end)
    }

    pub fn last(&self) -> Option<&str> {
        self.ends.len().checked_sub(1).and_then(|i| self.get(i))
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        (0..self.ends.len()).map(|i| self.get(i).unwrap_or_default())
    }

    /// Keeps the first `n` strings.
    pub fn truncate(&mut self, n: usize) {
        if n < self.ends.len() {
            self.ends.truncate(n);
            let end = self.ends.last().copied().unwrap_or(0);
            self.bytes.truncate(end);
        }
    }

    /// The list of an ascending sequence (repeats dropped).
    pub fn from_sorted<'a>(strings: impl IntoIterator<Item = &'a str>) -> Self {
        let mut out = StringList::new();
        for s in strings {
            out.push(s);
        }
        out
    }

    /// The union of ascending sequences, ascending, each string once. Sources are few
    /// (a shard's blocks and head, or the shards), so the smallest head is found by a scan.
    pub fn merge<'a, I>(sources: impl IntoIterator<Item = I>) -> Self
    where
        I: Iterator<Item = &'a str>,
    {
        // Each live source with the string it shows next.
        let mut heads: Vec<(&'a str, I)> = sources
            .into_iter()
            .filter_map(|mut it| it.next().map(|s| (s, it)))
            .collect();
        let mut out = StringList::new();
        loop {
            match heads.len() {
                0 => return out,
                // The common case (one block, or one shard with values): copy the rest.
                1 => {
                    if let Some((first, rest)) = heads.pop() {
                        out.push(first);
                        for s in rest {
                            out.push(s);
                        }
                    }
                    return out;
                }
                _ => {}
            }
            let mut min = 0;
            for (i, h) in heads.iter().enumerate().skip(1) {
                if h.0 < heads[min].0 {
                    min = i;
                }
            }
            out.push(heads[min].0);
            match heads[min].1.next() {
                Some(s) => heads[min].0 = s,
                None => {
                    heads.swap_remove(min);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn push_drops_repeats_and_truncate_keeps_a_prefix() {
        let mut l = StringList::from_sorted(["", "a", "a", "b", "bc"]);
        assert_eq!(l.iter().collect::<Vec<_>>(), ["", "a", "b", "bc"]);
        assert_eq!(l.len(), 4);
        l.truncate(2);
        assert_eq!(l.iter().collect::<Vec<_>>(), ["", "a"]);
        l.push("z");
        assert_eq!(l.iter().collect::<Vec<_>>(), ["", "a", "z"]);
        assert_eq!(l.get(3), None);
    }

    #[test]
    fn merge_of_nothing_is_empty() {
        let none: Vec<std::vec::IntoIter<&str>> = Vec::new();
        assert!(StringList::merge(none).is_empty());
        assert!(StringList::merge([Vec::<&str>::new().into_iter()]).is_empty());
    }

    proptest! {
        /// Merging sorted lists gives their sorted, deduplicated union.
        #[test]
        fn merge_is_the_sorted_union(lists in prop::collection::vec(
            prop::collection::btree_set("[a-c]{0,3}", 0..20), 0..5)) {
            let want: std::collections::BTreeSet<&str> =
                lists.iter().flatten().map(String::as_str).collect();
            let got = StringList::merge(
                lists.iter().map(|l| l.iter().map(String::as_str)));
            prop_assert_eq!(got.iter().collect::<Vec<_>>(), want.into_iter().collect::<Vec<_>>());
        }
    }
}
