//! The identity of a scraped series in its target's scrape cache: a 128-bit word made of a
//! 116-bit hash of the raw series bytes of an exposition line (name and label set exactly as
//! the target wrote them) and, in the top 12 bits, their length (0 beyond 4,095 bytes). The
//! cache keeps it instead of the bytes, and the parser's hint (`KnownSeries`) reads the length
//! off it, so a cache entry needs no field of its own for it. It owns the choice of hash and
//! the argument that equal identities may be taken for equal bytes; it never decides what a
//! series is (the parser and the cache do).
//!
//! Why a collision can be ignored. xxh3-128 behaves, for inputs not chosen to collide, like
//! a random 128-bit function, so its low 116 bits like a random 116-bit one; series of
//! different lengths (up to 4,095 bytes) never share an identity at all. Only series of the
//! same target are ever compared (each target has its own cache), so with n series live in
//! one target's cache the chance that any two share an identity is at most n²/2¹¹⁷: for 10⁶
//! series a target, 10¹²/1.7·10³⁵ ≈ 6·10⁻²⁴. A line looked up while its series is not cached
//! collides with one of the n entries with probability n/2¹¹⁶ ≈ 1.2·10⁻²⁹; a server creating
//! 10⁶ series a second for a century (3·10¹⁵ lookups) stays below 10⁻¹³.
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

    /// The length of the series' bytes, 0 when longer than `LEN_MAX`.
    #[inline(always)]
    pub fn series_len(self) -> usize {
        (self.0[1] >> HASH_BITS_HIGH) as usize
    }
}

/// The longest series (in bytes) whose length its identity holds; a longer one is still
/// cached, only looked up the long way (the parser's hint needs the length).
pub const LEN_MAX: usize = (1 << LEN_BITS) - 1;
const LEN_BITS: u32 = 12;
/// Bits of hash in the high word, below the length.
const HASH_BITS_HIGH: u32 = 64 - LEN_BITS;

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

    /// Whether `series` (of length `len`, which its identity's length bits then hold
    /// already) is the known series: only the hash bits are compared, which spares the
    /// parser's hot path putting the length in.
    #[inline(always)]
    pub fn is(&self, series: &[u8]) -> bool {
        let h = xxh3_128(series);
        let [low, high] = self.hash.0;
        (h as u64 == low) & (((h >> 64) as u64 ^ high) << LEN_BITS == 0)
    }
}

/// The identity of `series`, the same for equal bytes in every process.
#[inline(always)]
pub fn series_hash(series: &[u8]) -> SeriesHash {
    let h = xxh3_128(series);
    let len = if series.len() <= LEN_MAX {
        series.len() as u64
    } else {
        0
    };
    let high = ((h >> 64) as u64 & (u64::MAX >> LEN_BITS)) | (len << HASH_BITS_HIGH);
    SeriesHash([h as u64, high])
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

    #[test]
    fn the_identity_holds_the_length_up_to_len_max() {
        for len in [0, 1, 77, LEN_MAX] {
            let series = vec![b'a'; len];
            assert_eq!(series_hash(&series).series_len(), len);
            assert_eq!(KnownSeries::of(&series).len, len);
        }
        let long = vec![b'a'; LEN_MAX + 1];
        assert_eq!(series_hash(&long).series_len(), 0);
        // The length takes the hash's top bits, not its low word (the table's hash).
        let h = xxh3_128(b"up");
        assert_eq!(series_hash(b"up").short(), h as u64);
        assert_eq!(
            series_hash(b"up").0[1] << LEN_BITS,
            ((h >> 64) as u64) << LEN_BITS
        );
    }
}
