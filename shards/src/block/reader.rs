//! An open block: its meta, its index and chunk files mapped, its tombstones, and reading
//! series and samples out of it.
//!
//! `Block::open` reads `meta.json` and `tombstones` and maps `index` and `chunks/*`; it reads
//! nothing else up front (see `index::reader`). Samples are decoded chunk by chunk, within a
//! closed time range, with the block's tombstones applied. Anything damaged is
//! `BlockError::Corrupt` naming the file; this file never deletes or repairs a block.
//!
//! `open_all` is the start-up listing of a shard directory: it removes leftovers of block
//! writes and deletions that a crash interrupted, opens every block, and reports the ones
//! it could not open instead of failing (they stay on disk, untouched).

use std::path::{Path, PathBuf};

use crate::chunkenc::{Encoding, XorIterator};
use crate::index::matcher::Matcher;
use crate::index::reader::IndexReader;
use crate::index::writer::ChunkMeta;
use crate::labels::Labels;
use crate::tombstones::{is_deleted, Interval, Tombstones};

use super::chunk_reader::ChunkReader;
use super::meta::BlockMeta;
use super::ulid::Ulid;
use super::{BlockError, TMP_FOR_CREATION_SUFFIX, TMP_FOR_DELETION_SUFFIX};

/// Series with their samples, in label order.
pub type SeriesDump = Vec<(Labels, Vec<(i64, f64)>)>;

pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
    tombstones: Tombstones,
    /// Bytes of `meta.json` and `tombstones`, counted in `size` as Prometheus counts them
    /// for size-based retention.
    small_files: u64,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .finish()
    }
}

impl Block {
    pub fn open(dir: &Path) -> Result<Block, BlockError> {
        let meta = BlockMeta::read(dir)?;
        let index = IndexReader::open(&dir.join("index"))?;
        let chunks = ChunkReader::open(&dir.join("chunks"))?;
        let tombstones = Tombstones::read(dir)?;
        let small_files = ["meta.json", "tombstones"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum();
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
            tombstones,
            small_files,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn index(&self) -> &IndexReader {
        &self.index
    }

    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    /// Adds deleted intervals (Prometheus's `Block.Delete`): the merged tombstones file
    /// and `meta.json`'s `numTombstones` are rewritten (each through a temporary file and
    /// a rename), then the block reads with them applied.
    pub fn add_tombstones(&mut self, stones: &Tombstones) -> Result<(), BlockError> {
        if stones.is_empty() {
            return Ok(());
        }
        let mut merged = self.tombstones.clone();
        for (r, ivs) in stones.iter() {
            for &iv in ivs {
                merged.add(r, iv);
            }
        }
        let mut meta = self.meta.clone();
        meta.stats.num_tombstones = merged.num_intervals();
        let tombstones_bytes = merged.write(&self.dir)?;
        meta.write(&self.dir)?;
        let meta_bytes = std::fs::metadata(self.dir.join("meta.json")).map_or(0, |m| m.len());
        self.small_files = tombstones_bytes + meta_bytes;
        self.tombstones = merged;
        self.meta = meta;
        Ok(())
    }

    /// Bytes on disk: index, chunk files, meta.json and tombstones (Prometheus's
    /// `Block.Size`).
    pub fn size(&self) -> u64 {
        self.index.size() + self.chunks.size() + self.small_files
    }

    /// Refs of the series matching every matcher (Prometheus's semantics), ascending.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<u32>, BlockError> {
        self.index.select(matchers)
    }

    /// Labels and chunk metas of series `r`.
    pub fn series(&self, r: u32, chunks: &mut Vec<ChunkMeta>) -> Result<Labels, BlockError> {
        self.index.series(r, chunks)
    }

    pub fn chunk(&self, chunk_ref: u64) -> Result<(Encoding, &[u8]), BlockError> {
        self.chunks.chunk(chunk_ref)
    }

    /// The samples of series `r` (whose chunk metas `chunks` came from `series`) with
    /// `mint <= t <= maxt`, oldest first, tombstones applied.
    pub fn samples<'a>(
        &'a self,
        r: u32,
        chunks: &'a [ChunkMeta],
        mint: i64,
        maxt: i64,
    ) -> Result<BlockSamples<'a>, BlockError> {
        // Chunks in range are looked up as the iteration reaches them (a query reads one or
        // two per series: a list of them would be an allocation per series), but checked
        // here, so that an unreadable chunk fails the call as before.
        for c in chunks {
            if c.max_time >= mint && c.min_time <= maxt {
                self.xor_chunk(r, c.chunk_ref)?;
            }
        }
        Ok(BlockSamples {
            block: self,
            series: r,
            chunks,
            next_chunk: 0,
            cur: None,
            mint,
            maxt,
            deleted: self.tombstones.get(u64::from(r)),
        })
    }

    /// The bytes of an XOR chunk of series `r`; any other encoding is unsupported.
    fn xor_chunk(&self, r: u32, chunk_ref: u64) -> Result<&[u8], BlockError> {
        let (enc, bytes) = self.chunks.chunk(chunk_ref)?;
        if enc != Encoding::Xor {
            return Err(BlockError::Unsupported(format!(
                "{}: series {r} has a chunk of encoding {enc:?}; only XOR float chunks are read",
                self.dir.display()
            )));
        }
        Ok(bytes)
    }

    /// Every series with all its samples in `[mint, maxt]`, in label order: for tests and
    /// tools (dump), not for queries.
    pub fn dump(&self, mint: i64, maxt: i64) -> Result<SeriesDump, BlockError> {
        let mut out = Vec::new();
        let mut metas = Vec::new();
        for r in self.index.all_postings()? {
            let labels = self.series(r, &mut metas)?;
            let samples = self.samples(r, &metas, mint, maxt)?.collect_checked()?;
            if !samples.is_empty() {
                out.push((labels, samples));
            }
        }
        Ok(out)
    }
}

/// The samples of one series of a block, chunk after chunk.
pub struct BlockSamples<'a> {
    /// The block; its chunks path is formed only for an error (this is made once per
    /// selected series).
    block: &'a Block,
    series: u32,
    /// The series' chunk metas; those outside `[mint, maxt]` are passed over.
    chunks: &'a [ChunkMeta],
    next_chunk: usize,
    cur: Option<XorIterator<'a>>,
    mint: i64,
    maxt: i64,
    deleted: &'a [Interval],
}

impl BlockSamples<'_> {
    /// The next sample; undecodable chunk bytes are `Corrupt`, not an early end.
    pub fn next_checked(&mut self) -> Result<Option<(i64, f64)>, BlockError> {
        loop {
            if let Some(it) = self.cur.as_mut() {
                match it.next() {
                    Some((t, _)) if t < self.mint || is_deleted(t, self.deleted) => {}
                    Some((t, v)) if t <= self.maxt => return Ok(Some((t, v))),
                    Some(_) => {
                        self.cur = None;
                        self.next_chunk = self.chunks.len();
                    }
                    None => {
                        if let Some(e) = it.err() {
                            return Err(BlockError::Corrupt {
                                path: self.block.dir.join("chunks"),
                                reason: format!("undecodable chunk: {e}"),
                            });
                        }
                        self.cur = None;
                    }
                }
                continue;
            }
            let Some(c) = self.chunks.get(self.next_chunk) else {
                return Ok(None);
            };
            self.next_chunk += 1;
            if c.max_time < self.mint || c.min_time > self.maxt {
                continue;
            }
            self.cur = Some(XorIterator::new(
                self.block.xor_chunk(self.series, c.chunk_ref)?,
            ));
        }
    }

    pub fn collect_checked(mut self) -> Result<Vec<(i64, f64)>, BlockError> {
        let mut out = Vec::new();
        while let Some(s) = self.next_checked()? {
            out.push(s);
        }
        Ok(out)
    }
}

/// What `open_all` found in a shard directory.
#[derive(Debug, Default)]
pub struct OpenedBlocks {
    /// Sorted by min time, then ULID.
    pub blocks: Vec<Block>,
    /// Blocks that could not be opened: reported, skipped, left on disk.
    pub failed: Vec<(PathBuf, BlockError)>,
    /// Leftover `.tmp-for-creation` / `.tmp-for-deletion` directories removed.
    pub removed_leftovers: Vec<PathBuf>,
}

/// Opens every block directory (a ULID name) in `shard_dir`; see the module doc.
pub fn open_all(shard_dir: &Path) -> Result<OpenedBlocks, BlockError> {
    let mut out = OpenedBlocks::default();
    let entries = match std::fs::read_dir(shard_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(BlockError::io("list", shard_dir)(e)),
    };
    let mut dirs = Vec::new();
    for e in entries {
        let e = e.map_err(BlockError::io("list", shard_dir))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let leftover = [TMP_FOR_CREATION_SUFFIX, TMP_FOR_DELETION_SUFFIX, ".tmp"]
            .iter()
            .any(|s| name.strip_suffix(s).and_then(Ulid::parse).is_some());
        if leftover {
            std::fs::remove_dir_all(e.path()).map_err(BlockError::io("remove", &e.path()))?;
            out.removed_leftovers.push(e.path());
        } else if Ulid::parse(name).is_some() {
            dirs.push(e.path());
        }
    }
    dirs.sort();
    for d in dirs {
        match Block::open(&d) {
            Ok(b) => out.blocks.push(b),
            Err(e) => out.failed.push((d, e)),
        }
    }
    out.blocks
        .sort_by(|a, b| (a.meta.min_time, &a.meta.ulid).cmp(&(b.meta.min_time, &b.meta.ulid)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{write_block, BlockChunk, NewBlock};
    use crate::chunkenc::XorChunk;
    use crate::head::{AppendBatch, BatchSample, Head, HeadOptions, SeriesKey};
    use crate::index::MatchType;
    use proptest::prelude::*;

    /// Label sets of a small, varied population (missing labels, shared values).
    fn population() -> Vec<Labels> {
        let mut out = Vec::new();
        for i in 0..24 {
            let mut pairs = vec![
                (
                    "__name__",
                    if i % 3 == 0 {
                        "up"
                    } else {
                        "http_requests_total"
                    }
                    .to_string(),
                ),
                ("instance", format!("h{}", i % 5)),
            ];
            if i % 2 == 0 {
                pairs.push(("job", format!("j{}", i % 4)));
            }
            if i % 7 == 3 {
                pairs.push(("path", format!("/v{}/x", i % 3)));
            }
            pairs.push(("i", i.to_string()));
            out.push(Labels::from_pairs(pairs).unwrap());
        }
        out.sort();
        out
    }

    /// One chunk per series: samples at 0, 1000, ... with values from the series index.
    fn chunks_for(pop: &[Labels], n: i64) -> Vec<XorChunk> {
        pop.iter()
            .enumerate()
            .map(|(i, _)| {
                let mut c = XorChunk::new();
                for k in 0..n {
                    c.append(k * 1000, (i as i64 * 100 + k) as f64);
                }
                c
            })
            .collect()
    }

    fn write(dir: &Path, pop: &[Labels], chunks: &[XorChunk]) -> BlockMeta {
        let series: Vec<(Labels, Vec<BlockChunk<'_>>)> = pop
            .iter()
            .zip(chunks)
            .map(|(l, c)| (l.clone(), vec![BlockChunk::of_xor(c).unwrap()]))
            .collect();
        write_block(dir, NewBlock::level1(0, 1_000_000), &series).unwrap()
    }

    #[test]
    fn reads_back_what_was_written_with_tombstones_applied() {
        let dir = tempfile::tempdir().unwrap();
        let pop = population();
        let chunks = chunks_for(&pop, 50);
        let meta = write(dir.path(), &pop, &chunks);
        let opened = open_all(dir.path()).unwrap();
        assert!(opened.failed.is_empty());
        let b = &opened.blocks[0];
        assert_eq!(b.meta(), &meta);
        let dump = b.dump(i64::MIN, i64::MAX).unwrap();
        assert_eq!(dump.len(), pop.len());
        for ((l, s), (want_l, c)) in dump.iter().zip(pop.iter().zip(&chunks)) {
            assert_eq!(l, want_l);
            assert_eq!(s, &c.iter().collect::<Vec<_>>());
        }
        // A range inside the chunk.
        let r = b
            .select(&[Matcher::new(MatchType::Equal, "i", "3").unwrap()])
            .unwrap();
        let mut metas = Vec::new();
        b.series(r[0], &mut metas).unwrap();
        let got = b
            .samples(r[0], &metas, 10_000, 12_000)
            .unwrap()
            .collect_checked()
            .unwrap();
        assert_eq!(
            got.iter().map(|p| p.0).collect::<Vec<_>>(),
            [10_000, 11_000, 12_000]
        );

        // Tombstones written next to it are applied.
        let mut t = Tombstones::new();
        t.add(u64::from(r[0]), (5_000, 44_000));
        t.write(b.dir()).unwrap();
        let b = Block::open(b.dir()).unwrap();
        let got = b
            .samples(r[0], &metas, i64::MIN, i64::MAX)
            .unwrap()
            .collect_checked()
            .unwrap();
        let ts: Vec<i64> = got.iter().map(|p| p.0).collect();
        assert_eq!(
            ts,
            [0, 1000, 2000, 3000, 4000, 45_000, 46_000, 47_000, 48_000, 49_000]
        );
    }

    #[test]
    fn leftovers_are_removed_and_corrupt_blocks_reported_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let pop = population();
        let chunks = chunks_for(&pop, 3);
        let good = write(dir.path(), &pop, &chunks);
        let bad = write(dir.path(), &pop, &chunks);
        std::fs::write(dir.path().join(&bad.ulid).join("index"), b"garbage").unwrap();
        let leftover = dir
            .path()
            .join(format!("{}{TMP_FOR_CREATION_SUFFIX}", Ulid::new()));
        std::fs::create_dir(&leftover).unwrap();
        std::fs::create_dir(dir.path().join("wal")).unwrap();
        let opened = open_all(dir.path()).unwrap();
        assert_eq!(opened.blocks.len(), 1);
        assert_eq!(opened.blocks[0].meta().ulid, good.ulid);
        assert_eq!(opened.failed.len(), 1);
        assert!(opened.failed[0].1.is_corrupt(), "{}", opened.failed[0].1);
        assert!(opened.failed[0].1.to_string().contains("index"));
        assert!(dir.path().join(&bad.ulid).exists());
        assert!(!leftover.exists());
        assert!(dir.path().join("wal").exists());
    }

    /// The block's index and the head's postings answer every selector alike.
    #[test]
    fn select_agrees_with_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let pop = population();
        let chunks = chunks_for(&pop, 2);
        write(dir.path(), &pop, &chunks);
        let block = open_all(dir.path()).unwrap().blocks.pop().unwrap();
        let hdir = tempfile::tempdir().unwrap();
        let (mut head, _) = Head::open(hdir.path(), HeadOptions::default()).unwrap();
        let batch = AppendBatch {
            new_series: pop.clone(),
            samples: (0..pop.len())
                .map(|i| BatchSample {
                    series: SeriesKey::New(i as u32),
                    t: 0,
                    v: 1.0,
                })
                .collect(),
            start_timestamps: Vec::new(),
        };
        head.append_unlogged(&batch).unwrap();
        use MatchType::*;
        let cases: &[&[(MatchType, &str, &str)]] = &[
            &[(Equal, "__name__", "up")],
            &[(Equal, "job", "")],
            &[(NotEqual, "job", "j1")],
            &[(Regex, "job", "j1|j2")],
            &[(Regex, "job", "|j1")],
            &[(Regex, "job", ".*")],
            &[(Regex, "job", ".+")],
            &[(NotRegex, "job", ".*")],
            &[(NotRegex, "path", "/v1.*")],
            &[
                (Equal, "__name__", "http_requests_total"),
                (NotEqual, "instance", "h1"),
            ],
            &[(Regex, "instance", "h[0-2]"), (Equal, "path", "")],
            &[
                (Equal, "__name__", "http_requests_total"),
                (Equal, "instance", "h1"),
            ],
            &[
                (Equal, "instance", "h2"),
                (Equal, "job", "j2"),
                (Regex, "path", "/v.*"),
            ],
            &[(Equal, "nope", "")],
            &[(Equal, "nope", "x")],
            &[(NotEqual, "job", ""), (Regex, "job", "|j0")],
            &[],
        ];
        let mut metas = Vec::new();
        for case in cases {
            let ms: Vec<Matcher> = case
                .iter()
                .map(|&(k, n, v)| Matcher::new(k, n, v).unwrap())
                .collect();
            let mut from_head: Vec<Labels> = head
                .select(&ms)
                .into_iter()
                .map(|r| head.series_labels(r).unwrap())
                .collect();
            from_head.sort();
            let from_block: Vec<Labels> = block
                .select(&ms)
                .unwrap()
                .into_iter()
                .map(|r| block.series(r, &mut metas).unwrap())
                .collect();
            assert_eq!(from_block, from_head, "{case:?}");
            // Label values under the same matchers are those of the selected series, whether
            // the lists are probed in place or the selection is decoded first.
            for name in ["__name__", "instance", "job", "path", "nope"] {
                let mut want: Vec<&str> = from_block.iter().filter_map(|l| l.get(name)).collect();
                want.sort_unstable();
                want.dedup();
                let got = block.index().label_values_matching(name, &ms).unwrap();
                assert_eq!(got, want, "{name} {case:?}");
            }
        }
        assert_eq!(block.index().label_values("job").unwrap(), ["j0", "j2"]);
        assert_eq!(
            block.index().label_names(),
            ["__name__", "i", "instance", "job", "path"]
        );
    }

    /// Reads everything a (possibly damaged) block offers; must never panic.
    fn read_everything(dir: &Path) {
        let Ok(b) = Block::open(dir) else { return };
        let _ = b.index().label_values("job");
        let _ = b.select(&[Matcher::new(MatchType::Regex, "job", "j.*").unwrap()]);
        let _ = b.select(&[Matcher::new(MatchType::NotEqual, "job", "j1").unwrap()]);
        let Ok(all) = b.index().all_postings() else {
            return;
        };
        let mut metas = Vec::new();
        for r in all.into_iter().chain([0, 1, 7, u32::MAX]) {
            if b.series(r, &mut metas).is_ok() {
                if let Ok(s) = b.samples(r, &metas, i64::MIN, i64::MAX) {
                    let _ = s.collect_checked();
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn damaged_blocks_never_panic(
            file in 0usize..4,
            pos in any::<prop::sample::Index>(),
            xor in 1u8..=255,
            truncate in any::<bool>(),
            fix_crc in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let pop = population();
            let chunks = chunks_for(&pop, 20);
            let meta = write(dir.path(), &pop, &chunks);
            let bdir = dir.path().join(&meta.ulid);
            let path = bdir.join(["index", "chunks/000001", "tombstones", "meta.json"][file]);
            let mut b = std::fs::read(&path).unwrap();
            let i = pos.index(b.len());
            if truncate {
                b.truncate(i);
            } else {
                b[i] ^= xor;
                if fix_crc && file == 0 {
                    // Damage to the TOC that its checksum does not catch: the bad section
                    // offsets must be caught by the section readers.
                    let n = b.len();
                    let crc = crate::encoding::crc32c(&b[n - 52..n - 4]);
                    b[n - 4..].copy_from_slice(&crc.to_be_bytes());
                }
            }
            std::fs::write(&path, &b).unwrap();
            read_everything(&bdir);
        }
    }
}
