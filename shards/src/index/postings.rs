//! Set operations on postings lists: strictly increasing `u32` series ids. These are the
//! inner loops of every selector, run over lists of millions of ids, so they pick their
//! algorithm by the shapes of their inputs (galloping when one side is much shorter, a
//! bitmap when a union is dense) and allocate only their result.
//!
//! Every function requires its inputs sorted and free of duplicates and guarantees the same
//! of its output; it never checks (that would cost a pass), and unsorted input gives a
//! wrong answer, never a panic.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// When one list is this many times longer than the other, skipping through the longer by
/// exponential search beats walking it element by element.
const GALLOP_RATIO: usize = 16;

/// Ids present in every list. The empty set of lists intersects to nothing.
pub fn intersect(lists: &[&[u32]]) -> Vec<u32> {
    let mut sorted: Vec<&[u32]> = lists.to_vec();
    sorted.sort_unstable_by_key(|l| l.len());
    let Some((first, rest)) = sorted.split_first() else {
        return Vec::new();
    };
    let Some((second, rest)) = rest.split_first() else {
        return first.to_vec();
    };
    // The result can never outgrow the smallest list; later lists only filter it.
    let mut out = Vec::with_capacity(first.len());
    intersect_into(first, second, &mut out);
    for l in rest {
        if out.is_empty() {
            break;
        }
        retain_common(&mut out, l);
    }
    out
}

/// Keeps in `a` only the ids also in `b`.
pub fn retain_common(a: &mut Vec<u32>, b: &[u32]) {
    let len = if b.len() >= a.len().saturating_mul(GALLOP_RATIO) {
        let (mut w, mut j) = (0, 0);
        for r in 0..a.len() {
            let x = a[r];
            j = gallop(b, j, x);
            if j == b.len() {
                break;
            }
            if b[j] == x {
                a[w] = x;
                w += 1;
                j += 1;
            }
        }
        w
    } else {
        let (mut w, mut j) = (0, 0);
        for r in 0..a.len() {
            let x = a[r];
            while j < b.len() && b[j] < x {
                j += 1;
            }
            if j == b.len() {
                break;
            }
            if b[j] == x {
                a[w] = x;
                w += 1;
                j += 1;
            }
        }
        w
    };
    a.truncate(len);
}

fn intersect_into(small: &[u32], large: &[u32], out: &mut Vec<u32>) {
    if large.len() >= small.len().saturating_mul(GALLOP_RATIO) {
        let mut j = 0;
        for &x in small {
            j = gallop(large, j, x);
            if j == large.len() {
                break;
            }
            if large[j] == x {
                out.push(x);
                j += 1;
            }
        }
    } else {
        let (mut i, mut j) = (0, 0);
        while i < small.len() && j < large.len() {
            let (x, y) = (small[i], large[j]);
            if x == y {
                out.push(x);
            }
            i += (x <= y) as usize;
            j += (y <= x) as usize;
        }
    }
}

/// Whether `a` and `b` share an id, stopping at the first one.
pub fn intersects(a: &[u32], b: &[u32]) -> bool {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut j = 0;
    for &x in small {
        j = gallop(large, j, x);
        if j == large.len() {
            return false;
        }
        if large[j] == x {
            return true;
        }
    }
    false
}

/// A sorted postings list as [`first_common`] reads it: decoded, or still in its index-file
/// form (ascending big-endian u32s, a length that is a multiple of 4) and read in place, so
/// a block's long lists are probed without being decoded or copied.
#[derive(Debug, Clone, Copy)]
pub enum IdList<'a> {
    Decoded(&'a [u32]),
    BigEndian(&'a [u8]),
}

impl IdList<'_> {
    pub fn len(&self) -> usize {
        match self {
            IdList::Decoded(s) => s.len(),
            IdList::BigEndian(raw) => raw.len() / 4,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn at(&self, i: usize) -> u32 {
        match self {
            IdList::Decoded(s) => s[i],
            IdList::BigEndian(raw) => {
                u32::from_be_bytes([raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]])
            }
        }
    }

    /// As [`gallop`]: the first index `>= from` whose id is `>= target`, or `len`.
    #[inline]
    fn gallop(&self, from: usize, target: u32) -> usize {
        let n = self.len();
        let (mut lo, mut probe, mut step) = (from, from, 1usize);
        while probe < n && self.at(probe) < target {
            lo = probe + 1;
            probe = lo + step;
            step <<= 1;
        }
        let mut hi = probe.min(n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.at(mid) < target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// The smallest id present in every list (`None` for no list). A leapfrog: each list in
/// turn skips (galloping) to the current candidate; a list that overshoots makes its id the
/// candidate, and the candidate is the answer once every list holds it. It stops at the
/// first common id, so checking whether a label value's series meet a selection costs a few
/// probes when they do, whatever the lists' lengths.
pub fn first_common(lists: &[IdList<'_>]) -> Option<u32> {
    let mut order: Vec<IdList<'_>> = lists.to_vec();
    // The shortest list proposes the candidates: its ids are the fewest to try.
    order.sort_unstable_by_key(IdList::len);
    let first = order.first()?;
    if first.is_empty() {
        return None;
    }
    let k = order.len();
    let mut pos = vec![0usize; k];
    let mut candidate = first.at(0);
    // Lists known to hold `candidate` at their position, counted back from the last change.
    let mut agree = 1;
    let mut i = 0;
    while agree < k {
        i = (i + 1) % k;
        let l = &order[i];
        let p = l.gallop(pos[i], candidate);
        if p == l.len() {
            return None;
        }
        pos[i] = p;
        let x = l.at(p);
        if x == candidate {
            agree += 1;
        } else {
            candidate = x;
            agree = 1;
        }
    }
    Some(candidate)
}

/// Ids present in any list.
pub fn union(lists: &[&[u32]]) -> Vec<u32> {
    let lists: Vec<&[u32]> = lists.iter().copied().filter(|l| !l.is_empty()).collect();
    match lists.as_slice() {
        [] => return Vec::new(),
        [a] => return a.to_vec(),
        [a, b] => return union2(a, b),
        _ => {}
    }
    let total: usize = lists.iter().map(|l| l.len()).sum();
    let lo = lists.iter().map(|l| l[0]).min().unwrap_or(0);
    let hi = lists.iter().map(|l| l[l.len() - 1]).max().unwrap_or(0);
    let words = ((hi - lo) as usize >> 6) + 1;
    if words <= total {
        union_bitmap(&lists, lo, words, total)
    } else {
        union_heap(&lists, total)
    }
}

fn union2(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        out.push(x.min(y));
        i += (x <= y) as usize;
        j += (y <= x) as usize;
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Dense unions (e.g. all values of `job`): one bit per id in the covered range, so the
/// cost is linear in the input and the range, whatever the number of lists.
fn union_bitmap(lists: &[&[u32]], lo: u32, words: usize, total: usize) -> Vec<u32> {
    let mut bits = vec![0u64; words];
    for l in lists {
        for &x in *l {
            let d = (x - lo) as usize;
            bits[d >> 6] |= 1 << (d & 63);
        }
    }
    let mut out = Vec::with_capacity(total);
    for (w, &word) in bits.iter().enumerate() {
        let mut word = word;
        let base = lo + ((w as u32) << 6);
        while word != 0 {
            out.push(base + word.trailing_zeros());
            word &= word - 1;
        }
    }
    out
}

/// Sparse unions: a k-way merge through a min-heap of list heads.
fn union_heap(lists: &[&[u32]], total: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(total);
    let mut heap: BinaryHeap<Reverse<(u32, u32)>> = lists
        .iter()
        .enumerate()
        .map(|(i, l)| Reverse((l[0], i as u32)))
        .collect();
    let mut next = vec![1usize; lists.len()];
    while let Some(mut top) = heap.peek_mut() {
        let Reverse((x, i)) = *top;
        if out.last() != Some(&x) {
            out.push(x);
        }
        let l = lists[i as usize];
        let pos = &mut next[i as usize];
        if *pos < l.len() {
            *top = Reverse((l[*pos], i));
            *pos += 1;
        } else {
            std::collections::binary_heap::PeekMut::pop(top);
        }
    }
    out
}

/// Ids of `a` not in `b`.
pub fn difference(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = a.to_vec();
    let len = difference_in_place(&mut out, b);
    out.truncate(len);
    out
}

/// Removes from `a` the ids in `b`, compacting the kept ids to the front; returns how many
/// were kept (the caller truncates). In place so the head can drop garbage-collected
/// series from its lists without reallocating them.
pub fn difference_in_place(a: &mut [u32], b: &[u32]) -> usize {
    if b.is_empty() {
        return a.len();
    }
    if a.len() >= b.len().saturating_mul(GALLOP_RATIO) {
        // Few removals from a long list: skip to each one and move the runs between.
        let (mut w, mut r) = (0, 0);
        for &y in b {
            let p = gallop(a, r, y);
            a.copy_within(r..p, w);
            w += p - r;
            r = p;
            if r == a.len() {
                break;
            }
            if a[r] == y {
                r += 1;
            }
        }
        a.copy_within(r.., w);
        w + (a.len() - r)
    } else {
        let skip = b.len() >= a.len().saturating_mul(GALLOP_RATIO);
        let (mut w, mut j) = (0, 0);
        for r in 0..a.len() {
            let x = a[r];
            if skip {
                j = gallop(b, j, x);
            } else {
                while j < b.len() && b[j] < x {
                    j += 1;
                }
            }
            if j < b.len() && b[j] == x {
                j += 1;
                continue;
            }
            a[w] = x;
            w += 1;
        }
        w
    }
}

/// The first index `>= from` whose id is `>= target` (or `s.len()`), found by doubling
/// steps then a binary search, so skipping `n` ids costs `O(log n)`.
#[inline]
fn gallop(s: &[u32], from: usize, target: u32) -> usize {
    let (mut base, mut probe, mut step) = (from, from, 1usize);
    while probe < s.len() && s[probe] < target {
        base = probe + 1;
        probe = base + step;
        step <<= 1;
    }
    let end = probe.min(s.len());
    base + s[base..end].partition_point(|&x| x < target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn small_cases() {
        assert_eq!(intersect(&[]), Vec::<u32>::new());
        assert_eq!(intersect(&[&[1, 2, 3]]), [1, 2, 3]);
        assert_eq!(
            intersect(&[&[1, 2, 3, 5], &[2, 3, 4, 5], &[0, 3, 5]]),
            [3, 5]
        );
        assert_eq!(intersect(&[&[1, 2], &[]]), Vec::<u32>::new());
        assert_eq!(union(&[]), Vec::<u32>::new());
        assert_eq!(union(&[&[1, 4], &[2, 4], &[0, 9]]), [0, 1, 2, 4, 9]);
        assert_eq!(union(&[&[1, 4], &[], &[4]]), [1, 4]);
        assert_eq!(difference(&[1, 2, 3, 4], &[0, 2, 4, 6]), [1, 3]);
        assert!(intersects(&[1, 5, 9], &[2, 9]));
        assert!(!intersects(&[1, 5, 9], &[2, 10]));
        assert!(!intersects(&[], &[2, 10]));
    }

    #[test]
    fn extremes_of_the_id_space() {
        let a = [0, u32::MAX - 1, u32::MAX];
        assert_eq!(
            union(&[&a, &[5], &[u32::MAX]]),
            [0, 5, u32::MAX - 1, u32::MAX]
        );
        assert_eq!(intersect(&[&a, &[u32::MAX]]), [u32::MAX]);
        assert_eq!(difference(&a, &[u32::MAX]), [0, u32::MAX - 1]);
    }

    #[test]
    fn galloping_paths() {
        let long: Vec<u32> = (0..100_000).map(|i| i * 3).collect();
        let short = [3u32, 4, 299_997, 300_000];
        assert_eq!(intersect(&[&long, &short]), [3, 299_997]);
        assert_eq!(difference(&short, &long), [4, 300_000]);
        let d = difference(&long, &short);
        assert_eq!(d.len(), long.len() - 2);
        assert!(!d.contains(&3) && !d.contains(&299_997) && d.contains(&6));
        let mut v = long.clone();
        retain_common(&mut v, &short);
        assert_eq!(v, [3, 299_997]);
    }

    fn list() -> impl Strategy<Value = Vec<u32>> {
        prop_oneof![
            proptest::collection::btree_set(0u32..64, 0..8),
            proptest::collection::btree_set(0u32..3000, 0..1500),
            proptest::collection::btree_set(any::<u32>(), 0..50),
        ]
        .prop_map(|s| s.into_iter().collect())
    }

    fn set(l: &[u32]) -> BTreeSet<u32> {
        l.iter().copied().collect()
    }

    proptest! {
        #[test]
        fn against_btreeset(lists in proptest::collection::vec(list(), 0..6)) {
            let refs: Vec<&[u32]> = lists.iter().map(|l| l.as_slice()).collect();
            let sets: Vec<BTreeSet<u32>> = lists.iter().map(|l| set(l)).collect();

            let want_union: BTreeSet<u32> = sets.iter().flatten().copied().collect();
            prop_assert_eq!(union(&refs), want_union.into_iter().collect::<Vec<_>>());

            let want_inter: Vec<u32> = match sets.split_first() {
                None => vec![],
                Some((f, rest)) => f.iter().copied().filter(|x| rest.iter().all(|s| s.contains(x))).collect(),
            };
            prop_assert_eq!(intersect(&refs), want_inter.clone());
            // Every other list in its index-file form: both kinds mix in one leapfrog.
            let raws: Vec<Vec<u8>> = lists
                .iter()
                .map(|l| l.iter().flat_map(|x| x.to_be_bytes()).collect())
                .collect();
            let mixed: Vec<IdList<'_>> = lists
                .iter()
                .zip(&raws)
                .enumerate()
                .map(|(i, (l, r))| if i % 2 == 0 { IdList::Decoded(l) } else { IdList::BigEndian(r) })
                .collect();
            prop_assert_eq!(first_common(&mixed), want_inter.first().copied());

            if let [a, b, ..] = lists.as_slice() {
                let want: Vec<u32> = set(a).difference(&set(b)).copied().collect();
                prop_assert_eq!(difference(a, b), want);
                prop_assert_eq!(intersects(a, b), set(a).intersection(&set(b)).next().is_some());
                let raw: Vec<u8> = a.iter().flat_map(|x| x.to_be_bytes()).collect();
                prop_assert_eq!(
                    first_common(&[IdList::BigEndian(&raw), IdList::Decoded(b)]).is_some(),
                    intersects(a, b)
                );
                let mut c = a.clone();
                retain_common(&mut c, b);
                prop_assert_eq!(c, set(a).intersection(&set(b)).copied().collect::<Vec<_>>());
            }
        }
    }
}
