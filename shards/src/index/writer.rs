//! Writes a block's `index` file, format v2, as Prometheus 2.42 writes it (spec §5).
//!
//! ```text
//! magic u32 BE 0xBAAAD700 | version u8 = 2
//! symbols      len u32 | count u32 | count × (uvarint len, bytes) | CRC32C      (TOC[0])
//! series       each entry 16-byte aligned, ref = offset / 16:                (TOC[1])
//!                len uvarint | #labels uvarint | (name ref, value ref) uvarints
//!                | #chunks uvarint | chunk 0: mint varint, maxt-mint uvarint, ref uvarint
//!                | chunk i: mint-prev maxt uvarint, maxt-mint uvarint, ref delta varint
//!                | CRC32C of everything after len
//! label indices per name, 4-aligned: len u32 | 1 u32 | n u32 | n × value ref u32 | CRC
//!                                                                              (TOC[2])
//! postings     per (name, value), ("", "") = all series first, 4-aligned:   (TOC[4])
//!                len u32 | n u32 | n × series ref u32 | CRC
//! label offset table   len u32 | n u32 | n × (1, name, uvarint offset) | CRC (TOC[3])
//! postings offset table len u32 | n u32 | n × (2, name, value, uvarint offset) | CRC
//!                                                                              (TOC[5])
//! TOC          6 × u64 BE section offsets | CRC32C of the 48 bytes
//! ```
//!
//! Every `len` counts the bytes after it up to the CRC, and the CRC covers exactly those.
//! Symbol references are positions in the sorted symbol list. The label indices and the
//! label offset table are legacy (no reader since 2.x uses them) but Prometheus 2.42 still
//! writes them, and so does this writer, so that the files it writes match Prometheus's
//! byte for byte in layout and size.
//!
//! Input contract: symbols first (sorted, unique), then series in ascending label order
//! with their chunk metas sorted and non-overlapping; violations are refused, never written.
//! Postings are collected in memory while series are added; the file itself is streamed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::block::BlockError;
use crate::encoding::{crc32c, Encbuf};
use crate::labels::Labels;

pub const MAGIC_INDEX: u32 = 0xBAAA_D700;
pub const INDEX_VERSION_2: u8 = 2;
pub const HEADER_LEN: u64 = 5;
pub const TOC_LEN: usize = 6 * 8 + 4;

/// A chunk as the index knows it: closed time range and its ref in the chunk files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    pub min_time: i64,
    pub max_time: i64,
    pub chunk_ref: u64,
}

/// Section offsets, the last 52 bytes of the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_indices_table: u64,
    pub postings: u64,
    pub postings_table: u64,
}

impl Toc {
    pub fn encode(&self) -> [u8; TOC_LEN] {
        let mut b = Vec::with_capacity(TOC_LEN);
        let mut e = Encbuf::new(&mut b);
        for v in [
            self.symbols,
            self.series,
            self.label_indices,
            self.label_indices_table,
            self.postings,
            self.postings_table,
        ] {
            e.put_be_u64(v);
        }
        let crc = crc32c(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        let mut out = [0u8; TOC_LEN];
        out.copy_from_slice(&b);
        out
    }
}

pub struct IndexWriter {
    path: PathBuf,
    f: BufWriter<File>,
    pos: u64,
    toc: Toc,
    symbol_refs: HashMap<String, u32, ahash::RandomState>,
    /// (name ref, value ref) -> series refs, ascending.
    postings: HashMap<(u32, u32), Vec<u32>, ahash::RandomState>,
    all: Vec<u32>,
    last: Option<Labels>,
    buf: Vec<u8>,
    body: Vec<u8>,
}

impl IndexWriter {
    /// Creates the file and writes the header and symbol table. `symbols` must be sorted
    /// byte-wise and unique, and hold every label name and value of the series to come.
    pub fn create<'s>(
        path: &Path,
        symbols: impl IntoIterator<Item = &'s str>,
    ) -> Result<Self, BlockError> {
        let f = File::create(path).map_err(BlockError::io("create", path))?;
        let mut w = IndexWriter {
            path: path.to_path_buf(),
            f: BufWriter::with_capacity(1 << 20, f),
            pos: 0,
            toc: Toc::default(),
            symbol_refs: HashMap::default(),
            postings: HashMap::default(),
            all: Vec::new(),
            last: None,
            buf: Vec::new(),
            body: Vec::new(),
        };
        let mut header = Vec::new();
        Encbuf::new(&mut header).put_be_u32(MAGIC_INDEX);
        header.push(INDEX_VERSION_2);
        w.write(&header)?;
        w.write_symbols(symbols)?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<(), BlockError> {
        self.f
            .write_all(b)
            .map_err(BlockError::io("write", &self.path))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self, align: u64) -> Result<(), BlockError> {
        let n = (align - self.pos % align) % align;
        self.write(&[0u8; 16][..n as usize])
    }

    fn write_symbols<'s>(
        &mut self,
        symbols: impl IntoIterator<Item = &'s str>,
    ) -> Result<(), BlockError> {
        self.toc.symbols = self.pos;
        let mut body = Vec::new();
        let mut e = Encbuf::new(&mut body);
        e.put_be_u32(0); // count, set below
        let mut prev: Option<&str> = None;
        let mut count = 0u32;
        for s in symbols {
            if prev.is_some_and(|p| p >= s) {
                return Err(BlockError::InvalidInput(format!(
                    "index symbols not sorted or not unique at {s:?}"
                )));
            }
            prev = Some(s);
            e.put_uvarint_str(s);
            self.symbol_refs.insert(s.to_owned(), count);
            count += 1;
        }
        body[..4].copy_from_slice(&count.to_be_bytes());
        self.write_section(&body)?;
        self.toc.series = self.pos;
        Ok(())
    }

    /// `len u32 | body | CRC32C(body)`.
    fn write_section(&mut self, body: &[u8]) -> Result<(), BlockError> {
        let len = u32::try_from(body.len())
            .map_err(|_| BlockError::InvalidInput("index section larger than 4 GiB".into()))?;
        self.write(&len.to_be_bytes())?;
        self.write(body)?;
        self.write(&crc32c(body).to_be_bytes())
    }

    fn symbol(&self, s: &str) -> Result<u32, BlockError> {
        self.symbol_refs
            .get(s)
            .copied()
            .ok_or_else(|| BlockError::InvalidInput(format!("{s:?} is not in the index symbols")))
    }

    /// Adds the next series; returns its ref (its offset / 16).
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<u32, BlockError> {
        if self.last.as_ref().is_some_and(|l| l >= labels) {
            return Err(BlockError::InvalidInput(format!(
                "series {labels} added out of order"
            )));
        }
        self.pad(16)?;
        let series_ref = u32::try_from(self.pos / 16)
            .map_err(|_| BlockError::InvalidInput("index larger than 64 GiB".into()))?;
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        let mut e = Encbuf::new(&mut body);
        e.put_uvarint(labels.len() as u64);
        for l in labels {
            let (n, v) = (self.symbol(&l.name)?, self.symbol(&l.value)?);
            e.put_uvarint(u64::from(n));
            e.put_uvarint(u64::from(v));
            self.postings.entry((n, v)).or_default().push(series_ref);
        }
        e.put_uvarint(chunks.len() as u64);
        let mut prev: Option<&ChunkMeta> = None;
        for c in chunks {
            if c.max_time < c.min_time {
                return Err(BlockError::InvalidInput(format!(
                    "series {labels}: chunk maxt {} before mint {}",
                    c.max_time, c.min_time
                )));
            }
            match prev {
                None => {
                    e.put_varint(c.min_time);
                    e.put_uvarint(c.max_time.wrapping_sub(c.min_time) as u64);
                    e.put_uvarint(c.chunk_ref);
                }
                Some(p) => {
                    if c.min_time <= p.max_time || c.chunk_ref <= p.chunk_ref {
                        return Err(BlockError::InvalidInput(format!(
                            "series {labels}: chunks overlap or are out of order at {}",
                            c.min_time
                        )));
                    }
                    e.put_uvarint(c.min_time.wrapping_sub(p.max_time) as u64);
                    e.put_uvarint(c.max_time.wrapping_sub(c.min_time) as u64);
                    e.put_varint(c.chunk_ref.wrapping_sub(p.chunk_ref) as i64);
                }
            }
            prev = Some(c);
        }
        let mut out = std::mem::take(&mut self.buf);
        out.clear();
        Encbuf::new(&mut out).put_uvarint(body.len() as u64);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32c(&body).to_be_bytes());
        self.write(&out)?;
        self.buf = out;
        self.body = body;
        self.all.push(series_ref);
        self.last = Some(labels.clone());
        Ok(series_ref)
    }

    /// Writes the label indices, postings, both offset tables and the TOC, fsyncs, and
    /// returns the file's size.
    pub fn close(mut self) -> Result<u64, BlockError> {
        let mut by_name: Vec<((u32, u32), Vec<u32>)> =
            std::mem::take(&mut self.postings).into_iter().collect();
        by_name.sort_unstable_by_key(|(k, _)| *k);
        let symbols: Vec<&str> = {
            let mut v: Vec<(&str, u32)> = self
                .symbol_refs
                .iter()
                .map(|(s, &r)| (s.as_str(), r))
                .collect();
            v.sort_unstable_by_key(|&(_, r)| r);
            v.into_iter().map(|(s, _)| s).collect()
        };
        let symbols: Vec<String> = symbols.into_iter().map(str::to_owned).collect();
        let sym = |r: u32| symbols[r as usize].as_str();

        // Label indices: the values of each name, in order.
        self.toc.label_indices = self.pos;
        let mut label_index_offsets: Vec<(u32, u64)> = Vec::new();
        let mut i = 0;
        while i < by_name.len() {
            let name = by_name[i].0 .0;
            let mut j = i;
            let mut body = Vec::new();
            let mut e = Encbuf::new(&mut body);
            e.put_be_u32(1);
            let n = by_name[i..].iter().take_while(|(k, _)| k.0 == name).count();
            e.put_be_u32(n as u32);
            while j < by_name.len() && by_name[j].0 .0 == name {
                e.put_be_u32(by_name[j].0 .1);
                j += 1;
            }
            self.pad(4)?;
            label_index_offsets.push((name, self.pos));
            self.write_section(&body)?;
            i = j;
        }

        // Postings: all series first, then every pair.
        self.toc.postings = self.pos;
        let mut postings_offsets: Vec<(&str, &str, u64)> = Vec::new();
        let all = std::mem::take(&mut self.all);
        self.pad(4)?;
        postings_offsets.push(("", "", self.pos));
        self.write_postings(&all)?;
        for ((n, v), list) in &by_name {
            self.pad(4)?;
            postings_offsets.push((sym(*n), sym(*v), self.pos));
            self.write_postings(list)?;
        }

        // Label offset table (legacy).
        self.toc.label_indices_table = self.pos;
        let mut body = Vec::new();
        let mut e = Encbuf::new(&mut body);
        e.put_be_u32(label_index_offsets.len() as u32);
        for &(name, off) in &label_index_offsets {
            e.put_uvarint(1);
            e.put_uvarint_str(sym(name));
            e.put_uvarint(off);
        }
        self.write_section(&body)?;

        // Postings offset table.
        self.toc.postings_table = self.pos;
        let mut body = Vec::new();
        let mut e = Encbuf::new(&mut body);
        e.put_be_u32(postings_offsets.len() as u32);
        for &(n, v, off) in &postings_offsets {
            e.put_uvarint(2);
            e.put_uvarint_str(n);
            e.put_uvarint_str(v);
            e.put_uvarint(off);
        }
        self.write_section(&body)?;

        let toc = self.toc.encode();
        self.write(&toc)?;
        let path = self.path.clone();
        let f = self
            .f
            .into_inner()
            .map_err(|e| BlockError::io("write", &path)(e.into_error()))?;
        f.sync_all().map_err(BlockError::io("fsync", &path))?;
        Ok(self.pos)
    }

    fn write_postings(&mut self, list: &[u32]) -> Result<(), BlockError> {
        let mut body = std::mem::take(&mut self.buf);
        body.clear();
        let mut e = Encbuf::new(&mut body);
        e.put_be_u32(list.len() as u32);
        for &r in list {
            e.put_be_u32(r);
        }
        self.write_section(&body)?;
        self.buf = body;
        Ok(())
    }
}
