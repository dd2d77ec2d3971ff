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

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            bytes: &self.bytes,
            start: 0,
            ends: self.ends.iter(),
        }
    }

    /// Whether `s` is in the list (a binary search: the list is ascending).
    pub fn contains(&self, s: &str) -> bool {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).map(|m| m.cmp(s)) {
                Some(std::cmp::Ordering::Less) => lo = mid + 1,
                Some(std::cmp::Ordering::Greater) => hi = mid,
                Some(std::cmp::Ordering::Equal) => return true,
                None => return false,
            }
        }
        false
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

    /// The union of ascending sequences, ascending, each string once.
    pub fn merge<'a, I>(sources: impl IntoIterator<Item = I>) -> Self
    where
        I: Iterator<Item = &'a str>,
    {
        Self::merge_with_capacity(sources, 0, 0)
    }

    /// As `merge`, with room reserved for at least `strings` strings of `bytes` bytes (for
    /// instance the largest source's), so that a long union is not copied through the
    /// doubling.
    pub fn merge_with_capacity<'a, I>(
        sources: impl IntoIterator<Item = I>,
        strings: usize,
        bytes: usize,
    ) -> Self
    where
        I: Iterator<Item = &'a str>,
    {
        let merged = Merged::new(sources);
        let mut out = StringList {
            bytes: String::with_capacity(bytes),
            ends: Vec::with_capacity(strings.max(merged.least_count())),
        };
        for s in merged {
            // `Merged` gives each string once, ascending: no need to compare with the last.
            out.bytes.push_str(s);
            out.ends.push(out.bytes.len());
        }
        out
    }

    /// Bytes of all strings together.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Heap bytes the list holds (its buffers' capacities), for callers that keep lists
    /// within a budget.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
    }

    /// All strings together, one after the other: for a look at every byte at once.
    pub fn concatenated(&self) -> &str {
        &self.bytes
    }
}

/// The strings of a [`StringList`] in order; each one's start is the previous one's end.
#[derive(Clone)]
pub struct Iter<'a> {
    bytes: &'a str,
    start: usize,
    ends: std::slice::Iter<'a, usize>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let end = *self.ends.next()?;
        let s = self.bytes.get(self.start..end).unwrap_or_default();
        self.start = end;
        Some(s)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ends.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The union of strictly ascending sequences as an ascending iterator, each string once:
/// what [`StringList::merge`] collects, for callers that only walk the union once (the
/// router writes the shards' lists straight into an answer). Sources are few (a shard's
/// blocks and head, or the shards), so the smallest head is found by a scan, which also
/// finds the sources showing the same string: they all move on, so a string common to
/// every source (the usual case: the blocks of a shard hold mostly the same values) costs
/// one comparison per source.
pub struct Merged<'a, I> {
    /// Each live source with the string it shows next.
    heads: Vec<(&'a str, I)>,
    /// Scratch: the sources showing the string being returned.
    tied: Vec<usize>,
}

impl<'a, I: Iterator<Item = &'a str>> Merged<'a, I> {
    pub fn new(sources: impl IntoIterator<Item = I>) -> Self {
        let heads: Vec<(&'a str, I)> = sources
            .into_iter()
            .filter_map(|mut it| it.next().map(|s| (s, it)))
            .collect();
        let tied = Vec::with_capacity(heads.len());
        Merged { heads, tied }
    }

    /// At least how many strings the union holds (its largest source's), for reserving.
    pub fn least_count(&self) -> usize {
        self.heads
            .iter()
            .map(|(_, it)| it.size_hint().0 + 1)
            .max()
            .unwrap_or(0)
    }
}

impl<'a, I: Iterator<Item = &'a str>> Iterator for Merged<'a, I> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        // Two sources, the router's usual case (two shards' lists of a label's values): one
        // comparison, no scratch list.
        if let [(a, _), (b, _)] = self.heads[..] {
            return Some(match compare(a, b) {
                std::cmp::Ordering::Less => {
                    self.advance(0, a);
                    a
                }
                std::cmp::Ordering::Greater => {
                    self.advance(1, b);
                    b
                }
                // The second first: `swap_remove` of the first would move it.
                std::cmp::Ordering::Equal => {
                    self.advance(1, b);
                    self.advance(0, a);
                    a
                }
            });
        }
        let mut min = 0;
        let mut s = self.heads.first()?.0;
        // Sources after `min` showing `s` too, ascending.
        self.tied.clear();
        for (i, h) in self.heads.iter().enumerate().skip(1) {
            match compare(h.0, s) {
                std::cmp::Ordering::Less => {
                    min = i;
                    s = h.0;
                    self.tied.clear();
                }
                std::cmp::Ordering::Equal => self.tied.push(i),
                std::cmp::Ordering::Greater => {}
            }
        }
        // Highest index first (the ties backwards, then `min`), so that `swap_remove` only
        // ever moves a source already advanced or not showing `s`.
        for k in (0..=self.tied.len()).rev() {
            let i = if k == 0 { min } else { self.tied[k - 1] };
            self.advance(i, s);
        }
        Some(s)
    }
}

impl<'a, I: Iterator<Item = &'a str>> Merged<'a, I> {
    /// Moves source `i`, which shows `s`, to its next string, or drops it when it has none.
    #[inline]
    fn advance(&mut self, i: usize, s: &'a str) {
        match self.heads[i].1.next() {
            Some(next) => {
                debug_assert!(s <= next, "{s:?} before {next:?}");
                self.heads[i].0 = next;
            }
            None => {
                self.heads.swap_remove(i);
            }
        }
    }
}

/// `a.cmp(b)` (byte order) for the short strings label values are, eight bytes at a time
/// and inline: the merges above compare once per string, and a call to `memcmp` each time
/// cost more than the comparison.
#[inline]
pub fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len().min(b.len());
    let word = |s: &[u8], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        u64::from_be_bytes(w)
    };
    let mut i = 0;
    while i + 8 <= n {
        let (x, y) = (word(a, i), word(b, i));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
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
            let want: Vec<&str> = want.into_iter().collect();
            prop_assert_eq!(got.iter().collect::<Vec<_>>(), want.clone());
            let lazy: Vec<&str> = Merged::new(lists.iter().map(|l| l.iter().map(String::as_str))).collect();
            prop_assert_eq!(lazy, want.clone());
            for probe in ["", "a", "ab", "abc", "b", "bz", "c", "d"] {
                prop_assert_eq!(got.contains(probe), want.contains(&probe));
            }
        }

        /// The inline comparison is the byte order of `str`.
        #[test]
        fn compare_is_the_byte_order(a in "[a-c\\x{e9}]{0,20}", b in "[a-c\\x{e9}]{0,20}") {
            prop_assert_eq!(compare(&a, &b), a.cmp(&b));
            let c = format!("{a}x");
            prop_assert_eq!(compare(&a, &c), a.as_str().cmp(c.as_str()));
        }
    }
}
