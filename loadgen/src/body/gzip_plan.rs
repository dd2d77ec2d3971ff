//! gzip of a body whose bytes change only in its slots, with the compression work done once.
//!
//! A target's body is a fixed template in which only the value and `pod` slots change
//! between scrapes. Compressing it whole on every scrape (miniz_oxide or libdeflate at
//! level 1: 230–330 µs for 111 kB) cost loadgen as much CPU per sample as the fastest
//! server spent ingesting it. So the LZ77 parse is made once per template, every
//! back-reference copying only bytes that are the same in every version (equal constant
//! bytes, or the same byte of two slots that always hold the same value, like the `pod` of
//! one group's lines); a value's bytes are always literals. One dynamic Huffman code is
//! built from the parse and a sample version. A scrape then
//! only writes the planned tokens, reading the literals from the current body, plus a CRC:
//! the output is an ordinary single-block gzip member (RFC 1951/1952) of the current body,
//! with about the ratio of a real compressor's fast levels.
//!
//! This module knows nothing of the exposition formats: callers name the changing byte
//! ranges. It allocates only while planning; `encode` appends to a reused buffer.

use libdeflate_sys::libdeflate_crc32;

/// Fixed gzip header: magic, deflate, no flags, no mtime, no extra flags, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
const WINDOW: usize = 32 * 1024;
const MIN_MATCH: usize = 4;
const MAX_MATCH: usize = 258;
const HASH_BITS: u32 = 15;
const END_OF_BLOCK: usize = 256;
const LIT_LEN_SYMBOLS: usize = 286;
const DIST_SYMBOLS: usize = 30;
const MAX_CODE_BITS: u32 = 15;
const MAX_CODE_LENGTH_BITS: u32 = 7;
/// Order in which the code-length code's lengths are sent (RFC 1951 3.2.7).
const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// One step of the planned stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// `len` bytes of the current body from `start`, each as a literal.
    Literals { start: u32, len: u32 },
    /// A back-reference, already coded: length code and extra bits (at most 15 + 5), then
    /// distance code and extra bits (at most 15 + 13), each with its bit count.
    Match {
        length: u32,
        length_n: u8,
        distance: u32,
        distance_n: u8,
    },
}

/// A Huffman code as written: bit-reversed code (deflate sends codes MSB first into an
/// LSB-first stream) and its length.
#[derive(Debug, Clone, Copy, Default)]
struct Code {
    bits: u16,
    len: u8,
}

/// The plan for one template.
#[derive(Debug, Clone)]
pub struct GzipPlan {
    /// Level 0: stored blocks, no compression (still gzip for the scraper).
    stored: bool,
    body_len: usize,
    tokens: Vec<Token>,
    literal: [Code; 256],
    /// For a run of `k` (3..=258) bytes equal to the byte before them: the match
    /// (length `k`, distance 1) that repeats it, length part then distance part.
    runs: Vec<(Code32, Code32)>,
    end_of_block: Code,
    /// The block header (BFINAL, BTYPE, the code lengths), as bits.
    header: Vec<u8>,
    header_bits: u32,
}

impl GzipPlan {
    /// Plans the versions of `sample`, one of them. Bytes in the `changing` ranges
    /// `(start, length, class)` may differ from version to version; ranges of the same class
    /// always hold the same bytes as each other (a group's lines share its `pod` value), so
    /// one may copy another; all other bytes never change. `level` 1..=9 sets the match
    /// search's effort as zlib's levels do (2^level candidates a position; the greedy parse
    /// of level 1 is close to libdeflate's level 1); 0 stores the body uncompressed. The
    /// literals' code is fitted to `sample`'s bytes.
    pub fn new(
        sample: &[u8],
        changing: impl IntoIterator<Item = (usize, usize, u32)>,
        level: u32,
    ) -> GzipPlan {
        // What a byte is in every version: a constant (its value) or a class's byte.
        let mut label: Vec<u64> = sample.iter().map(|&b| u64::from(b)).collect();
        for (start, len, class) in changing {
            let end = (start + len).min(sample.len());
            for (offset, l) in label[start.min(end)..end].iter_mut().enumerate() {
                *l = 256 + (u64::from(class) << 32 | offset as u64);
            }
        }
        let (tokens, matches) = if level == 0 {
            (Vec::new(), Vec::new())
        } else {
            parse(&label, 1 << level.min(9))
        };

        // Every byte gets a literal code (a slot may hold any byte) and every length and
        // distance symbol a code, so the codes are complete whatever a version holds.
        let mut lit_freq = [1u32; LIT_LEN_SYMBOLS];
        let mut dist_freq = [1u32; DIST_SYMBOLS];
        for t in &tokens {
            if let Token::Literals { start, len } = *t {
                let (start, end) = (start as usize, (start + len) as usize);
                let mut i = start;
                while i < end {
                    match run_at(sample, i, end) {
                        Some(k) => {
                            lit_freq[257 + length_symbol(k)] += 1;
                            dist_freq[0] += 1;
                            i += k;
                        }
                        None => {
                            lit_freq[usize::from(sample[i])] += 1;
                            i += 1;
                        }
                    }
                }
            }
        }
        for &(len, dist) in &matches {
            lit_freq[257 + length_symbol(len)] += 1;
            dist_freq[distance_symbol(dist)] += 1;
        }
        let lit_lens = code_lengths(&lit_freq, MAX_CODE_BITS);
        let dist_lens = code_lengths(&dist_freq, MAX_CODE_BITS);
        let lit_codes = canonical(&lit_lens);
        let dist_codes = canonical(&dist_lens);

        let mut header = BitWriter::new(Vec::new());
        header.put(1, 1); // BFINAL
        header.put(2, 2); // BTYPE = dynamic Huffman
        write_code_lengths(&mut header, &lit_lens, &dist_lens);
        let header_bits = header.total_bits();
        let header = header.finish_partial();

        // Matches carry their codes from now on.
        let mut m = matches.iter();
        let tokens = tokens
            .into_iter()
            .map(|t| match t {
                Token::Match { .. } => {
                    let &(len, dist) = m.next().expect("one match per match token");
                    coded_match(len, dist, &lit_codes, &dist_codes)
                }
                lit => lit,
            })
            .collect();
        let mut literal = [Code::default(); 256];
        literal.copy_from_slice(&lit_codes[..256]);
        let runs = (0..=MAX_MATCH)
            .map(
                |k| match coded_match(k.max(3), 1, &lit_codes, &dist_codes) {
                    Token::Match {
                        length,
                        length_n,
                        distance,
                        distance_n,
                    } => ((length, length_n), (distance, distance_n)),
                    Token::Literals { .. } => unreachable!("coded_match codes a match"),
                },
            )
            .collect();
        GzipPlan {
            stored: level == 0,
            body_len: sample.len(),
            tokens,
            literal,
            runs,
            end_of_block: lit_codes[END_OF_BLOCK],
            header,
            header_bits,
        }
    }

    /// Appends one gzip member of `body` — a version of the planned template, same length,
    /// equal outside the changing ranges — to `out`. A body of another length is stored
    /// uncompressed instead, so the output always decodes to `body`.
    pub fn encode(&self, body: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&GZIP_HEADER);
        if self.stored || body.len() != self.body_len {
            store(body, out);
        } else {
            out.reserve(body.len() / 4 + self.header.len() + 64);
            let mut w = BitWriter::new(std::mem::take(out));
            w.put_bytes(&self.header, self.header_bits);
            for t in &self.tokens {
                match *t {
                    Token::Literals { start, len } => {
                        let (start, end) = (start as usize, (start + len) as usize);
                        let mut i = start;
                        while i < end {
                            if let Some(k) = run_at(body, i, end) {
                                let ((l, ln), (d, dn)) = self.runs[k];
                                w.put(u64::from(l), u32::from(ln));
                                w.put(u64::from(d), u32::from(dn));
                                i += k;
                            } else {
                                let c = self.literal[usize::from(body[i])];
                                w.put(u64::from(c.bits), u32::from(c.len));
                                i += 1;
                            }
                        }
                    }
                    Token::Match {
                        length,
                        length_n,
                        distance,
                        distance_n,
                    } => {
                        w.put(u64::from(length), u32::from(length_n));
                        w.put(u64::from(distance), u32::from(distance_n));
                    }
                }
            }
            let eob = self.end_of_block;
            w.put(u64::from(eob.bits), u32::from(eob.len));
            *out = w.finish();
        }
        // SAFETY: libdeflate_crc32 reads exactly `body.len()` bytes of `body`.
        let crc = unsafe { libdeflate_crc32(0, body.as_ptr().cast(), body.len()) };
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    }

    /// Share of the body sent as back-references, for the startup log.
    pub fn matched_share(&self) -> f64 {
        if self.stored {
            return 0.0;
        }
        let literal: u64 = self
            .tokens
            .iter()
            .map(|t| match t {
                Token::Literals { len, .. } => u64::from(*len),
                Token::Match { .. } => 0,
            })
            .sum();
        1.0 - literal as f64 / self.body_len.max(1) as f64
    }
}

/// A precoded bit string and its length.
type Code32 = (u32, u8);

/// The length of the run of bytes from `i` (before `end`, at most 258) equal to the byte
/// before `i`, when it is long enough (3) for a distance-1 match: the leading zeros of a
/// value slot, most often. Literals always leave the output equal to the body so far, so
/// the byte before `i` is the decoder's last output byte.
#[inline]
fn run_at(body: &[u8], i: usize, end: usize) -> Option<usize> {
    let prev = *body.get(i.checked_sub(1)?)?;
    if body[i] != prev {
        return None;
    }
    let limit = end.min(i + MAX_MATCH);
    let k = body[i..limit].iter().take_while(|&&b| b == prev).count();
    (k >= 3).then_some(k)
}

/// Stored blocks (BTYPE 00) of at most 65,535 bytes each.
fn store(body: &[u8], out: &mut Vec<u8>) {
    let mut chunks = body.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let n = chunk.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Greedy LZ77 over byte labels: a match copies only bytes whose labels are equal, so it
/// holds in every version. Tokens in body order (match tokens still uncoded) and the
/// (length, distance) of each match.
fn parse(t: &[u64], chain: usize) -> (Vec<Token>, Vec<(usize, usize)>) {
    let n = t.len();
    let hash = |p: usize| -> usize {
        let mut h = 0u64;
        for &l in &t[p..p + MIN_MATCH] {
            h = (h ^ l).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
        (h >> (64 - HASH_BITS)) as usize
    };
    let insertable = |p: usize| p + MIN_MATCH <= n;
    let mut head = vec![usize::MAX; 1 << HASH_BITS];
    let mut prev = vec![usize::MAX; n];
    let insert = |p: usize, head: &mut Vec<usize>, prev: &mut Vec<usize>| {
        if insertable(p) {
            let h = hash(p);
            prev[p] = head[h];
            head[h] = p;
        }
    };
    let mut tokens = Vec::new();
    let mut matches = Vec::new();
    let mut literal_start = 0;
    let mut p = 0;
    while p < n {
        let mut best = (0, 0);
        if insertable(p) {
            let mut cand = head[hash(p)];
            let mut tries = 0;
            while cand != usize::MAX && p - cand <= WINDOW && tries < chain && best.0 < MAX_MATCH {
                let mut len = 0;
                while len < MAX_MATCH && p + len < n && t[cand + len] == t[p + len] {
                    len += 1;
                }
                if len > best.0 {
                    best = (len, p - cand);
                }
                cand = prev[cand];
                tries += 1;
            }
        }
        if best.0 >= MIN_MATCH {
            if literal_start < p {
                tokens.push(literals(literal_start, p));
            }
            tokens.push(Token::Match {
                length: 0,
                length_n: 0,
                distance: 0,
                distance_n: 0,
            });
            matches.push(best);
            for q in p..p + best.0 {
                insert(q, &mut head, &mut prev);
            }
            p += best.0;
            literal_start = p;
        } else {
            insert(p, &mut head, &mut prev);
            p += 1;
        }
    }
    if literal_start < n {
        tokens.push(literals(literal_start, n));
    }
    (tokens, matches)
}

fn literals(start: usize, end: usize) -> Token {
    Token::Literals {
        start: start as u32,
        len: (end - start) as u32,
    }
}

fn length_symbol(len: usize) -> usize {
    LENGTH_BASE
        .iter()
        .rposition(|&b| usize::from(b) <= len)
        .unwrap_or(0)
}

fn distance_symbol(dist: usize) -> usize {
    DIST_BASE
        .iter()
        .rposition(|&b| usize::from(b) <= dist)
        .unwrap_or(0)
}

fn coded_match(len: usize, dist: usize, lit: &[Code], dist_codes: &[Code]) -> Token {
    let (ls, ds) = (length_symbol(len), distance_symbol(dist));
    let (lc, dc) = (lit[257 + ls], dist_codes[ds]);
    let length_extra = (len - usize::from(LENGTH_BASE[ls])) as u32;
    let distance_extra = (dist - usize::from(DIST_BASE[ds])) as u32;
    Token::Match {
        length: u32::from(lc.bits) | length_extra << lc.len,
        length_n: lc.len + LENGTH_EXTRA[ls],
        distance: u32::from(dc.bits) | distance_extra << dc.len,
        distance_n: dc.len + DIST_EXTRA[ds],
    }
}

/// Huffman code lengths for `freq` (every frequency ≥ 1), none longer than `limit`: when
/// the optimal code is too deep, frequencies are flattened and the code rebuilt, which keeps
/// it a complete prefix code.
fn code_lengths(freq: &[u32], limit: u32) -> Vec<u8> {
    let mut f: Vec<u64> = freq.iter().map(|&x| u64::from(x.max(1))).collect();
    loop {
        let lens = huffman_lengths(&f);
        if lens.iter().all(|&l| u32::from(l) <= limit) {
            return lens;
        }
        for x in &mut f {
            *x = (*x >> 1).max(1);
        }
    }
}

/// Optimal code lengths by repeatedly joining the two lightest trees (n ≥ 2).
fn huffman_lengths(freq: &[u64]) -> Vec<u8> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let n = freq.len();
    // Nodes 0..n are leaves; parents follow.
    let mut parent = vec![usize::MAX; 2 * n];
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = freq
        .iter()
        .enumerate()
        .map(|(i, &w)| Reverse((w, i)))
        .collect();
    let mut next = n;
    while heap.len() > 1 {
        let Reverse((wa, a)) = heap.pop().expect("two trees");
        let Reverse((wb, b)) = heap.pop().expect("two trees");
        parent[a] = next;
        parent[b] = next;
        heap.push(Reverse((wa + wb, next)));
        next += 1;
    }
    (0..n)
        .map(|mut i| {
            let mut depth = 0u8;
            while parent[i] != usize::MAX {
                i = parent[i];
                depth += 1;
            }
            depth
        })
        .collect()
}

/// Canonical codes for `lens` (RFC 1951 3.2.2), bit-reversed for the LSB-first stream.
fn canonical(lens: &[u8]) -> Vec<Code> {
    let max = usize::from(lens.iter().copied().max().unwrap_or(0));
    let mut count = vec![0u16; max + 1];
    for &l in lens {
        count[usize::from(l)] += 1;
    }
    count[0] = 0;
    let mut next = vec![0u16; max + 2];
    let mut code = 0u16;
    for bits in 1..=max {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    lens.iter()
        .map(|&l| {
            if l == 0 {
                return Code::default();
            }
            let c = next[usize::from(l)];
            next[usize::from(l)] += 1;
            Code {
                bits: c.reverse_bits() >> (16 - u32::from(l)),
                len: l,
            }
        })
        .collect()
}

/// HLIT, HDIST, HCLEN, the code-length code and every length, each as a plain code-length
/// symbol 0..15 (no run-length symbols: the header is written once per plan, and ~300
/// symbols at ~4 bits cost ~150 bytes a body).
fn write_code_lengths(w: &mut BitWriter, lit: &[u8], dist: &[u8]) {
    let all: Vec<u8> = lit.iter().chain(dist).copied().collect();
    let mut freq = [0u32; 19];
    for &l in &all {
        freq[usize::from(l)] += 1;
    }
    // Every symbol gets a code, so the code is complete; 16..18 (runs) are never sent.
    let cl_lens = code_lengths(&freq, MAX_CODE_LENGTH_BITS);
    let cl_codes = canonical(&cl_lens);
    w.put((lit.len() - 257) as u64, 5);
    w.put((dist.len() - 1) as u64, 5);
    w.put((19 - 4) as u64, 4);
    for &s in &CODE_LENGTH_ORDER {
        w.put(u64::from(cl_lens[s]), 3);
    }
    for &l in &all {
        let c = cl_codes[usize::from(l)];
        w.put(u64::from(c.bits), u32::from(c.len));
    }
}

/// An LSB-first bit stream appended to a byte vector.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
    written: u64,
}

impl BitWriter {
    fn new(out: Vec<u8>) -> BitWriter {
        BitWriter {
            out,
            acc: 0,
            n: 0,
            written: 0,
        }
    }

    /// Appends the low `k` bits of `v` (k ≤ 32, v has no higher bits set): fewer than 32
    /// bits wait in the accumulator, so 64 always hold them.
    #[inline(always)]
    fn put(&mut self, v: u64, k: u32) {
        self.acc |= v << self.n;
        self.n += k;
        if self.n >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
            self.written += 32;
        }
    }

    /// `bits` bits stored LSB first in `bytes`.
    fn put_bytes(&mut self, bytes: &[u8], bits: u32) {
        let mut left = bits;
        for &b in bytes {
            let k = left.min(8);
            self.put(u64::from(b) & ((1 << k) - 1), k);
            left -= k;
        }
    }

    fn total_bits(&self) -> u32 {
        (self.written + u64::from(self.n)) as u32
    }

    /// The bytes so far, the last one partial (padded with zeros).
    fn finish_partial(self) -> Vec<u8> {
        self.finish()
    }

    /// Flushes the bits, padding the last byte with zeros (the end of the deflate stream).
    fn finish(mut self) -> Vec<u8> {
        let bytes = self.n.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use proptest::prelude::*;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    fn lines(n: usize) -> (Vec<u8>, Vec<(usize, usize, u32)>) {
        let mut body = Vec::new();
        let mut slots = Vec::new();
        for i in 0..n {
            body.extend_from_slice(format!("metric_total{{code=\"{}\",pod=\"", i % 5).as_bytes());
            slots.push((body.len(), 8, (i / 3) as u32));
            body.extend_from_slice(b"00000000\"} ");
            slots.push((body.len(), 12, (n + i) as u32));
            body.extend_from_slice(b"000000000000\n");
        }
        (body, slots)
    }

    #[test]
    fn every_version_of_a_template_round_trips_and_compresses() {
        let (template, slots) = lines(2000);
        let mut body = template.clone();
        let mut plan = GzipPlan::new(&template, slots.iter().copied(), 1);
        let mut out = Vec::new();
        for version in 0..20u64 {
            // Slots of one class (a line's pod) always hold the same value.
            for &(at, w, class) in &slots {
                let v = (version * 7919 + u64::from(class) * 104_729) % 10u64.pow(w as u32);
                body[at..at + w].copy_from_slice(format!("{v:0w$}").as_bytes());
            }
            if version == 0 {
                // Planned on a version, so the literals' code fits the digits.
                plan = GzipPlan::new(&body, slots.iter().copied(), 1);
                assert!(plan.matched_share() > 0.5, "{}", plan.matched_share());
            }
            out.clear();
            plan.encode(&body, &mut out);
            assert_eq!(gunzip(&out), body);
            assert!(
                out.len() < body.len() / 4,
                "{} of {}",
                out.len(),
                body.len()
            );
        }
    }

    #[test]
    fn a_body_of_another_length_is_stored() {
        let (template, slots) = lines(10);
        let plan = GzipPlan::new(&template, slots, 1);
        for body in [&b""[..], b"short", &vec![7u8; 200_000]] {
            let mut out = b"x".to_vec();
            plan.encode(body, &mut out);
            assert_eq!(gunzip(&out[1..]), body);
        }
    }

    #[test]
    fn an_empty_template_round_trips() {
        let plan = GzipPlan::new(b"", [], 1);
        let mut out = Vec::new();
        plan.encode(b"", &mut out);
        assert_eq!(gunzip(&out), b"");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any template, any changing ranges, any bytes written into them: the member
        /// decodes to the body, and libdeflate (what promcore inflates with) agrees.
        #[test]
        fn any_version_decodes_to_itself(
            template in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'b'), Just(b'{'), any::<u8>()], 0..3000),
            ranges in proptest::collection::vec((0usize..3000, 0usize..20, 0u32..4), 0..40),
            fill in proptest::collection::vec(any::<u8>(), 1..64),
            level in 0u32..10,
        ) {
            let plan = GzipPlan::new(&template, ranges.iter().copied(), level);
            // A byte of a class at an offset is the same wherever that class is (a later
            // range overrides an earlier one, as in the plan).
            let mut body = template.clone();
            for &(at, len, class) in &ranges {
                let end = (at + len).min(body.len());
                for (j, b) in body[at.min(end)..end].iter_mut().enumerate() {
                    *b = fill[(class as usize * 31 + j) % fill.len()];
                }
            }
            let mut out = Vec::new();
            plan.encode(&body, &mut out);
            prop_assert_eq!(gunzip(&out), body.clone());
            let mut back = vec![0u8; body.len()];
            let mut n = 0usize;
            // SAFETY: the decompressor is used once and freed; buffers are sized as passed.
            let rc = unsafe {
                let d = libdeflate_sys::libdeflate_alloc_decompressor();
                let rc = libdeflate_sys::libdeflate_gzip_decompress(
                    d, out.as_ptr().cast(), out.len(), back.as_mut_ptr().cast(), back.len(), &mut n);
                libdeflate_sys::libdeflate_free_decompressor(d);
                rc
            };
            prop_assert_eq!(rc, libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS);
            prop_assert_eq!(&back[..n], &body[..]);
        }
    }
}
