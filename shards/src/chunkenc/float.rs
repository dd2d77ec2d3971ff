//! A float chunk of either encoding the head writes: XOR, or XOR2 once a series has start
//! timestamps to keep. Callers that hold or read float chunks go through these two enums so
//! that the choice of encoding stays in one place (`FloatChunk::append`); this file never
//! decides whether start timestamps are stored at all (the head does).

use super::{ChunkError, Encoding, Xor2Chunk, Xor2Iterator, XorChunk, XorIterator};

/// XOR2 is boxed: it is rare (start-timestamp storage is off by default) and 24 bytes
/// larger, and every head series holds one of these inline.
#[derive(Debug, Clone)]
pub enum FloatChunk {
    Xor(XorChunk),
    Xor2(Box<Xor2Chunk>),
}

impl FloatChunk {
    /// Moves an XOR chunk's bytes to a new block of the thread's chunk heap
    /// (`chunk_heap::Renewal`); XOR2 chunks, rare, keep ordinary allocations.
    pub fn relocate(&mut self) {
        if let FloatChunk::Xor(c) = self {
            c.relocate();
        }
    }

    /// An empty chunk: XOR2 when its first sample has a start timestamp to keep.
    pub fn new(keeps_starts: bool) -> Self {
        if keeps_starts {
            FloatChunk::Xor2(Box::default())
        } else {
            FloatChunk::Xor(XorChunk::new())
        }
    }

    /// Restores a chunk of `encoding` from file bytes.
    pub fn from_bytes(encoding: Encoding, bytes: Vec<u8>) -> Result<Self, ChunkError> {
        match encoding {
            Encoding::Xor => XorChunk::from_bytes(bytes).map(FloatChunk::Xor),
            Encoding::Xor2 => Xor2Chunk::from_bytes(bytes).map(|c| FloatChunk::Xor2(Box::new(c))),
            other => Err(ChunkError::UnknownEncoding(other.as_u8())),
        }
    }

    /// Appends a sample with start timestamp `st` (0 = none). An XOR chunk given a start
    /// timestamp is re-encoded as XOR2 first (its earlier samples without one), so the start
    /// timestamp is never dropped; callers only pass one when it must be stored.
    pub fn append(&mut self, st: i64, t: i64, v: f64) {
        if st != 0 {
            if let FloatChunk::Xor(c) = self {
                let mut x2 = Xor2Chunk::new();
                for (t, v) in c.iter() {
                    x2.append(0, t, v);
                }
                *self = FloatChunk::Xor2(Box::new(x2));
            }
        }
        match self {
            FloatChunk::Xor(c) => c.append(t, v),
            FloatChunk::Xor2(c) => c.append(st, t, v),
        }
    }

    /// A word the chunk keeps for its owner and never encodes (the head's cut time); a
    /// chunk re-encoded by `append` starts again from 0.
    #[inline]
    pub fn owner_word(&self) -> u32 {
        match self {
            FloatChunk::Xor(c) => c.owner_word(),
            FloatChunk::Xor2(c) => c.owner_word(),
        }
    }

    #[inline]
    pub fn set_owner_word(&mut self, w: u32) {
        match self {
            FloatChunk::Xor(c) => c.set_owner_word(w),
            FloatChunk::Xor2(c) => c.set_owner_word(w),
        }
    }

    pub fn encoding(&self) -> Encoding {
        match self {
            FloatChunk::Xor(_) => Encoding::Xor,
            FloatChunk::Xor2(_) => Encoding::Xor2,
        }
    }

    pub fn num_samples(&self) -> usize {
        match self {
            FloatChunk::Xor(c) => c.num_samples(),
            FloatChunk::Xor2(c) => c.num_samples(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            FloatChunk::Xor(c) => c.bytes(),
            FloatChunk::Xor2(c) => c.bytes(),
        }
    }

    pub fn first_time(&self) -> Option<i64> {
        match self {
            FloatChunk::Xor(c) => c.first_time(),
            FloatChunk::Xor2(c) => c.first_time(),
        }
    }

    pub fn last_time(&self) -> Option<i64> {
        match self {
            FloatChunk::Xor(c) => c.last_time(),
            FloatChunk::Xor2(c) => c.last_time(),
        }
    }

    pub fn last_value(&self) -> Option<f64> {
        match self {
            FloatChunk::Xor(c) => c.last_value(),
            FloatChunk::Xor2(c) => c.last_value(),
        }
    }

    pub fn iter(&self) -> FloatIterator<'_> {
        FloatIterator::new(self.encoding(), self.bytes())
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            FloatChunk::Xor(c) => c.heap_bytes(),
            FloatChunk::Xor2(c) => c.heap_bytes(),
        }
    }
}

/// Decodes float chunk bytes of either encoding; yields `(t, v)`, and `st()` is the start
/// timestamp of the sample last yielded (always 0 for XOR).
#[derive(Clone)]
pub enum FloatIterator<'a> {
    Xor(XorIterator<'a>),
    Xor2(Xor2Iterator<'a>),
}

impl<'a> FloatIterator<'a> {
    /// An iterator for `encoding`; any encoding other than XOR2 is read as XOR, as the
    /// callers only hold float chunks.
    pub fn new(encoding: Encoding, bytes: &'a [u8]) -> Self {
        match encoding {
            Encoding::Xor2 => FloatIterator::Xor2(Xor2Iterator::new(bytes)),
            _ => FloatIterator::Xor(XorIterator::new(bytes)),
        }
    }

    #[inline]
    pub fn st(&self) -> i64 {
        match self {
            FloatIterator::Xor(_) => 0,
            FloatIterator::Xor2(it) => it.st(),
        }
    }

    pub fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        match self {
            FloatIterator::Xor(it) => it.seek(t),
            FloatIterator::Xor2(it) => it.seek(t),
        }
    }

    pub fn err(&self) -> Option<&ChunkError> {
        match self {
            FloatIterator::Xor(it) => it.err(),
            FloatIterator::Xor2(it) => it.err(),
        }
    }
}

impl Iterator for FloatIterator<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        match self {
            FloatIterator::Xor(it) => it.next(),
            FloatIterator::Xor2(it) => it.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_timestamp_turns_an_xor_chunk_into_xor2_keeping_its_samples() {
        let mut c = FloatChunk::new(false);
        c.append(0, 1000, 1.0);
        c.append(0, 2000, 2.0);
        assert_eq!(c.encoding(), Encoding::Xor);
        c.append(2500, 3000, 3.0);
        assert_eq!(c.encoding(), Encoding::Xor2);
        let mut it = c.iter();
        let mut got = Vec::new();
        while let Some((t, v)) = it.next() {
            got.push((it.st(), t, v));
        }
        assert_eq!(got, [(0, 1000, 1.0), (0, 2000, 2.0), (2500, 3000, 3.0)]);
    }
}
