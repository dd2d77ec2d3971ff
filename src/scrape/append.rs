//! One scrape's samples, from the response body to one batch per shard: parse in place, look
//! each series up in the target's cache, and on a miss build its labels (target labels,
//! `honor_labels`, metric relabeling, label limits) and pick its shard. Then staleness markers
//! for series that vanished, and the synthetic series (`up`, `scrape_duration_seconds`, ...).
//!
//! This is the router's hot path and pure logic: no I/O, no executor. The scrape loop sends the
//! batches and hands the shards' answers back to `commit`. A failure (parse error, a limit)
//! leaves the batches empty so nothing of that scrape is stored, exactly as Prometheus rolls
//! the scrape back, and the cache as if the scrape had not happened.

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::LazyLock;

use shards::head::{AppendBatch, AppendOutcome, BatchSample, SeriesKey};
use shards::labels::{shard_for, Labels, LabelsError};
use shards::value::stale_nan;
use thiserror::Error;

use crate::config::label_builder::LabelBuilder;
use crate::config::relabel::{self, RelabelConfig, RelabelScratch};
use crate::scrape::cache::{
    CacheEntry, EntryId, ScrapeCache, ScrapeNumber, Unacknowledged, MAX_SHARDS,
};
use crate::scrape::metadata::SharedMetadata;
use crate::scrape::metadata_lines::MetadataLines;
use crate::scrape::parser::{Entry, Format, LabelPairs, ParseError, Parser};
use crate::scrape::series_hash::{series_hash, KnownSeries, SeriesHash};
use crate::transient_heap::transient;

/// What a miss needs to build a series' labels, and the limits of the job.
#[derive(Debug, Clone, Default)]
pub struct SeriesRules {
    /// The target's labels (no `__` labels): attached to every series.
    pub target_labels: Labels,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub metric_relabel: Vec<RelabelConfig>,
    /// 0: no limit. Counted after metric relabeling, as Prometheus does.
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
}

/// Why a scrape's samples were refused; the text is what `/api/v1/targets` shows.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum AppendError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("sample limit exceeded")]
    SampleLimit,
    #[error(
        "label_limit exceeded (metric: {metric:.50}, number of labels: {count}, limit: {limit})"
    )]
    LabelLimit {
        metric: String,
        count: usize,
        limit: u64,
    },
    #[error("label_name_length_limit exceeded (metric: {metric:.50}, label name: {name:.50}, length: {len}, limit: {limit})")]
    LabelNameLength {
        metric: String,
        name: String,
        len: usize,
        limit: u64,
    },
    #[error("label_value_length_limit exceeded (metric: {metric:.50}, label name: {name:.50}, value: {value:.50?}, length: {len}, limit: {limit})")]
    LabelValueLength {
        metric: String,
        name: String,
        value: String,
        len: usize,
        limit: u64,
    },
    #[error("invalid labels: {0}")]
    Labels(#[from] LabelsError),
}

/// Counts of one scrape, for the synthetic series.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BodyReport {
    /// Samples in the body (`scrape_samples_scraped`).
    pub scraped: u64,
    /// Samples kept after metric relabeling (`scrape_samples_post_metric_relabeling`).
    pub post_relabel: u64,
    /// Series new to the cache (`scrape_series_added`).
    pub series_added: u64,
}

/// The batches of one scrape, one per shard, and which cache entry each new series is.
#[derive(Debug, Default)]
pub struct ShardBatches {
    pub batches: Vec<AppendBatch>,
    new_entries: Vec<Vec<EntryId>>,
}

impl ShardBatches {
    /// At most 4,096 shards (a cache entry keeps its shard in 12 bits; `--shards` allows
    /// 1,024).
    pub fn new(shards: usize) -> Self {
        assert!(
            shards <= MAX_SHARDS,
            "{shards} shards: at most {MAX_SHARDS}"
        );
        ShardBatches {
            batches: vec![AppendBatch::default(); shards],
            new_entries: vec![Vec::new(); shards],
        }
    }

    pub fn clear(&mut self) {
        for b in &mut self.batches {
            b.samples.clear();
            b.new_series.clear();
        }
        for n in &mut self.new_entries {
            n.clear();
        }
    }

    pub fn shards(&self) -> usize {
        self.batches.len()
    }

    pub fn samples(&self) -> usize {
        self.batches.iter().map(|b| b.samples.len()).sum()
    }

    /// Frees the lists of new entries once the shards have answered: after a target's first
    /// scrape they are needed only by a scrape with new series, and kept they would hold
    /// what the first scrape grew them to (~4 KiB for 1,000 series) for the target's life.
    fn release_new_entries(&mut self) {
        for n in &mut self.new_entries {
            if n.capacity() != 0 {
                *n = Vec::new();
            }
        }
    }
}

thread_local! {
    /// The entries the scrape being appended on this thread touched, marked seen only if it
    /// succeeds. `append_body` never yields, so one list serves every target of the thread
    /// instead of each target keeping one as long as its last scrape (4 KiB for 1,000
    /// series); it holds what the largest target needed.
    static TOUCHED: Cell<Vec<EntryId>> = const { Cell::new(Vec::new()) };
}

/// The names and cache keys of the synthetic series. A key starts with a byte no exposition
/// line can start with, so it never meets a scraped series in the cache.
const REPORT_SERIES: [(&str, &[u8]); 5] = [
    ("up", b"\xffup"),
    ("scrape_duration_seconds", b"\xffscrape_duration_seconds"),
    ("scrape_samples_scraped", b"\xffscrape_samples_scraped"),
    (
        "scrape_samples_post_metric_relabeling",
        b"\xffscrape_samples_post_metric_relabeling",
    ),
    ("scrape_series_added", b"\xffscrape_series_added"),
];

/// The cache keys' hashes of `REPORT_SERIES`, computed once: every scrape looks all five up
/// (twice when some entry went unseen).
static REPORT_HASHES: LazyLock<[SeriesHash; 5]> =
    LazyLock::new(|| REPORT_SERIES.map(|(_, key)| series_hash(key)));

/// The synthetic samples of one scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    pub up: bool,
    pub duration_seconds: f64,
    pub body: BodyReport,
}

/// A target's scrape state across scrapes: its cache and the bookkeeping of staleness.
#[derive(Debug)]
pub struct ScrapeAppender {
    pub rules: SeriesRules,
    cache: ScrapeCache,
    /// Number of the scrape being appended (starts at 1). Scrape numbers are 16-bit, as in
    /// every cache entry (2 bytes a series fewer); `next_scrape` renumbers before they wrap.
    scrape: ScrapeNumber,
    /// The last scrape whose samples were stored (0: none yet).
    last_ok: ScrapeNumber,
    /// The successful scrape whose series already got staleness markers (after a failure).
    stale_through: ScrapeNumber,
    /// Entries this scrape touched, marked seen only if it succeeds: the thread's `TOUCHED`
    /// while `append_body` runs, empty (no memory) between scrapes.
    touched: Vec<EntryId>,
    label_buf: LabelBuilder,
    relabel_scratch: RelabelScratch,
    /// No OpenMetrics body was ever appended, so every cache key passed the text format's
    /// grammar: the condition for `Parser::next_expecting`. (A target does not switch
    /// formats in practice; one that does just loses the shortcut.)
    text_keys_only: bool,
    /// TYPE/HELP/UNIT of the target's families, read by the metadata API.
    pub metadata: SharedMetadata,
    /// The `#` lines of the last scrape, so that unchanged ones are passed over.
    metadata_lines: MetadataLines,
}

impl ScrapeAppender {
    pub fn new(rules: SeriesRules) -> Self {
        ScrapeAppender {
            rules,
            cache: ScrapeCache::new(),
            scrape: 0,
            last_ok: 0,
            stale_through: 0,
            touched: Vec::new(),
            label_buf: LabelBuilder::new(),
            relabel_scratch: RelabelScratch::default(),
            text_keys_only: true,
            metadata: SharedMetadata::default(),
            metadata_lines: MetadataLines::default(),
        }
    }

    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Appends a successfully fetched body scraped at `t` (ms) into `out` (cleared first).
    /// On error `out` is left empty; follow with [`ScrapeAppender::append_failure`].
    pub fn append_body(
        &mut self,
        body: &[u8],
        format: Format,
        t: i64,
        out: &mut ShardBatches,
    ) -> Result<BodyReport, AppendError> {
        out.clear();
        self.next_scrape();
        self.touched = TOUCHED.take();
        self.touched.clear();
        let result = self.parse_into(body, format, t, out);
        self.metadata_lines
            .end(&mut self.metadata.borrow_mut(), result.is_ok());
        // Entries seen in this scrape, each once (a body may repeat a series).
        let mut seen_now = 0;
        if result.is_ok() {
            for &id in &self.touched {
                let e = self.cache.entry_mut(id);
                seen_now += usize::from(e.seen != self.scrape);
                e.seen = self.scrape;
            }
        }
        TOUCHED.set(std::mem::take(&mut self.touched));
        match result {
            Ok(report) => {
                // Staleness markers and eviction each scan every entry. Only entries this
                // scrape did not see can need either, and the synthetic series need neither
                // while they are written after every scrape: when those are all the unseen
                // entries (a target that answered with the same series as before), the scans
                // would find nothing and are skipped.
                let unseen = self.cache.len().saturating_sub(seen_now);
                let (synthetic, synthetic_kept) = match unseen {
                    0 => (0, 0),
                    _ => self.synthetic_entries(self.last_ok),
                };
                if self.last_ok != 0 && self.stale_through != self.last_ok && unseen > synthetic {
                    push_stale(
                        self.cache.stale_candidates(Some(self.last_ok), false),
                        t,
                        out,
                    );
                }
                if unseen > synthetic_kept {
                    self.cache.evict_older_than(self.last_ok);
                }
                self.last_ok = self.scrape;
                Ok(report)
            }
            Err(e) => {
                out.clear();
                Err(e)
            }
        }
    }

    /// Moves on to the next scrape number. After 2¹⁶ − 1 scrapes (18 hours at one a second;
    /// the pass over the entries costs less than one scrape) every number is renumbered first, keeping all that the appender ever compares: a
    /// number against the last successful scrape (`<`, `==`, `>`, and 0 for never) and the
    /// pending series against the current scrape (none is pending between scrapes).
    fn next_scrape(&mut self) {
        if self.scrape == ScrapeNumber::MAX {
            let last_ok = self.last_ok;
            let renumber = move |n: ScrapeNumber| match n {
                0 => 0,
                n if n < last_ok => 1,
                n if n == last_ok => 2,
                _ => 3,
            };
            self.cache.renumber_scrapes(renumber);
            self.stale_through = renumber(self.stale_through);
            self.last_ok = renumber(self.last_ok);
            self.scrape = 3;
        }
        self.scrape += 1;
    }

    /// Starts the appender as if it had made `scrape` scrapes already (none successful), to
    /// test the renumbering.
    #[cfg(test)]
    fn with_scrape_number(mut self, scrape: ScrapeNumber) -> Self {
        self.scrape = scrape;
        self
    }

    /// How many entries of synthetic series there are, and how many of them
    /// `evict_older_than(keep_since)` would keep. They are never in a body, so never among
    /// the entries a body touched, and never staleness candidates of a scrape.
    fn synthetic_entries(&self, keep_since: ScrapeNumber) -> (usize, usize) {
        let (mut live, mut kept) = (0, 0);
        for &hash in REPORT_HASHES.iter() {
            if let Some(id) = self.cache.get(hash) {
                live += 1;
                kept += usize::from(self.cache.entry(id).seen >= keep_since);
            }
        }
        (live, kept)
    }

    /// A failed scrape at `t`: every series of the last successful scrape gets its staleness
    /// marker (once), as if the target had answered with an empty body.
    pub fn append_failure(&mut self, t: i64, out: &mut ShardBatches) {
        out.clear();
        self.next_scrape();
        self.stale_markers_for_last_scrape(t, false, out);
    }

    /// The target is gone (or its job changed): staleness markers for everything the last
    /// successful scrape had, and for the synthetic series.
    pub fn append_end_of_run(&mut self, t: i64, out: &mut ShardBatches) {
        out.clear();
        self.stale_markers_for_last_scrape(t, true, out);
    }

    fn stale_markers_for_last_scrape(&mut self, t: i64, synthetic: bool, out: &mut ShardBatches) {
        if synthetic {
            push_stale(self.cache.stale_candidates(None, true), t, out);
        }
        if self.last_ok == 0 || self.stale_through == self.last_ok {
            return;
        }
        push_stale(
            self.cache.stale_candidates(Some(self.last_ok), false),
            t,
            out,
        );
        self.stale_through = self.last_ok;
    }

    /// Adds the synthetic series of this scrape at `t`. Call after `append_body` or
    /// `append_failure`, before sending.
    pub fn append_report(&mut self, t: i64, report: &Report, out: &mut ShardBatches) {
        let values = [
            if report.up { 1.0 } else { 0.0 },
            report.duration_seconds,
            report.body.scraped as f64,
            report.body.post_relabel as f64,
            report.body.series_added as f64,
        ];
        let keys = REPORT_SERIES.iter().zip(REPORT_HASHES.iter());
        for (((name, _), &hash), v) in keys.zip(values) {
            let id = match self.cache.get(hash) {
                Some(id) => id,
                None => {
                    let mut lb = LabelBuilder::from_labels(&self.rules.target_labels);
                    lb.set("__name__", name);
                    // Target labels and a fixed valid name: this cannot fail.
                    let Ok(labels) = lb.to_labels() else { continue };
                    let id = self.new_entry(hash, labels, false, out);
                    self.cache.entry_mut(id).set_synthetic();
                    id
                }
            };
            self.cache.entry_mut(id).seen = self.scrape.max(1);
            self.push_sample(id, t, v, out);
        }
    }

    /// Takes the shards' answers to the batches of `out` (`None` for a shard that was sent
    /// nothing or whose append failed): new refs go into the cache.
    pub fn commit(&mut self, out: &mut ShardBatches, outcomes: &[Option<AppendOutcome>]) {
        self.take_refs(out, outcomes);
        out.release_new_entries();
    }

    fn take_refs(&mut self, out: &ShardBatches, outcomes: &[Option<AppendOutcome>]) {
        for (shard, outcome) in outcomes.iter().enumerate() {
            let Some(outcome) = outcome else { continue };
            if outcome.unknown_refs > 0 {
                // The shard lost refs we hold (it cannot today: series are never removed from
                // a running head). Start over rather than keep sending refs it does not know.
                self.cache.clear();
                return;
            }
            for (&id, &r) in out.new_entries[shard].iter().zip(&outcome.series_refs) {
                self.cache.set_ref(id, r);
            }
        }
    }

    fn parse_into(
        &mut self,
        body: &[u8],
        format: Format,
        t: i64,
        out: &mut ShardBatches,
    ) -> Result<BodyReport, AppendError> {
        let mut report = BodyReport::default();
        let mut parser = Parser::new(body, format);
        let mut pairs: LabelPairs<'_> = Vec::new();
        // The entry after the previous line's: see `ScrapeCache::get_hinted`.
        let mut hint: EntryId = 0;
        // The parser may skip re-checking a line whose series is the hinted entry's only
        // if every key was accepted by the text grammar (see `text_keys_only`).
        let hint_parser = format == Format::PrometheusText && self.text_keys_only;
        if format != Format::PrometheusText {
            self.text_keys_only = false;
        }
        let sample_limit = match self.rules.sample_limit {
            0 => u64::MAX,
            limit => limit,
        };
        let forgot = self.metadata.borrow_mut().begin_scrape();
        self.metadata_lines.begin(format, forgot);
        loop {
            let expected = if hint_parser {
                self.cache.known(hint)
            } else {
                KnownSeries::NONE
            };
            let lines = &self.metadata_lines;
            let Some(entry) = parser.next_expecting(expected, || lines.expected()) else {
                break;
            };
            let (series, value, timestamp_ms) = match entry? {
                Entry::Sample {
                    series,
                    value,
                    timestamp_ms,
                } => (series, value, timestamp_ms),
                other => {
                    self.metadata_line(&parser, &other);
                    continue;
                }
            };
            report.scraped += 1;
            let sample_t = match timestamp_ms {
                Some(ts) if self.rules.honor_timestamps => ts,
                _ => t,
            };
            let id = if parser.took_expected() {
                hint
            } else {
                let hash = series_hash(series);
                match self.cache.get_hinted(hash, hint) {
                    Some(id) => id,
                    None => {
                        parser.labels(series, &mut pairs)?;
                        let explicit = timestamp_ms.is_some() && self.rules.honor_timestamps;
                        match self.build_labels(&pairs)? {
                            Some(labels) => {
                                report.series_added += 1;
                                self.new_entry(hash, labels, explicit, out)
                            }
                            None => self.cache.insert_hashed(hash, CacheEntry::dropped()),
                        }
                    }
                }
            };
            hint = id.wrapping_add(1);
            self.touched.push(id);
            if self.cache.entry(id).is_dropped() {
                continue;
            }
            report.post_relabel += 1;
            if report.post_relabel > sample_limit {
                return Err(AppendError::SampleLimit);
            }
            self.push_sample(id, sample_t, value, out);
        }
        Ok(report)
    }

    /// A `#` line of the body: passed over (`took_expected`) or recorded. Out of line, so
    /// that the entries of the sample path never need a place in memory.
    #[inline(never)]
    fn metadata_line(&mut self, parser: &Parser<'_>, entry: &Entry<'_>) {
        let mut md = self.metadata.borrow_mut();
        if parser.took_expected() {
            self.metadata_lines.took_expected(&mut md);
        } else {
            self.metadata_lines
                .read(parser.comment_line(), entry, &mut md);
        }
    }

    // Inlined: it runs once per sample, and as a call its register saves cost a third of it.
    #[inline(always)]
    fn push_sample(&mut self, id: EntryId, t: i64, v: f64, out: &mut ShardBatches) {
        let e = self.cache.entry(id);
        let shard = e.shard();
        let series = match e.series_ref() {
            0 => match self.unacknowledged(id, shard, out) {
                Some(pending) => SeriesKey::New(pending),
                None => return,
            },
            series_ref => SeriesKey::Ref(series_ref),
        };
        out.batches[shard]
            .samples
            .push(BatchSample { series, t, v });
    }

    /// Where in this scrape's batch the unacknowledged series of entry `id` is: sent already
    /// by this scrape, or created by an earlier one whose append failed and sent again now.
    /// Out of line: only a series' first scrapes come here.
    #[inline(never)]
    fn unacknowledged(&mut self, id: EntryId, shard: usize, out: &mut ShardBatches) -> Option<u32> {
        let scrape = self.scrape;
        let u = self.cache.unacknowledged_mut(id)?;
        if u.pending_scrape != scrape {
            let batch = &mut out.batches[shard];
            u.pending = batch.new_series.len() as u32;
            u.pending_scrape = scrape;
            batch.new_series.push(u.labels.clone());
            out.new_entries[shard].push(id);
        }
        Some(u.pending)
    }

    fn new_entry(
        &mut self,
        key: SeriesHash,
        labels: Labels,
        explicit_timestamps: bool,
        out: &mut ShardBatches,
    ) -> EntryId {
        let shard = shard_for(labels.hash(), out.shards());
        let batch = &mut out.batches[shard];
        let pending = batch.new_series.len() as u32;
        batch.new_series.push(labels.clone());
        let id = self
            .cache
            .insert_hashed(key, CacheEntry::series(shard, explicit_timestamps));
        self.cache.keep_unacknowledged(
            id,
            Unacknowledged {
                labels,
                pending,
                pending_scrape: self.scrape,
            },
        );
        out.new_entries[shard].push(id);
        id
    }

    /// The stored labels of a scraped series, or `None` when metric relabeling drops it.
    fn build_labels(
        &mut self,
        pairs: &[(Cow<'_, str>, Cow<'_, str>)],
    ) -> Result<Option<Labels>, AppendError> {
        let rules = &self.rules;
        let lb = &mut self.label_buf;
        lb.clear();
        for (name, value) in pairs {
            if lb.contains(name) {
                return Err(LabelsError::DuplicateName(name.to_string()).into());
            }
            lb.set(name, value);
        }
        if rules.honor_labels {
            for l in rules.target_labels.iter() {
                if !lb.contains(&l.name) {
                    lb.set(&l.name, &l.value);
                }
            }
        } else {
            for l in rules.target_labels.iter() {
                let existing = lb.get(&l.name);
                if !existing.is_empty() {
                    // Prometheus keeps a clashing scraped label as exported_<name>, prefixing
                    // again until the name is free.
                    let value = existing.to_string();
                    let mut name = format!("exported_{}", l.name);
                    while lb.contains(&name) {
                        name.insert_str(0, "exported_");
                    }
                    lb.set(&name, &value);
                }
                lb.set(&l.name, &l.value);
            }
        }
        if !relabel::process_with(lb, &rules.metric_relabel, &mut self.relabel_scratch) {
            return Ok(None);
        }
        if lb.get("__name__").is_empty() {
            return Ok(None);
        }
        check_limits(rules, lb)?;
        // Freed by the shard once interned: kept out of the pages of what lives on.
        Ok(Some(transient(|| lb.to_labels())?))
    }
}

/// A staleness marker at `t` for each `(shard, series ref)`.
fn push_stale(series: impl Iterator<Item = (usize, u64)>, t: i64, out: &mut ShardBatches) {
    let marker = stale_nan();
    for (shard, series_ref) in series {
        out.batches[shard].samples.push(BatchSample {
            series: SeriesKey::Ref(series_ref),
            t,
            v: marker,
        });
    }
}

fn check_limits(rules: &SeriesRules, lb: &LabelBuilder) -> Result<(), AppendError> {
    let metric = || lb.get("__name__").to_string();
    if rules.label_limit > 0 && lb.len() as u64 > rules.label_limit {
        return Err(AppendError::LabelLimit {
            metric: metric(),
            count: lb.len(),
            limit: rules.label_limit,
        });
    }
    for l in lb.iter() {
        if rules.label_name_length_limit > 0 && l.name.len() as u64 > rules.label_name_length_limit
        {
            return Err(AppendError::LabelNameLength {
                metric: metric(),
                name: l.name.clone(),
                len: l.name.len(),
                limit: rules.label_name_length_limit,
            });
        }
        if rules.label_value_length_limit > 0
            && l.value.len() as u64 > rules.label_value_length_limit
        {
            return Err(AppendError::LabelValueLength {
                metric: metric(),
                name: l.name.clone(),
                value: l.value.clone(),
                len: l.value.len(),
                limit: rules.label_value_length_limit,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shards::value::is_stale_nan;

    fn target() -> Labels {
        Labels::from_pairs([("job", "node"), ("instance", "h:9100")]).unwrap()
    }

    fn appender(rules: SeriesRules) -> ScrapeAppender {
        ScrapeAppender::new(SeriesRules {
            target_labels: target(),
            honor_timestamps: true,
            ..rules
        })
    }

    /// Plays the shards: hands out refs for new series, in order, per shard.
    fn ack(a: &mut ScrapeAppender, out: &mut ShardBatches, next_ref: &mut u64) -> Vec<Labels> {
        let mut created = Vec::new();
        let outcomes: Vec<Option<AppendOutcome>> = out
            .batches
            .iter()
            .map(|b| {
                let refs = b
                    .new_series
                    .iter()
                    .map(|l| {
                        created.push(l.clone());
                        *next_ref += 1;
                        *next_ref
                    })
                    .collect();
                Some(AppendOutcome {
                    series_refs: refs,
                    ..Default::default()
                })
            })
            .collect();
        a.commit(out, &outcomes);
        created
    }

    fn samples(out: &ShardBatches) -> Vec<(SeriesKey, i64, f64)> {
        out.batches
            .iter()
            .flat_map(|b| b.samples.iter().map(|s| (s.series, s.t, s.v)))
            .collect()
    }

    const BODY: &[u8] = b"# TYPE a counter\na{x=\"1\"} 1\na{x=\"2\"} 2\nb 3\n";

    #[test]
    fn first_scrape_creates_series_with_target_labels_then_hits_the_cache() {
        let mut a = appender(SeriesRules::default());
        let mut out = ShardBatches::new(2);
        let mut next = 0;
        let r = a
            .append_body(BODY, Format::PrometheusText, 1000, &mut out)
            .unwrap();
        assert_eq!(
            r,
            BodyReport {
                scraped: 3,
                post_relabel: 3,
                series_added: 3
            }
        );
        let created = ack(&mut a, &mut out, &mut next);
        assert_eq!(created.len(), 3);
        for l in &created {
            assert_eq!(l.get("job"), Some("node"));
            assert_eq!(l.get("instance"), Some("h:9100"));
            assert_eq!(shard_for(l.hash(), 2), created_shard(&out, l));
        }

        let r = a
            .append_body(BODY, Format::PrometheusText, 2000, &mut out)
            .unwrap();
        assert_eq!(r.series_added, 0);
        let s = samples(&out);
        assert_eq!(s.len(), 3);
        assert!(s
            .iter()
            .all(|(k, t, _)| matches!(k, SeriesKey::Ref(_)) && *t == 2000));
        assert!(out.batches.iter().all(|b| b.new_series.is_empty()));
    }

    fn created_shard(out: &ShardBatches, l: &Labels) -> usize {
        out.batches
            .iter()
            .position(|b| b.new_series.contains(l))
            .unwrap()
    }

    #[test]
    fn vanished_series_get_one_staleness_marker() {
        let mut a = appender(SeriesRules::default());
        let mut out = ShardBatches::new(1);
        let mut next = 0;
        a.append_body(BODY, Format::PrometheusText, 1000, &mut out)
            .unwrap();
        ack(&mut a, &mut out, &mut next);
        a.append_body(b"b 3\n", Format::PrometheusText, 2000, &mut out)
            .unwrap();
        let s = samples(&out);
        assert_eq!(s.iter().filter(|(_, _, v)| is_stale_nan(*v)).count(), 2);
        ack(&mut a, &mut out, &mut next);
        a.append_body(b"b 3\n", Format::PrometheusText, 3000, &mut out)
            .unwrap();
        assert_eq!(samples(&out).len(), 1, "markers are written once");
    }

    #[test]
    fn a_failed_scrape_marks_the_last_series_stale_once_and_keeps_the_cache() {
        let mut a = appender(SeriesRules::default());
        let mut out = ShardBatches::new(1);
        let mut next = 0;
        a.append_body(BODY, Format::PrometheusText, 1000, &mut out)
            .unwrap();
        ack(&mut a, &mut out, &mut next);
        a.append_failure(2000, &mut out);
        let s = samples(&out);
        assert_eq!(s.len(), 3);
        assert!(s.iter().all(|(_, t, v)| *t == 2000 && is_stale_nan(*v)));
        a.append_failure(3000, &mut out);
        assert!(samples(&out).is_empty());
        let r = a
            .append_body(BODY, Format::PrometheusText, 4000, &mut out)
            .unwrap();
        assert_eq!(r.series_added, 0, "the cache survived the failures");
        assert!(samples(&out).iter().all(|(_, _, v)| !v.is_nan()));
    }

    #[test]
    fn parse_errors_and_the_sample_limit_store_nothing() {
        let mut a = appender(SeriesRules {
            sample_limit: 2,
            ..Default::default()
        });
        let mut out = ShardBatches::new(1);
        let e = a
            .append_body(BODY, Format::PrometheusText, 1000, &mut out)
            .unwrap_err();
        assert_eq!(e, AppendError::SampleLimit);
        assert_eq!(e.to_string(), "sample limit exceeded");
        assert_eq!(out.samples(), 0);
        assert!(out.batches[0].new_series.is_empty());

        let mut a = appender(SeriesRules::default());
        let e = a
            .append_body(
                b"a 1\nthis is not\n",
                Format::PrometheusText,
                1000,
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(e, AppendError::Parse(_)));
        assert_eq!(out.samples(), 0);
    }

    #[test]
    fn series_first_seen_in_a_failed_scrape_are_sent_again() {
        let mut a = appender(SeriesRules {
            sample_limit: 1,
            ..Default::default()
        });
        let mut out = ShardBatches::new(1);
        assert!(a
            .append_body(b"a 1\nb 2\n", Format::PrometheusText, 1000, &mut out)
            .is_err());
        a.append_body(b"a 1\n", Format::PrometheusText, 2000, &mut out)
            .unwrap();
        assert_eq!(out.batches[0].new_series.len(), 1);
        assert_eq!(out.batches[0].samples[0].series, SeriesKey::New(0));
    }

    #[test]
    fn honor_labels_decides_who_wins_a_clash() {
        let body = b"m{job=\"pushed\",instance=\"\"} 1\n";
        let mut out = ShardBatches::new(1);
        let mut a = appender(SeriesRules {
            honor_labels: true,
            ..Default::default()
        });
        a.append_body(body, Format::PrometheusText, 1, &mut out)
            .unwrap();
        let l = &out.batches[0].new_series[0];
        assert_eq!(l.get("job"), Some("pushed"));
        // An exposed empty instance is no label, so the target's is attached.
        assert_eq!(l.get("instance"), Some("h:9100"));

        let mut a = appender(SeriesRules::default());
        a.append_body(body, Format::PrometheusText, 1, &mut out)
            .unwrap();
        let l = &out.batches[0].new_series[0];
        assert_eq!(l.get("job"), Some("node"));
        assert_eq!(l.get("exported_job"), Some("pushed"));
    }

    #[test]
    fn metric_relabeling_drops_are_cached_and_not_counted() {
        let yaml = "- source_labels: [__name__]\n  regex: a\n  action: drop\n";
        let metric_relabel: Vec<RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
        let mut a = appender(SeriesRules {
            metric_relabel,
            sample_limit: 1,
            ..Default::default()
        });
        let mut out = ShardBatches::new(1);
        let r = a
            .append_body(BODY, Format::PrometheusText, 1, &mut out)
            .unwrap();
        assert_eq!(r.scraped, 3);
        assert_eq!(r.post_relabel, 1);
        assert_eq!(out.samples(), 1);
    }

    #[test]
    fn label_limits_fail_the_scrape() {
        let mut a = appender(SeriesRules {
            label_limit: 3,
            ..Default::default()
        });
        let mut out = ShardBatches::new(1);
        let e = a
            .append_body(
                b"m{a=\"1\",b=\"2\"} 1\n",
                Format::PrometheusText,
                1,
                &mut out,
            )
            .unwrap_err();
        assert!(e.to_string().starts_with("label_limit exceeded"), "{e}");
    }

    #[test]
    fn explicit_timestamps_are_honored_and_never_marked_stale() {
        let mut a = appender(SeriesRules::default());
        let mut out = ShardBatches::new(1);
        let mut next = 0;
        a.append_body(b"a 1 500\nb 2\n", Format::PrometheusText, 1000, &mut out)
            .unwrap();
        let times: Vec<i64> = samples(&out).iter().map(|s| s.1).collect();
        assert_eq!(times, vec![500, 1000]);
        ack(&mut a, &mut out, &mut next);
        a.append_body(b"", Format::PrometheusText, 2000, &mut out)
            .unwrap();
        assert_eq!(samples(&out).len(), 1, "only b gets a marker");
    }

    #[test]
    fn synthetic_series_are_never_marked_stale_while_the_target_lives() {
        let mut a = appender(SeriesRules::default());
        let mut out = ShardBatches::new(1);
        let mut next = 0;
        let report = Report {
            up: true,
            duration_seconds: 0.1,
            body: BodyReport::default(),
        };
        for t in [1000, 2000, 3000] {
            a.append_body(BODY, Format::PrometheusText, t, &mut out)
                .unwrap();
            a.append_report(t, &report, &mut out);
            assert!(samples(&out).iter().all(|(_, _, v)| !v.is_nan()), "at {t}");
            ack(&mut a, &mut out, &mut next);
        }
        a.append_failure(4000, &mut out);
        assert_eq!(samples(&out).len(), 3, "only the scraped series");
        a.append_end_of_run(5000, &mut out);
        assert_eq!(
            samples(&out).len(),
            5,
            "the synthetic series when the target goes"
        );
    }

    /// The cache forgets exactly the series absent from the last two successful scrapes
    /// (keeping everything until the first success), and a successful scrape marks stale
    /// exactly the series of the previous one it lacks, whether or not the scans are
    /// skipped: over bodies that repeat series, drop them, bring them back and fail, with
    /// and without the synthetic series.
    #[test]
    fn eviction_keeps_what_the_last_two_successful_scrapes_saw() {
        use proptest::prelude::*;
        use std::collections::BTreeSet;
        const LINES: [&str; 5] = ["a 1\n", "b 2\n", "c{x=\"y\"} 3\n", "a 4\n", "d 5\n"];
        let scrape = (
            proptest::collection::vec(0..LINES.len(), 0..6),
            any::<bool>(),
        );
        let scrapes = proptest::collection::vec(scrape, 1..12);
        proptest!(|(scrapes in scrapes, with_report: bool)| {
            let mut a = appender(SeriesRules::default());
            let mut out = ShardBatches::new(2);
            let mut next = 0;
            let mut ever: BTreeSet<&str> = BTreeSet::new();
            let mut previous_ok: Option<BTreeSet<&str>> = None;
            let mut reported = false;
            for (t, (picked, fail)) in scrapes.into_iter().enumerate() {
                let mut body: String = picked.iter().map(|&i| LINES[i]).collect();
                if fail {
                    body += "not a sample\n";
                }
                let now: BTreeSet<&str> = picked.iter().map(|&i| &LINES[i][..1]).collect();
                ever.extend(&now);
                let t = t as i64 * 1000;
                let ok = a.append_body(body.as_bytes(), Format::PrometheusText, t, &mut out).is_ok();
                prop_assert_eq!(ok, !fail);
                if ok {
                    let stale = samples(&out).iter().filter(|s| is_stale_nan(s.2)).count();
                    let vanished = previous_ok.as_ref().map_or(0, |before| before.difference(&now).count());
                    prop_assert_eq!(stale, vanished);
                    let kept = match &previous_ok {
                        None => ever.len(),
                        Some(before) => before.union(&now).count(),
                    };
                    let synthetic = if reported { REPORT_SERIES.len() } else { 0 };
                    prop_assert_eq!(a.cache_len(), kept + synthetic);
                    previous_ok = Some(now);
                }
                if with_report {
                    let report = Report { up: ok, duration_seconds: 0.0, body: BodyReport::default() };
                    a.append_report(t, &report, &mut out);
                    reported = true;
                }
                ack(&mut a, &mut out, &mut next);
            }
        });
    }

    #[test]
    fn metadata_of_unchanged_and_changed_bodies() {
        let mut a = appender(SeriesRules::default());
        let mut out = ShardBatches::new(1);
        let body =
            |help: &str| format!("# HELP a {help}\n# TYPE a counter\na 1\n# HELP b B.\nb 2\n");
        for help in ["A.", "A.", "A.", "Changed.", "Changed."] {
            a.append_body(body(help).as_bytes(), Format::PrometheusText, 1, &mut out)
                .unwrap();
            let md = a.metadata.borrow();
            assert_eq!(md.get("a").unwrap().help, help);
            assert_eq!(md.get("b").unwrap().help, "B.");
        }
    }

    #[test]
    fn report_series_carry_target_labels_and_are_cached() {
        let mut a = appender(SeriesRules::default());
        let mut out = ShardBatches::new(1);
        let mut next = 0;
        let report = Report {
            up: true,
            duration_seconds: 0.5,
            body: BodyReport::default(),
        };
        a.append_report(1000, &report, &mut out);
        let created = ack(&mut a, &mut out, &mut next);
        let names: Vec<&str> = created.iter().filter_map(|l| l.metric_name()).collect();
        assert_eq!(
            names,
            vec![
                "up",
                "scrape_duration_seconds",
                "scrape_samples_scraped",
                "scrape_samples_post_metric_relabeling",
                "scrape_series_added"
            ]
        );
        assert!(created.iter().all(|l| l.get("job") == Some("node")));
        out.clear();
        a.append_report(2000, &report, &mut out);
        assert!(out.batches[0].new_series.is_empty());
        assert_eq!(out.samples(), 5);
    }

    /// The series of `appends_are_those_of_a_text_keyed_cache`: (line's series, its labels
    /// besides the target's, relabeling drops it, the line carries its own timestamp).
    type ModelSeries = (
        &'static str,
        &'static [(&'static str, &'static str)],
        bool,
        bool,
    );
    const MODEL_SERIES: [ModelSeries; 7] = [
        ("a", &[("__name__", "a")], false, false),
        ("b{x=\"1\"}", &[("__name__", "b"), ("x", "1")], false, false),
        ("b{x=\"2\"}", &[("__name__", "b"), ("x", "2")], false, false),
        // The same series as the one before, written differently: two cache entries.
        (
            "b{x=\"2\",}",
            &[("__name__", "b"), ("x", "2")],
            false,
            false,
        ),
        (
            "drop_me{y=\"z\"}",
            &[("__name__", "drop_me"), ("y", "z")],
            true,
            false,
        ),
        ("c_total", &[("__name__", "c_total")], false, true),
        (
            "d{l=\"a b}\"}",
            &[("__name__", "d"), ("l", "a b}")],
            false,
            false,
        ),
    ];

    /// What a scrape does: the body's lines (indices into `MODEL_SERIES`, in order, repeats
    /// allowed), and how it ends.
    #[derive(Debug, Clone)]
    enum ModelScrape {
        Ok(Vec<usize>),
        /// A line that is no sample after this many of the lines.
        ParseError(Vec<usize>, usize),
        FetchFailed,
    }

    /// A stored sample: labels, time, value bits (staleness markers are one NaN).
    type Stored = (Labels, i64, u64);

    /// Over scrapes that reorder, repeat, drop, bring back and fail series, whose shards
    /// sometimes fail to answer, and that cross the renumbering of scrape numbers: every
    /// scrape stores exactly what a cache keyed by the series' text (the model below) gives:
    /// the body's samples, then one staleness marker for each stored series of the last
    /// successful scrape this one lacks (after a failure, at the failure), the series told
    /// apart by their text as before (`b{x="2"}` and `b{x="2",}` are two).
    #[test]
    fn appends_are_those_of_a_text_keyed_cache() {
        use proptest::prelude::*;
        use std::collections::{BTreeSet, HashMap};
        let drop_rule = "- source_labels: [__name__]\n  regex: drop_.*\n  action: drop\n";
        let metric_relabel: Vec<RelabelConfig> = serde_yaml::from_str(drop_rule).unwrap();
        let lines = || proptest::collection::vec(0..MODEL_SERIES.len(), 0..10);
        let scrape = prop_oneof![
            4 => lines().prop_map(ModelScrape::Ok),
            1 => (lines(), 0usize..10).prop_map(|(l, at)| ModelScrape::ParseError(l, at)),
            1 => Just(ModelScrape::FetchFailed),
        ];
        let scrapes = proptest::collection::vec((scrape, any::<bool>()), 1..14);
        let start = prop_oneof![Just(0u16), (u16::MAX - 8..=u16::MAX)];
        let labels_of = |i: usize| {
            let mut lb = LabelBuilder::from_labels(&target());
            for (n, v) in MODEL_SERIES[i].1 {
                lb.set(n, v);
            }
            lb.to_labels().unwrap()
        };
        let stale = stale_nan().to_bits();
        proptest!(|(scrapes in scrapes, start in start, shards in 1usize..4)| {
            let mut a = appender(SeriesRules {
                metric_relabel: metric_relabel.clone(),
                ..Default::default()
            })
            .with_scrape_number(start);
            let mut out = ShardBatches::new(shards);
            // The shards: a ref per label set, as a head gives.
            let mut refs: HashMap<Labels, u64> = HashMap::new();
            let mut by_ref: Vec<Labels> = vec![Labels::default()];
            // The model, keyed by the series' text: its cache (the last successful scrape
            // that saw a series, 0 for none, and whether the shards gave it a ref: a series
            // never stored gets no marker), the last successful scrape and those of its
            // series that can go stale, and whether they got their markers already.
            let mut cache: HashMap<usize, (usize, bool)> = HashMap::new();
            let mut last_ok: Option<(usize, BTreeSet<usize>)> = None;
            let mut marked = false;
            let stale_markers = |cache: &HashMap<usize, (usize, bool)>, last_ok: &Option<(usize, BTreeSet<usize>)>, now: &BTreeSet<usize>, t: i64| {
                let gone = last_ok.iter().flat_map(|(_, s)| s).filter(|i| !now.contains(*i) && cache[*i].1);
                gone.map(|&i| (labels_of(i), t, stale)).collect::<Vec<Stored>>()
            };
            for (k, (scrape, shards_answer)) in scrapes.iter().enumerate() {
                let t = (k as i64 + 1) * 10_000;
                let value = |j: usize| (k * 100 + j) as f64;
                let render = |picked: &[usize]| {
                    let mut body = String::from("# TYPE a counter\n");
                    for (j, &i) in picked.iter().enumerate() {
                        let ts = if MODEL_SERIES[i].3 { " 5" } else { "" };
                        body += &format!("{} {}{ts}\n", MODEL_SERIES[i].0, value(j));
                    }
                    body
                };
                let mut expected: Vec<Stored> = Vec::new();
                let ok = match scrape {
                    ModelScrape::Ok(picked) => {
                        let r = a.append_body(render(picked).as_bytes(), Format::PrometheusText, t, &mut out);
                        let r = r.map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(r.scraped, picked.len() as u64);
                        let mut now = BTreeSet::new();
                        for (j, &i) in picked.iter().enumerate() {
                            cache.entry(i).or_insert((0, false)).0 = k + 1;
                            let (_, _, dropped, explicit) = MODEL_SERIES[i];
                            if dropped {
                                continue;
                            }
                            expected.push((labels_of(i), if explicit { 5 } else { t }, value(j).to_bits()));
                            if !explicit {
                                now.insert(i);
                            }
                        }
                        prop_assert_eq!(r.post_relabel, expected.len() as u64);
                        if !marked {
                            expected.extend(stale_markers(&cache, &last_ok, &now, t));
                        }
                        if let Some((before, _)) = last_ok {
                            cache.retain(|_, (seen, _)| *seen >= before);
                        }
                        if *shards_answer {
                            for &i in picked {
                                cache.entry(i).or_default().1 |= !MODEL_SERIES[i].2;
                            }
                        }
                        last_ok = Some((k + 1, now));
                        marked = false;
                        true
                    }
                    ModelScrape::ParseError(picked, at) => {
                        let mut body = render(picked);
                        let cut = body.match_indices('\n').nth(*at).map_or(body.len(), |(i, _)| i + 1);
                        body.insert_str(cut, "not a sample\n");
                        let r = a.append_body(body.as_bytes(), Format::PrometheusText, t, &mut out);
                        prop_assert!(r.is_err());
                        prop_assert_eq!(out.samples(), 0);
                        // The lines before the error were cached, though nothing was stored.
                        for &i in picked.iter().take(*at) {
                            cache.entry(i).or_insert((0, false));
                        }
                        false
                    }
                    ModelScrape::FetchFailed => false,
                };
                if !ok {
                    a.append_failure(t, &mut out);
                    if !marked {
                        expected.extend(stale_markers(&cache, &last_ok, &BTreeSet::new(), t));
                    }
                    marked = true;
                }
                let report = Report { up: ok, duration_seconds: 0.0, body: BodyReport::default() };
                a.append_report(t, &report, &mut out);
                // What was stored, in label sets, without the synthetic series.
                let mut stored: Vec<Stored> = Vec::new();
                for (shard, b) in out.batches.iter().enumerate() {
                    for s in &b.samples {
                        let l = match s.series {
                            SeriesKey::Ref(r) => by_ref[r as usize].clone(),
                            SeriesKey::New(i) => b.new_series[i as usize].clone(),
                        };
                        prop_assert_eq!(shard_for(l.hash(), shards), shard);
                        if !REPORT_SERIES.iter().any(|(name, _)| l.metric_name() == Some(name)) {
                            stored.push((l, s.t, s.v.to_bits()));
                        }
                    }
                }
                stored.sort();
                expected.sort();
                prop_assert_eq!(stored, expected, "scrape {}: {:?}", k, scrape);
                let outcomes: Vec<Option<AppendOutcome>> = out
                    .batches
                    .iter()
                    .map(|b| {
                        let series_refs = b.new_series.iter().map(|l| {
                            let next = by_ref.len() as u64;
                            *refs.entry(l.clone()).or_insert_with(|| {
                                by_ref.push(l.clone());
                                next
                            })
                        }).collect();
                        shards_answer.then_some(AppendOutcome { series_refs, ..Default::default() })
                    })
                    .collect();
                a.commit(&mut out, &outcomes);
            }
        });
    }
}
