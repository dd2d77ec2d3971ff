//! The `#` lines of a target's last text-format scrape, in order, so that a line
//! byte-identical to the one at the same place last time is passed over after one comparison
//! (`Parser::next_expecting`) instead of being parsed and recorded again. On a node_exporter
//! body a third of the lines are HELP and TYPE, and parsing and recording one cost as much
//! as four cached samples.
//!
//! Why passing over is exact: recording a scrape's metadata lines sets, for each family and
//! each kind of line (TYPE, HELP, UNIT), the value of its last such line, so recording the
//! same lines a second time gives what recording them once gave. While every `#` line of a
//! scrape equals last scrape's line at the same place, the target's metadata already holds
//! what recording them would give, and only the families' "seen in this scrape" is updated.
//! At the first line that differs, or if the scrape ends (or fails) with fewer `#` lines,
//! the lines passed over so far are recorded after all, in order, and the rest of the scrape
//! is read the long way: a changed line then overrides exactly what it would have.
//!
//! This owns the copies of the lines and the position in them; it never decides what a line
//! means (the parser does; a line is only ever replayed through it) and never holds lines of
//! an OpenMetrics body, whose grammar differs.

use crate::scrape::metadata::TargetMetadata;
use crate::scrape::parser::{Entry, Format, Parser};

/// The slot of a line that names no family (a plain comment).
const NO_FAMILY: u32 = u32::MAX;

/// One remembered line: it is `text[previous line's end..end]`.
#[derive(Debug, Clone, Copy)]
struct KnownLine {
    end: u32,
    /// Its family's slot in `TargetMetadata`, or `NO_FAMILY`.
    slot: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    /// An OpenMetrics body: every line is recorded the long way and none is remembered.
    #[default]
    Off,
    /// Every `#` line so far equalled the remembered one at its place.
    Skipping,
    /// Lines are recorded the long way and remembered from `cursor` on.
    Recording,
}

/// A target's remembered `#` lines, kept by its `ScrapeAppender`.
#[derive(Debug, Default)]
pub struct MetadataLines {
    /// The lines back to back, without their newlines.
    text: Vec<u8>,
    lines: Vec<KnownLine>,
    /// The place of the next `#` line of the scrape being read.
    cursor: usize,
    /// Where `lines[cursor]` starts in `text`.
    next_start: usize,
    mode: Mode,
    /// The lines are those of the last scrape, which was in the text format, read to its end
    /// and successful.
    complete: bool,
}

impl MetadataLines {
    /// A scrape starts. `families_forgotten`: the metadata just freed slots, which the
    /// remembered lines may name.
    pub fn begin(&mut self, format: Format, families_forgotten: bool) {
        let text = format == Format::PrometheusText;
        let reuse = text && self.complete && !families_forgotten;
        self.complete = false;
        self.cursor = 0;
        self.next_start = 0;
        if reuse {
            self.mode = Mode::Skipping;
        } else {
            self.lines.clear();
            self.text.clear();
            self.mode = if text { Mode::Recording } else { Mode::Off };
        }
    }

    /// The line the next `#` line of the body most likely is; empty when there is none.
    #[inline]
    pub fn expected(&self) -> &[u8] {
        match self.lines.get(self.cursor) {
            Some(line) => self
                .text
                .get(self.next_start..line.end as usize)
                .unwrap_or_default(),
            None => &[],
        }
    }

    /// The parser found the expected line.
    #[inline]
    pub fn took_expected(&mut self, md: &mut TargetMetadata) {
        let Some(&line) = self.lines.get(self.cursor) else {
            return;
        };
        if line.slot != NO_FAMILY {
            md.seen_again(line.slot);
        }
        self.next_start = line.end as usize;
        self.cursor += 1;
    }

    /// A `#` line the parser read the long way: `line` is its bytes
    /// (`Parser::comment_line`), `entry` what it means.
    pub fn read(&mut self, line: &[u8], entry: &Entry<'_>, md: &mut TargetMetadata) {
        if self.mode == Mode::Skipping {
            self.record_skipped(md);
            self.mode = Mode::Recording;
        }
        let slot = md.observe(entry).unwrap_or(NO_FAMILY);
        if self.mode == Mode::Off {
            return;
        }
        let end = self.text.len() + line.len();
        let Ok(end) = u32::try_from(end) else {
            // Gigabytes of comments: not worth remembering.
            self.lines.clear();
            self.text.clear();
            self.mode = Mode::Off;
            return;
        };
        self.text.extend_from_slice(line);
        self.lines.push(KnownLine { end, slot });
        self.cursor += 1;
        self.next_start = self.text.len();
    }

    /// The scrape ended: read to the end of its body (`ok`), or failed.
    pub fn end(&mut self, md: &mut TargetMetadata, ok: bool) {
        if self.mode == Mode::Skipping && (!ok || self.cursor < self.lines.len()) {
            self.record_skipped(md);
        }
        self.complete = ok && self.mode != Mode::Off;
    }

    /// Records the lines passed over in this scrape, in order, and forgets the remembered
    /// lines after them: from here on, lines are recorded and remembered as they come.
    fn record_skipped(&mut self, md: &mut TargetMetadata) {
        let mut start = 0;
        for line in &self.lines[..self.cursor] {
            let end = line.end as usize;
            let bytes = &self.text[start..end];
            // The text parser accepted this line before, so it yields the same entry.
            if let Some(Ok(entry)) = Parser::new(bytes, Format::PrometheusText).next() {
                md.observe(&entry);
            }
            start = end;
        }
        self.lines.truncate(self.cursor);
        self.text.truncate(self.next_start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::series_hash::KnownSeries;
    use proptest::prelude::*;

    /// Reads `body` as the appender does, with the hints; returns how many `#` lines were
    /// passed over.
    fn scrape(
        md: &mut TargetMetadata,
        lines: &mut MetadataLines,
        body: &[u8],
        format: Format,
    ) -> usize {
        let forgot = md.begin_scrape();
        lines.begin(format, forgot);
        let mut parser = Parser::new(body, format);
        let mut skipped = 0;
        let ok = loop {
            let known = &*lines;
            let Some(entry) = parser.next_expecting(KnownSeries::NONE, || known.expected()) else {
                break true;
            };
            let Ok(entry) = entry else {
                break false;
            };
            if matches!(entry, Entry::Sample { .. }) {
                continue;
            }
            if parser.took_expected() {
                skipped += 1;
                lines.took_expected(md);
            } else {
                lines.read(parser.comment_line(), &entry, md);
            }
        };
        lines.end(md, ok);
        skipped
    }

    /// The same body read the plain way: every entry recorded.
    fn scrape_plain(md: &mut TargetMetadata, body: &[u8], format: Format) {
        md.begin_scrape();
        for entry in Parser::new(body, format) {
            let Ok(entry) = entry else { break };
            md.observe(&entry);
        }
    }

    #[test]
    fn an_unchanged_body_is_passed_over_and_a_changed_line_is_read() {
        let mut md = TargetMetadata::default();
        let mut lines = MetadataLines::default();
        let body = b"# HELP a A.\n# TYPE a gauge\na 1\n# comment\n# HELP b B.\nb 2\n";
        assert_eq!(scrape(&mut md, &mut lines, body, Format::PrometheusText), 0);
        assert_eq!(scrape(&mut md, &mut lines, body, Format::PrometheusText), 4);
        assert_eq!(md.get("b").unwrap().help, "B.");
        let changed = b"# HELP a A.\n# TYPE a counter\na 1\n# comment\n# HELP b B.\nb 2\n";
        assert_eq!(
            scrape(&mut md, &mut lines, changed, Format::PrometheusText),
            1
        );
        assert_eq!(
            md.get("a").unwrap().kind,
            crate::scrape::parser::MetricType::Counter
        );
        assert_eq!(
            scrape(&mut md, &mut lines, changed, Format::PrometheusText),
            4
        );
        // OpenMetrics bodies are neither remembered nor passed over.
        let om = b"# HELP a A.\n# TYPE a counter\na_total 1\n# EOF\n";
        assert_eq!(scrape(&mut md, &mut lines, om, Format::OpenMetrics), 0);
        assert_eq!(
            scrape(&mut md, &mut lines, changed, Format::PrometheusText),
            0
        );
        assert_eq!(
            scrape(&mut md, &mut lines, changed, Format::PrometheusText),
            4
        );
    }

    /// Passing over the same lines changes nothing, even when a family's line repeats with
    /// other text and a later body drops or changes one of them.
    #[test]
    fn repeated_lines_of_one_family_end_as_when_read() {
        let mut md = TargetMetadata::default();
        let mut lines = MetadataLines::default();
        let twice = b"# HELP a x\n# HELP a y\na 1\n";
        scrape(&mut md, &mut lines, twice, Format::PrometheusText);
        scrape(&mut md, &mut lines, twice, Format::PrometheusText);
        assert_eq!(md.get("a").unwrap().help, "y");
        scrape(
            &mut md,
            &mut lines,
            b"# HELP a x\na 1\n",
            Format::PrometheusText,
        );
        assert_eq!(md.get("a").unwrap().help, "x");
        scrape(&mut md, &mut lines, twice, Format::PrometheusText);
        scrape(
            &mut md,
            &mut lines,
            b"# HELP a x\nbad line\n",
            Format::PrometheusText,
        );
        assert_eq!(md.get("a").unwrap().help, "x");
    }

    const LINES: &[&str] = &[
        "# HELP a x\n",
        "# HELP a y\n",
        "# TYPE a counter\n",
        "# TYPE a gauge\n",
        "# HELP b x\n",
        "# HELP b x \\\\ y\n",
        "#  HELP  b  z\n",
        "# TYPE b summary\n",
        "  # HELP c x\n",
        "# HELP c\n",
        "# a comment\n",
        "a 1\n",
        "b{l=\"v\"} 2\n",
        "bad line\n",
    ];

    proptest! {
        /// Over any sequence of scrapes of text and OpenMetrics bodies made of the lines
        /// above (families listed, changed, repeated, dropped, failed scrapes, and families
        /// forgotten after ten scrapes without metadata), the metadata read with the hints
        /// is the metadata read the plain way.
        #[test]
        fn hints_change_no_metadata(
            scrapes in proptest::collection::vec(
                (proptest::collection::vec(0..LINES.len(), 0..8), 0..8u8, 1..4usize),
                1..30,
            )
        ) {
            let mut md = TargetMetadata::default();
            let mut lines = MetadataLines::default();
            let mut plain = TargetMetadata::default();
            for (picked, openmetrics, repeat) in scrapes {
                let format = if openmetrics == 0 { Format::OpenMetrics } else { Format::PrometheusText };
                let body: String = picked.iter().map(|&i| LINES[i]).collect();
                // Bodies come again (the case the hints are for) or change.
                for _ in 0..repeat {
                    scrape(&mut md, &mut lines, body.as_bytes(), format);
                    scrape_plain(&mut plain, body.as_bytes(), format);
                    prop_assert_eq!(md.list(), plain.list(), "{:?}", body);
                }
            }
        }
    }
}
