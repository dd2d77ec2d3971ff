//! `meta.json`: what a block holds (ULID, time range with an exclusive end, statistics) and
//! where it came from (compaction level, sources, parents). Layout, as Prometheus writes it:
//!
//! ```text
//! {
//!     "ulid": "01HZZZZZZZZZZZZZZZZZZZZZZX",
//!     "minTime": 1699999200000,          inclusive
//!     "maxTime": 1700006400000,          exclusive
//!     "stats": {"numSamples": 348, "numSeries": 3, "numChunks": 4},   zero values omitted
//!     "compaction": {"level": 1, "sources": ["01HZZZZZZZZZZZZZZZZZZZZZZX"]},
//!     "version": 1                       the meta format; readers refuse others
//! }
//! ```
//!
//! Pretty-printed with tabs, shown above as spaces (Go's `json.MarshalIndent(meta, "",
//! "\t")`), written to `meta.json.tmp`, fsynced and renamed. This file owns the format,
//! never the block's data.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{sync_dir, BlockError};

pub const META_FILENAME: &str = "meta.json";
/// The only meta format version there is.
pub const META_VERSION: u32 = 1;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    #[serde(rename = "numSamples", default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    #[serde(rename = "numSeries", default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    #[serde(rename = "numChunks", default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    #[serde(rename = "numTombstones", default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDesc {
    pub ulid: String,
    #[serde(rename = "minTime")]
    pub min_time: i64,
    #[serde(rename = "maxTime")]
    pub max_time: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    pub level: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deletable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub failed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub ulid: String,
    /// Inclusive.
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// Exclusive: the block covers `[min_time, max_time)`.
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    #[serde(default)]
    pub compaction: Compaction,
    pub version: u32,
}

impl BlockMeta {
    /// The pretty-printed form Prometheus writes.
    pub fn to_json(&self) -> Result<Vec<u8>, BlockError> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        self.serialize(&mut ser)
            .map_err(|e| BlockError::InvalidInput(format!("meta.json: {e}")))?;
        Ok(out)
    }

    /// Parses and checks a `meta.json`; `path` names the file in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<BlockMeta, BlockError> {
        let m: BlockMeta = serde_json::from_slice(bytes).map_err(|e| BlockError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if m.version != META_VERSION {
            return Err(BlockError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("unsupported meta.json version {}", m.version),
            });
        }
        Ok(m)
    }

    pub fn read(block_dir: &Path) -> Result<BlockMeta, BlockError> {
        let path = block_dir.join(META_FILENAME);
        let bytes = std::fs::read(&path).map_err(BlockError::io("read", &path))?;
        BlockMeta::parse(&bytes, &path)
    }

    /// Writes `meta.json` in `block_dir` through `meta.json.tmp`, fsynced, renamed.
    pub fn write(&self, block_dir: &Path) -> Result<(), BlockError> {
        let path = block_dir.join(META_FILENAME);
        let tmp = block_dir.join("meta.json.tmp");
        let json = self.to_json()?;
        let mut f = std::fs::File::create(&tmp).map_err(BlockError::io("create", &tmp))?;
        f.write_all(&json).map_err(BlockError::io("write", &tmp))?;
        f.sync_all().map_err(BlockError::io("fsync", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(BlockError::io("rename", &path))?;
        sync_dir(block_dir)
    }

    /// Whether the block holds samples of `[mint, maxt]` (closed).
    pub fn overlaps_closed(&self, mint: i64, maxt: i64) -> bool {
        crate::label_generation::block_overlaps(self.min_time, self.max_time, mint, maxt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_json() {
        let m = BlockMeta {
            ulid: "01HZZZZZZZZZZZZZZZZZZZZZZX".into(),
            min_time: 1_699_999_200_000,
            max_time: 1_700_006_400_000,
            stats: BlockStats {
                num_samples: 348,
                num_series: 3,
                num_chunks: 4,
                num_tombstones: 0,
            },
            compaction: Compaction {
                level: 1,
                sources: vec!["01HZZZZZZZZZZZZZZZZZZZZZZX".into()],
                ..Default::default()
            },
            version: 1,
        };
        let want =
            "{\n\t\"ulid\": \"01HZZZZZZZZZZZZZZZZZZZZZZX\",\n\t\"minTime\": 1699999200000,\n\t\
                    \"maxTime\": 1700006400000,\n\t\"stats\": {\n\t\t\"numSamples\": 348,\n\t\t\
                    \"numSeries\": 3,\n\t\t\"numChunks\": 4\n\t},\n\t\"compaction\": {\n\t\t\
                    \"level\": 1,\n\t\t\"sources\": [\n\t\t\t\"01HZZZZZZZZZZZZZZZZZZZZZZX\"\n\t\t\
                    ]\n\t},\n\t\"version\": 1\n}";
        assert_eq!(String::from_utf8(m.to_json().unwrap()).unwrap(), want);
        assert_eq!(
            BlockMeta::parse(want.as_bytes(), Path::new("m")).unwrap(),
            m
        );
        let bad = want.replace("\"version\": 1", "\"version\": 2");
        assert!(matches!(
            BlockMeta::parse(bad.as_bytes(), Path::new("m")),
            Err(BlockError::Corrupt { .. })
        ));
    }
}
