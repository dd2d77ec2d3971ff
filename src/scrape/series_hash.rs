//! The identity of a scraped series in its target's scrape cache: a 128-bit hash of the raw
//! series bytes of an exposition line (name and label set exactly as the target wrote them),
//! which the cache keeps instead of the bytes. It owns the choice of hash and the argument
//! that equal hashes may be taken for equal bytes; it never decides what a series is (the
//! parser and the cache do).
//!
//! Why a collision can be ignored. xxh3-128 behaves, for inputs not chosen to collide, like
//! a random 128-bit function. Only series of the same target are ever compared (each target
//! has its own cache), so with n series live in one target's cache the chance that any two
//! share a hash is at most n²/2¹²⁹: for 10⁶ series a target, 10¹²/6.8·10³⁸ ≈ 1.5·10⁻²⁷. A
//! line looked up while its series is not cached collides with one of the n entries with
//! probability n/2¹²⁸ ≈ 3·10⁻³³; a server creating 10⁶ series a second for a century
//! (3·10¹⁵ lookups) stays below 10⁻¹⁷.
//!
//! What one would do: the samples of the later series would be stored under the earlier
//! one's labels (the later series never created), or dropped if relabeling drops the earlier
//! one, until one of the two leaves the target's cache. Only that target's own series are
//! involved, and a target can already write any value under any of its series (and, with
//! `honor_labels`, any series at all), so even an exporter crafting collisions gains nothing
//! it did not have. That is why the hash is not seeded per process: a random seed cost 46
//! instructions a cached sample (530 against 484, `scrape_append_instructions`).

use xxhash_rust::xxh3::xxh3_128;

/// The hash of a series' bytes, as two words so that an entry holding it is 8-aligned
/// (`u128` would align it, and pad it, to 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeriesHash([u64; 2]);

impl SeriesHash {
    /// Distributed like the rest of the hash: what the cache's hash table files it under.
    #[inline(always)]
    pub fn short(self) -> u64 {
        self.0[0]
    }
}

/// A series the parser may expect on the next sample line (`Parser::next_expecting`): the
/// length and hash of the bytes of a series it accepted before. `len` 0 expects nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownSeries {
    pub len: usize,
    pub hash: SeriesHash,
}

impl KnownSeries {
    pub const NONE: KnownSeries = KnownSeries {
        len: 0,
        hash: SeriesHash([0, 0]),
    };

    pub fn of(series: &[u8]) -> Self {
        KnownSeries {
            len: series.len(),
            hash: series_hash(series),
        }
    }

    /// Whether `series` (of length `len`) is the known series.
    #[inline(always)]
    pub fn is(&self, series: &[u8]) -> bool {
        series_hash(series) == self.hash
    }
}

/// The hash of `series`, the same for equal bytes in every process.
#[inline(always)]
pub fn series_hash(series: &[u8]) -> SeriesHash {
    let h = xxh3_128(series);
    SeriesHash([h as u64, (h >> 64) as u64])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bytes_equal_hashes_and_near_misses_differ() {
        let a = br#"node_cpu_seconds_total{cpu="0",mode="idle"}"#;
        let elsewhere = a.to_vec();
        assert_eq!(series_hash(a), series_hash(&elsewhere));
        let mut seen = std::collections::HashSet::new();
        // Every one-byte change and every prefix of a line: all distinct.
        for i in 0..a.len() {
            let mut b = a.to_vec();
            b[i] ^= 1;
            assert!(seen.insert(series_hash(&b)));
            assert!(seen.insert(series_hash(&a[..i])));
        }
        assert!(seen.insert(series_hash(a)));
    }
}
