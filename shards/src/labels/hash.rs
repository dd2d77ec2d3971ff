//! The series hash: which shard owns a series, and therefore where its data lives on disk.
//! It must never change. It is Prometheus's own `labels.Hash()`: xxHash64 with seed 0
//! over `name 0xff value 0xff` for each label in sorted order, so a label set hashes the
//! same here as in Prometheus.

use smallvec::SmallVec;
use xxhash_rust::xxh64::xxh64;

const SEP: u8 = 0xff;

/// Hashes label pairs, which must be given sorted by name. The bytes are gathered first and
/// hashed in one call: xxHash's streaming interface is several times slower on the short
/// pieces label sets are made of.
pub fn series_hash<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut b: SmallVec<[u8; 512]> = SmallVec::new();
    for (n, v) in pairs {
        b.extend_from_slice(n.as_bytes());
        b.push(SEP);
        b.extend_from_slice(v.as_bytes());
        b.push(SEP);
    }
    xxh64(&b, 0)
}

/// The shard that owns a series of hash `hash` among `n` shards.
#[inline]
pub fn shard_for(hash: u64, n: usize) -> usize {
    debug_assert!(n > 0);
    (hash % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;

    /// Pinned values: changing any of these moves data between shards on disk.
    #[test]
    fn pinned_hashes() {
        assert_eq!(series_hash([]), 0xef46_db37_51d8_e999);
        let up = Labels::from_pairs([
            ("__name__", "up"),
            ("job", "prometheus"),
            ("instance", "localhost:9090"),
        ])
        .unwrap();
        assert_eq!(up.hash(), PINNED_UP);
        assert_eq!(shard_for(up.hash(), 1), 0);
        assert_eq!(shard_for(up.hash(), 2), 1);
        assert_eq!(shard_for(up.hash(), 7), 3);
    }

    const PINNED_UP: u64 = 0xf28c_8afc_d224_e55f;
}
