//! The head's symbol table: every distinct label name and value string stored once, named
//! by a dense `SymbolId`, so a million series do not hold a million copies of "instance".
//! It owns the strings and the string <-> id mapping. It never forgets a string (ids stay
//! valid for the table's life; the head rebuilds the table when it truncates) and it never
//! reorders ids: they are assigned in first-seen order, not in string order.
//!
//! Memory is the point of this type: at 1M series with unique `instance` values it holds
//! ~1M strings. So the strings live back to back in one arena with one end offset each
//! (8 bytes of overhead per symbol, no per-string allocation), and the lookup table holds
//! only the 4-byte ids, comparing candidates against the arena.

use hashbrown::HashTable;

/// Dense id of an interned string, assigned from 0 in first-seen order.
pub type SymbolId = u32;

pub struct SymbolTable {
    /// All symbols' bytes back to back; symbol `i` spans `ends[i-1]..ends[i]`.
    arena: String,
    /// End offset of each symbol in `arena`. u64 rather than u32 so an arena past 4 GiB of
    /// label text (pathological, but made of scraped data) cannot wrap.
    ends: Vec<u64>,
    /// Ids keyed by the hash of their string; equality is checked against the arena.
    by_hash: HashTable<SymbolId>,
    hasher: ahash::RandomState,
}

impl Default for SymbolTable {
    fn default() -> Self {
        Self::new()
    }
}

impl SymbolTable {
    pub fn new() -> Self {
        SymbolTable {
            arena: String::new(),
            ends: Vec::new(),
            by_hash: HashTable::new(),
            hasher: ahash::RandomState::new(),
        }
    }

    /// The id of `s`, adding it if it is new.
    pub fn intern(&mut self, s: &str) -> SymbolId {
        let hash = self.hasher.hash_one(s);
        if let Some(&id) = self.by_hash.find(hash, |&id| self.get(id) == Some(s)) {
            return id;
        }
        // 4G distinct strings would need over 40 GB of table before reaching this point:
        // memory runs out long before, so this is an invariant, not an input check.
        let id = SymbolId::try_from(self.ends.len()).unwrap_or_else(|_| {
            panic!("symbol table overflow: more than {} symbols", SymbolId::MAX)
        });
        self.arena.push_str(s);
        self.ends.push(self.arena.len() as u64);
        let (arena, ends, hasher) = (&self.arena, &self.ends, &self.hasher);
        self.by_hash.insert_unique(hash, id, |&id| {
            hasher.hash_one(span(arena, ends, id).unwrap_or_default())
        });
        id
    }

    /// The id of `s` if it was interned.
    pub fn lookup(&self, s: &str) -> Option<SymbolId> {
        let hash = self.hasher.hash_one(s);
        self.by_hash
            .find(hash, |&id| self.get(id) == Some(s))
            .copied()
    }

    /// The string of `id`, if this table assigned it.
    #[inline]
    pub fn get(&self, id: SymbolId) -> Option<&str> {
        span(&self.arena, &self.ends, id)
    }

    /// The string of `id`. Ids only come from this table, so an unknown id is a bug in the
    /// caller; it resolves to "" (the absent value) rather than aborting the shard.
    #[inline]
    pub fn resolve(&self, id: SymbolId) -> &str {
        let s = self.get(id);
        debug_assert!(s.is_some(), "unknown symbol id {id}");
        s.unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes allocated on the heap by this table (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity()
            + self.ends.capacity() * std::mem::size_of::<u64>()
            + self.by_hash.allocation_size()
    }

    /// All symbols with their ids, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (SymbolId, &str)> + '_ {
        (0..self.ends.len() as SymbolId).map(|id| (id, self.resolve(id)))
    }
}

#[inline]
fn span<'a>(arena: &'a str, ends: &[u64], id: SymbolId) -> Option<&'a str> {
    let i = id as usize;
    let end = *ends.get(i)? as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    arena.get(start..end)
}

impl std::fmt::Debug for SymbolTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymbolTable")
            .field("len", &self.len())
            .field("heap_bytes", &self.heap_bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn interns_once() {
        let mut t = SymbolTable::new();
        let a = t.intern("instance");
        let b = t.intern("job");
        let e = t.intern("");
        assert_eq!(t.intern("instance"), a);
        assert_eq!((a, b, e), (0, 1, 2));
        assert_eq!(t.len(), 3);
        assert_eq!(t.resolve(a), "instance");
        assert_eq!(t.resolve(e), "");
        assert_eq!(t.lookup("job"), Some(b));
        assert_eq!(t.lookup("nope"), None);
        assert_eq!(t.get(3), None);
        let all: Vec<_> = t.iter().collect();
        assert_eq!(all, [(0, "instance"), (1, "job"), (2, "")]);
    }

    #[test]
    fn survives_growth_and_unicode() {
        let mut t = SymbolTable::new();
        let ids: Vec<_> = (0..10_000)
            .map(|i| t.intern(&format!("vålue-{i}")))
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let s = format!("vålue-{i}");
            assert_eq!(t.resolve(*id), s);
            assert_eq!(t.lookup(&s), Some(*id));
        }
        // Arena + offsets + 4-byte ids: well under 64 bytes a symbol at this size.
        assert!(t.heap_bytes() < 10_000 * 64, "{}", t.heap_bytes());
    }

    proptest! {
        #[test]
        fn model(strings in proptest::collection::vec("[a-c]{0,3}|\\PC{0,8}", 0..200)) {
            let mut t = SymbolTable::new();
            let mut model: HashMap<String, SymbolId> = HashMap::new();
            for s in &strings {
                let next = model.len() as SymbolId;
                let want = *model.entry(s.clone()).or_insert(next);
                prop_assert_eq!(t.intern(s), want);
            }
            prop_assert_eq!(t.len(), model.len());
            for (s, id) in &model {
                prop_assert_eq!(t.lookup(s), Some(*id));
                prop_assert_eq!(t.resolve(*id), s.as_str());
            }
        }
    }
}
