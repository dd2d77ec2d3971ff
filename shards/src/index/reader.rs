//! Reads a block's `index` file (format v2, layout in `index::writer`) through an mmap.
//!
//! Opening reads only the TOC, the symbol table (to find each symbol's offset) and the
//! postings offset table (each label value's position and its postings list's offset);
//! series entries and postings lists are decoded on demand from the mapping, so a block
//! costs about 8 bytes of memory per symbol and 16 per label pair, not its file size.
//! (Prometheus keeps only every 32nd entry of both; this keeps them all, simpler and fast.)
//!
//! Every offset and length read from the file is checked against the file's size before it
//! is used, and every section's CRC32C is verified where it is read: a damaged index is a
//! typed `Corrupt` error naming the file, never a panic, never a read past the mapping
//! (which would be a SIGBUS). Blocks are immutable, so the mapping never shrinks under us.
//!
//! `select` implements Prometheus's `PostingsForMatchers` with the same semantics as the
//! head's `MemPostings::select` (absent label = "", negative matchers subtract, no
//! matchers select nothing); a test holds the two to the same answers.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::Mmap;

use crate::block::BlockError;
use crate::encoding::{crc32c, Decbuf, DecodeError};
use crate::index::matcher::{MatchType, Matcher};
use crate::index::postings::{difference_in_place, first_common, intersect, union, IdList};
use crate::index::writer::{ChunkMeta, Toc, INDEX_VERSION_2, MAGIC_INDEX, TOC_LEN};
use crate::labels::{Label, Labels};

/// The file's bytes: an mmap, or (tests, empty files) an owned buffer.
enum Bytes {
    Map(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// One value of a label name: where its string is and where its postings list is.
#[derive(Debug, Clone, Copy)]
struct ValueEntry {
    value_off: u64,
    postings_off: u64,
}

pub struct IndexReader {
    path: PathBuf,
    b: Bytes,
    toc: Toc,
    /// File offset of each symbol's uvarint length, by symbol ref.
    symbols: Vec<u64>,
    /// Label names (sorted), each with the range of its values (sorted) in `entries`; the
    /// all-postings key apart.
    names: Vec<(String, Range<usize>)>,
    entries: Vec<ValueEntry>,
    all_postings_off: Option<u64>,
    /// One bit per entry of `entries`, then one for the all-postings list: set once that
    /// postings list's checksum has been verified. The file never changes, so a list is
    /// checked once, not on every request (Prometheus checks none on reads).
    verified: Vec<AtomicU64>,
}

impl IndexReader {
    pub fn open(path: &Path) -> Result<IndexReader, BlockError> {
        let f = std::fs::File::open(path).map_err(BlockError::io("open", path))?;
        let len = f.metadata().map_err(BlockError::io("stat", path))?.len();
        let b = if len == 0 {
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: block files are never modified once renamed into place; all reads are
            // bounds-checked against the length mapped here.
            Bytes::Map(unsafe { Mmap::map(&f) }.map_err(BlockError::io("mmap", path))?)
        };
        Self::from_bytes(path, b)
    }

    /// Parses an index held in memory; `path` names it in errors.
    pub fn from_vec(path: &Path, b: Vec<u8>) -> Result<IndexReader, BlockError> {
        Self::from_bytes(path, Bytes::Owned(b))
    }

    fn from_bytes(path: &Path, b: Bytes) -> Result<IndexReader, BlockError> {
        let mut r = IndexReader {
            path: path.to_path_buf(),
            b,
            toc: Toc::default(),
            symbols: Vec::new(),
            names: Vec::new(),
            entries: Vec::new(),
            all_postings_off: None,
            verified: Vec::new(),
        };
        r.read_header_and_toc()?;
        r.read_symbols()?;
        r.read_postings_table()?;
        Ok(r)
    }

    fn corrupt(&self, reason: impl Into<String>) -> BlockError {
        BlockError::Corrupt {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn dec_err(&self, what: &str, e: DecodeError) -> BlockError {
        self.corrupt(format!("{what}: {e}"))
    }

    fn read_header_and_toc(&mut self) -> Result<(), BlockError> {
        let b = &self.b[..];
        if b.len() < 5 + TOC_LEN {
            return Err(self.corrupt(format!("{} bytes, too short for an index", b.len())));
        }
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if magic != MAGIC_INDEX {
            return Err(self.corrupt(format!("bad magic {magic:#010x}")));
        }
        if b[4] != INDEX_VERSION_2 {
            return Err(self.corrupt(format!(
                "index format version {} is not supported (only 2)",
                b[4]
            )));
        }
        let toc = &b[b.len() - TOC_LEN..];
        let (body, crc) = toc.split_at(TOC_LEN - 4);
        if crc32c(body).to_be_bytes() != crc {
            return Err(self.corrupt("TOC checksum mismatch"));
        }
        let mut d = Decbuf::new(body);
        let mut next = || d.be_u64().unwrap_or(0);
        let t = Toc {
            symbols: next(),
            series: next(),
            label_indices: next(),
            label_indices_table: next(),
            postings: next(),
            postings_table: next(),
        };
        let end = (b.len() - TOC_LEN) as u64;
        for (name, off) in [
            ("symbols", t.symbols),
            ("postings offset table", t.postings_table),
        ] {
            if off < 5 || off >= end {
                return Err(self.corrupt(format!("TOC: {name} offset {off} outside the file")));
            }
        }
        self.toc = t;
        Ok(())
    }

    /// The body of a `len u32 | body | crc` section at `off`, CRC checked.
    fn section(&self, off: u64, what: &str) -> Result<&[u8], BlockError> {
        let (body, crc) = self.section_parts(off, what)?;
        if crc32c(body).to_be_bytes() != crc {
            return Err(self.corrupt(format!("{what} at {off}: checksum mismatch")));
        }
        Ok(body)
    }

    /// As `section`, its checksum not verified (the caller verified it before).
    fn section_unchecked(&self, off: u64, what: &str) -> Result<&[u8], BlockError> {
        self.section_parts(off, what).map(|(body, _)| body)
    }

    /// The body and the stored checksum of the section at `off`, bounds checked.
    fn section_parts(&self, off: u64, what: &str) -> Result<(&[u8], &[u8]), BlockError> {
        let b = &self.b[..];
        let start =
            usize::try_from(off).map_err(|_| self.corrupt(format!("{what}: bad offset")))?;
        let len_bytes = b
            .get(start..start.saturating_add(4))
            .ok_or_else(|| self.corrupt(format!("{what} at {off}: length outside the file")))?;
        let len =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        let body_start = start + 4;
        let body = b
            .get(body_start..body_start.saturating_add(len))
            .ok_or_else(|| self.corrupt(format!("{what} at {off}: {len} bytes past the file")))?;
        let crc = b
            .get(body_start + len..body_start + len + 4)
            .ok_or_else(|| self.corrupt(format!("{what} at {off}: checksum past the file")))?;
        Ok((body, crc))
    }

    fn read_symbols(&mut self) -> Result<(), BlockError> {
        let body = self.section(self.toc.symbols, "symbol table")?;
        let base = self.toc.symbols + 4;
        let mut d = Decbuf::new(body);
        let count = d.be_u32().map_err(|e| self.dec_err("symbol table", e))?;
        // Each symbol takes at least a byte: a count beyond that is corrupt, not a reason to
        // allocate gigabytes.
        if count as usize > body.len() {
            return Err(self.corrupt(format!("symbol table: count {count} too large")));
        }
        let mut offs = Vec::with_capacity(count as usize);
        let mut prev: Option<&[u8]> = None;
        for _ in 0..count {
            offs.push(base + (body.len() - d.remaining()) as u64);
            let s = d
                .uvarint_bytes()
                .map_err(|e| self.dec_err("symbol table", e))?;
            if prev.is_some_and(|p| p >= s) {
                return Err(self.corrupt("symbol table: symbols not sorted"));
            }
            prev = Some(s);
        }
        self.symbols = offs;
        Ok(())
    }

    fn read_postings_table(&mut self) -> Result<(), BlockError> {
        let body = self.section(self.toc.postings_table, "postings offset table")?;
        let base = self.toc.postings_table + 4;
        let what = "postings offset table";
        let mut d = Decbuf::new(body);
        let count = d.be_u32().map_err(|e| self.dec_err(what, e))?;
        if count as usize > body.len() {
            return Err(self.corrupt(format!("{what}: count {count} too large")));
        }
        let mut names: Vec<(String, Range<usize>)> = Vec::new();
        let mut entries = Vec::new();
        let mut all = None;
        for _ in 0..count {
            let keys = d.uvarint().map_err(|e| self.dec_err(what, e))?;
            if keys != 2 {
                return Err(self.corrupt(format!("{what}: key count {keys}, want 2")));
            }
            let name = d.uvarint_str().map_err(|e| self.dec_err(what, e))?;
            let value_off = base + (body.len() - d.remaining()) as u64;
            let value = d.uvarint_bytes().map_err(|e| self.dec_err(what, e))?;
            let postings_off = d.uvarint().map_err(|e| self.dec_err(what, e))?;
            if postings_off >= self.b.len() as u64 {
                return Err(self.corrupt(format!(
                    "{what}: postings offset {postings_off} past the file"
                )));
            }
            if name.is_empty() && value.is_empty() {
                all = Some(postings_off);
                continue;
            }
            let e = ValueEntry {
                value_off,
                postings_off,
            };
            let id = entries.len();
            entries.push(e);
            match names.last_mut() {
                Some((n, values)) if n == name => values.end = id + 1,
                Some((n, _)) if n.as_str() > name => {
                    return Err(self.corrupt(format!("{what}: names not sorted")));
                }
                _ => names.push((name.to_owned(), id..id + 1)),
            }
        }
        self.verified = (0..(entries.len() + 1).div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect();
        self.names = names;
        self.entries = entries;
        self.all_postings_off = all;
        Ok(())
    }

    /// A length-prefixed string at a file offset.
    #[inline]
    fn string_at(&self, off: u64) -> Result<&str, BlockError> {
        let start = usize::try_from(off).unwrap_or(usize::MAX);
        // Nearly every label string is shorter than 128 bytes: a one-byte length.
        if let Some(&len) = self.b.get(start).filter(|&&len| len < 0x80) {
            let end = start + 1 + usize::from(len);
            if let Some(s) = self.b.get(start + 1..end) {
                if let Ok(s) = std::str::from_utf8(s) {
                    return Ok(s);
                }
            }
        }
        let rest = self
            .b
            .get(start..)
            .ok_or_else(|| self.corrupt(format!("string at {off} outside the file")))?;
        Decbuf::new(rest)
            .uvarint_str()
            .map_err(|e| self.dec_err(&format!("string at {off}"), e))
    }

    /// The symbol with reference `r`.
    pub fn symbol(&self, r: u64) -> Result<&str, BlockError> {
        let off = usize::try_from(r)
            .ok()
            .and_then(|i| self.symbols.get(i))
            .ok_or_else(|| self.corrupt(format!("symbol ref {r} out of range")))?;
        self.string_at(*off)
    }

    pub fn toc(&self) -> Toc {
        self.toc
    }

    pub fn size(&self) -> u64 {
        self.b.len() as u64
    }

    /// The entries of a list from `postings_bytes`, which must ascend.
    fn decode_postings(&self, raw: &[u8]) -> Result<Vec<u32>, BlockError> {
        let out: Vec<u32> = raw
            .chunks_exact(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if out.windows(2).any(|w| w[0] >= w[1]) {
            // `raw` lies in the file, after the section's length and the list's count.
            let at = (raw.as_ptr() as usize).wrapping_sub(self.b.as_ptr() as usize + 8);
            return Err(self.corrupt(format!("postings list at {at}: not ascending")));
        }
        Ok(out)
    }

    /// Every series ref in the block.
    pub fn all_postings(&self) -> Result<Vec<u32>, BlockError> {
        match self.all_postings_off {
            Some(off) => {
                let raw = self.verified_postings(self.entries.len(), off)?;
                self.decode_postings(raw)
            }
            None => Ok(Vec::new()),
        }
    }

    /// The postings list of entry `id` (an index into `entries`), in the file.
    fn value_postings(&self, id: usize) -> Result<&[u8], BlockError> {
        self.verified_postings(id, self.entries[id].postings_off)
    }

    /// `postings_bytes(off)` for the list whose bit in `verified` is `id`, its checksum
    /// verified on the first read only.
    fn verified_postings(&self, id: usize, off: u64) -> Result<&[u8], BlockError> {
        let (word, bit) = (&self.verified[id / 64], 1u64 << (id % 64));
        if word.load(Ordering::Relaxed) & bit != 0 {
            return self.postings_unchecked(off);
        }
        let raw = self.postings_bytes(off)?;
        word.fetch_or(bit, Ordering::Relaxed);
        Ok(raw)
    }

    /// The entries (ids into `entries`) of the values of label `name`.
    fn values_of(&self, name: &str) -> Range<usize> {
        self.names
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .map_or(0..0, |i| self.names[i].1.clone())
    }

    /// The series with `name=value`.
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<u32>, BlockError> {
        match self.find_value(self.values_of(name), value)? {
            Some(id) => self.decode_postings(self.value_postings(id)?),
            None => Ok(Vec::new()),
        }
    }

    /// The entry among `values` whose value is `value`.
    fn find_value(&self, values: Range<usize>, value: &str) -> Result<Option<usize>, BlockError> {
        let (mut lo, mut hi) = (values.start, values.end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.string_at(self.entries[mid].value_off)?.cmp(value) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(mid)),
            }
        }
        Ok(None)
    }

    /// Label names with at least one series, sorted.
    pub fn label_names(&self) -> Vec<&str> {
        self.names.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Values of label `name`, sorted, borrowed from the mapping.
    pub fn label_values(&self, name: &str) -> Result<Vec<&str>, BlockError> {
        self.label_values_iter(name).collect()
    }

    /// As `label_values`, one value at a time, for callers that merge them as they come.
    pub fn label_values_iter(
        &self,
        name: &str,
    ) -> impl ExactSizeIterator<Item = Result<&str, BlockError>> + '_ {
        self.entries[self.values_of(name)]
            .iter()
            .map(|e| self.string_at(e.value_off))
    }

    /// A little more than the bytes the values of label `name` hold together (all but the
    /// last), found without reading them: the span of their entries in the postings offset
    /// table, where each entry holds its value, the name and a few more bytes. For reserving
    /// room for a copy of the values.
    pub fn label_values_bytes_hint(&self, name: &str) -> usize {
        let values = &self.entries[self.values_of(name)];
        match (values.first(), values.last()) {
            (Some(first), Some(last)) => {
                usize::try_from(last.value_off.saturating_sub(first.value_off)).unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// Values of label `name` held by at least one of `refs` (ascending), sorted. As
    /// Prometheus does, each value's postings list is intersected with `refs` rather than
    /// every series decoded: value lists are short, series many. Lists are probed in place
    /// in the mapping, not decoded.
    pub fn label_values_for(&self, name: &str, refs: &[u32]) -> Result<Vec<&str>, BlockError> {
        let mut out = Vec::new();
        if refs.is_empty() {
            return Ok(out);
        }
        for id in self.values_of(name) {
            let lists = [
                IdList::BigEndian(self.value_postings(id)?),
                IdList::Decoded(refs),
            ];
            if first_common(&lists).is_some() {
                out.push(self.string_at(self.entries[id].value_off)?);
            }
        }
        Ok(out)
    }

    /// Label names of the series `refs`, sorted. Only the name references of each series
    /// are decoded (no string, no label set), and the walk stops once every name of the
    /// block has been seen, which for most selections is after the first few series.
    pub fn label_names_for(&self, refs: &[u32]) -> Result<Vec<&str>, BlockError> {
        let mut seen: Vec<u64> = Vec::new();
        let mut names = Vec::new();
        for &r in refs {
            names.clear();
            self.series_name_refs(r, &mut names)?;
            for n in &names {
                if !seen.contains(n) {
                    seen.push(*n);
                }
            }
            if seen.len() >= self.names.len() {
                break;
            }
        }
        // Symbols are sorted, so name refs in ascending order are names in order.
        seen.sort_unstable();
        seen.into_iter().map(|n| self.symbol(n)).collect()
    }

    /// The CRC-checked body of the entry of series `r` (its offset / 16).
    fn series_body(&self, r: u32) -> Result<&[u8], BlockError> {
        let off = u64::from(r) * 16;
        let start = usize::try_from(off).unwrap_or(usize::MAX);
        let rest = self
            .b
            .get(start..)
            .filter(|_| off >= self.toc.series)
            .ok_or_else(|| self.corrupt(format!("series {r}: offset {off} outside the file")))?;
        let mut d = Decbuf::new(rest);
        let body = d
            .uvarint_bytes()
            .map_err(|e| self.dec_err(&format!("series {r}"), e))?;
        let crc = d
            .bytes(4)
            .map_err(|e| self.dec_err(&format!("series {r}"), e))?;
        if crc32c(body).to_be_bytes() != crc {
            return Err(self.corrupt(format!("series {r}: checksum mismatch")));
        }
        Ok(body)
    }

    /// Pushes the symbol refs of series `r`'s label names onto `out`.
    fn series_name_refs(&self, r: u32, out: &mut Vec<u64>) -> Result<(), BlockError> {
        let body = self.series_body(r)?;
        let mut d = Decbuf::new(body);
        let de = |e| self.dec_err(&format!("series {r}"), e);
        let n = d.uvarint().map_err(de)?;
        if n as usize > body.len() {
            return Err(self.corrupt(format!("series {r}: {n} labels in {} bytes", body.len())));
        }
        for _ in 0..n {
            out.push(d.uvarint().map_err(de)?);
            d.uvarint().map_err(de)?;
        }
        Ok(())
    }

    /// The entries of the postings list at `off` (big-endian u32 each), CRC checked, not
    /// decoded.
    fn postings_bytes(&self, off: u64) -> Result<&[u8], BlockError> {
        let body = self.section(off, "postings list")?;
        self.postings_entries(off, body)
    }

    /// As `postings_bytes` for a list whose checksum was verified before: bounds still
    /// checked, the checksum not recomputed.
    fn postings_unchecked(&self, off: u64) -> Result<&[u8], BlockError> {
        let body = self.section_unchecked(off, "postings list")?;
        self.postings_entries(off, body)
    }

    /// The entries of a postings list's section body (count, then the entries).
    fn postings_entries<'b>(&self, off: u64, body: &'b [u8]) -> Result<&'b [u8], BlockError> {
        let n = body
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| self.corrupt(format!("postings list at {off}: no count")))?;
        if body.len() != 4 + 4 * n {
            return Err(self.corrupt(format!(
                "postings list at {off}: {n} entries in {} bytes",
                body.len()
            )));
        }
        Ok(&body[4..])
    }

    /// The labels and chunk metas of series `r` (its offset / 16), CRC checked.
    pub fn series(&self, r: u32, chunks: &mut Vec<ChunkMeta>) -> Result<Labels, BlockError> {
        chunks.clear();
        // The error context is formatted only on failure: this runs once per selected series.
        let what = || format!("series {r}");
        let body = self.series_body(r)?;
        let mut d = Decbuf::new(body);
        let de = |e| self.dec_err(&what(), e);
        let n = d.uvarint().map_err(de)?;
        if n as usize > body.len() {
            return Err(self.corrupt(format!("{}: {n} labels in {} bytes", what(), body.len())));
        }
        let mut labels = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let name = self.symbol(d.uvarint().map_err(de)?)?;
            let value = self.symbol(d.uvarint().map_err(de)?)?;
            labels.push(Label::new(name, value));
        }
        let labels = Labels::from_sorted_unchecked(labels)
            .map_err(|e| self.corrupt(format!("{}: labels: {e}", what())))?;
        let k = d.uvarint().map_err(de)?;
        if k as usize > body.len() {
            return Err(self.corrupt(format!("{}: {k} chunks in {} bytes", what(), body.len())));
        }
        let mut prev: Option<ChunkMeta> = None;
        for _ in 0..k {
            let c = match prev {
                None => {
                    let mint = d.varint().map_err(de)?;
                    let span = d.uvarint().map_err(de)?;
                    let chunk_ref = d.uvarint().map_err(de)?;
                    ChunkMeta {
                        min_time: mint,
                        max_time: mint.wrapping_add(span as i64),
                        chunk_ref,
                    }
                }
                Some(p) => {
                    let gap = d.uvarint().map_err(de)?;
                    let span = d.uvarint().map_err(de)?;
                    let delta = d.varint().map_err(de)?;
                    let mint = p.max_time.wrapping_add(gap as i64);
                    ChunkMeta {
                        min_time: mint,
                        max_time: mint.wrapping_add(span as i64),
                        chunk_ref: p.chunk_ref.wrapping_add(delta as u64),
                    }
                }
            };
            if c.max_time < c.min_time {
                return Err(self.corrupt(format!("{}: chunk with maxt before mint", what())));
            }
            chunks.push(c);
            prev = Some(c);
        }
        Ok(labels)
    }

    /// The series refs matching every matcher, ascending; see the module doc.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<u32>, BlockError> {
        let Selection::Lists {
            intersecting,
            subtracting,
        } = self.plan(matchers)?
        else {
            return Ok(Vec::new());
        };
        let decode_group = |g: &[&[u8]]| -> Result<Vec<Vec<u32>>, BlockError> {
            g.iter().map(|raw| self.decode_postings(raw)).collect()
        };
        let mut out = match intersecting.is_empty() {
            true => self.all_postings()?,
            false => {
                let mut unions: Vec<Vec<u32>> = Vec::with_capacity(intersecting.len());
                for g in &intersecting {
                    unions.push(union_of(decode_group(g)?));
                }
                let refs: Vec<&[u32]> = unions.iter().map(Vec::as_slice).collect();
                intersect(&refs)
            }
        };
        for g in &subtracting {
            if out.is_empty() {
                break;
            }
            let u = union_of(decode_group(g)?);
            let kept = difference_in_place(&mut out, &u);
            out.truncate(kept);
        }
        Ok(out)
    }

    /// What `matchers` select, as postings lists still in the file: Prometheus's
    /// `PostingsForMatchers` up to the point where lists would be read.
    fn plan(&self, matchers: &[Matcher]) -> Result<Selection<'_>, BlockError> {
        if matchers.is_empty() {
            return Ok(Selection::Nothing);
        }
        let must_be_set = |name: &str| {
            matchers
                .iter()
                .any(|m| m.name == name && !m.matches_empty())
        };
        let mut intersecting = Vec::new();
        let mut subtracting = Vec::new();
        for m in matchers {
            if m.positive_matches_all() {
                match m.kind {
                    MatchType::NotRegex => return Ok(Selection::Nothing),
                    _ => continue,
                }
            }
            if !m.matches_empty() || (must_be_set(&m.name) && !m.kind.is_negative()) {
                let lists = self.lists_where(m, true)?;
                if lists.is_empty() {
                    return Ok(Selection::Nothing);
                }
                intersecting.push(lists);
            } else {
                let lists = self.lists_where(m, false)?;
                if !lists.is_empty() {
                    subtracting.push(lists);
                }
            }
        }
        Ok(Selection::Lists {
            intersecting,
            subtracting,
        })
    }

    /// The postings lists (in the file) of the values of `m`'s label for which
    /// `m.matches(v) == want`.
    fn lists_where(&self, m: &Matcher, want: bool) -> Result<Vec<&[u8]>, BlockError> {
        let values = self.values_of(&m.name);
        if let Some(set) = m.set_matches() {
            if want != m.kind.is_negative() && set.len() <= values.len() {
                let mut out = Vec::new();
                for s in set {
                    if let Some(id) = self.find_value(values.clone(), s)? {
                        out.push(self.value_postings(id)?);
                    }
                }
                return Ok(out);
            }
        }
        let mut out = Vec::new();
        for id in values {
            if m.matches(self.string_at(self.entries[id].value_off)?) == want {
                out.push(self.value_postings(id)?);
            }
        }
        Ok(out)
    }

    /// Values of label `name` held by at least one series matching `matchers` (Prometheus's
    /// semantics, as `select`), sorted. As Prometheus does, each value's postings list is
    /// intersected with the selection rather than every selected series decoded. When every
    /// matcher selects one list (equality matchers, the usual `match[]`), nothing is decoded:
    /// each value's list and the matchers' lists are probed in place until a first common
    /// series, a few probes for a value that is there. Otherwise the selection is decoded
    /// once and each value's list probed against it.
    pub fn label_values_matching(
        &self,
        name: &str,
        matchers: &[Matcher],
    ) -> Result<Vec<&str>, BlockError> {
        let values = self.values_of(name);
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let mut lists: Vec<IdList<'_>> = match self.plan(matchers)? {
            Selection::Nothing => return Ok(Vec::new()),
            Selection::Lists {
                intersecting,
                subtracting,
            } if subtracting.is_empty()
                && !intersecting.is_empty()
                && intersecting.iter().all(|g| g.len() == 1) =>
            {
                intersecting
                    .iter()
                    .map(|g| IdList::BigEndian(g[0]))
                    .collect()
            }
            Selection::Lists { .. } => {
                let refs = self.select(matchers)?;
                return self.label_values_for(name, &refs);
            }
        };
        let value_list = lists.len();
        lists.push(IdList::Decoded(&[]));
        let mut out = Vec::new();
        for id in values {
            lists[value_list] = IdList::BigEndian(self.value_postings(id)?);
            if first_common(&lists).is_some() {
                out.push(self.string_at(self.entries[id].value_off)?);
            }
        }
        Ok(out)
    }
}

/// What a block's matchers come to before any postings list is decoded.
enum Selection<'a> {
    /// No series can match.
    Nothing,
    /// The series in every `intersecting` group (a group is the union of its lists; no
    /// group: every series of the block) and in no `subtracting` group.
    Lists {
        intersecting: Vec<Vec<&'a [u8]>>,
        subtracting: Vec<Vec<&'a [u8]>>,
    },
}

fn union_of(mut lists: Vec<Vec<u32>>) -> Vec<u32> {
    if lists.len() == 1 {
        return lists.pop().unwrap_or_default();
    }
    let refs: Vec<&[u32]> = lists.iter().map(Vec::as_slice).collect();
    union(&refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::writer::IndexWriter;

    /// Three series `{a="x"}`, `{a="y"}`, `{a="x", b="z"}` written with the real writer.
    fn index_bytes(dir: &Path) -> Vec<u8> {
        let path = dir.join("index");
        let mut w = IndexWriter::create(&path, ["a", "b", "x", "y", "z"]).unwrap();
        for pairs in [&[("a", "x")][..], &[("a", "x"), ("b", "z")], &[("a", "y")]] {
            w.add_series(&Labels::from_pairs(pairs.iter().copied()).unwrap(), &[])
                .unwrap();
        }
        w.close().unwrap();
        std::fs::read(&path).unwrap()
    }

    /// A list's checksum is skipped only once it was verified: a damaged list is an error on
    /// every read, and the others still read.
    #[test]
    fn a_damaged_postings_list_is_an_error_on_every_read() {
        let dir = tempfile::tempdir().unwrap();
        let good = IndexReader::from_vec(Path::new("index"), index_bytes(dir.path())).unwrap();
        let id = good.find_value(good.values_of("a"), "x").unwrap().unwrap();
        let off = good.entries[id].postings_off as usize;
        let mut bytes = index_bytes(dir.path());
        // The last byte of the list's first entry (after its length and count).
        bytes[off + 11] ^= 0x40;
        let r = IndexReader::from_vec(Path::new("index"), bytes).unwrap();
        for _ in 0..2 {
            assert!(r.postings("a", "x").unwrap_err().is_corrupt());
            let x = [Matcher::new(MatchType::Equal, "a", "x").unwrap()];
            assert!(r.label_values_matching("b", &x).is_err());
        }
        assert_eq!(r.postings("a", "y").unwrap().len(), 1);
        assert_eq!(r.postings("a", "y").unwrap().len(), 1);
        let y = [Matcher::new(MatchType::Equal, "a", "y").unwrap()];
        assert!(r.label_values_matching("b", &y).unwrap().is_empty());
        assert_eq!(good.postings("a", "x").unwrap().len(), 2);
        let x = [Matcher::new(MatchType::Equal, "a", "x").unwrap()];
        assert_eq!(good.label_values_matching("b", &x).unwrap(), ["z"]);
    }
}
