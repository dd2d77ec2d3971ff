//! The metric metadata of one target: the `# TYPE`, `# HELP` and `# UNIT` lines of its scrapes,
//! per metric family, as Prometheus's scrape cache keeps them for `/api/v1/metadata` and
//! `/api/v1/targets/metadata`. A family stays listed for 10 scrapes after its last
//! metadata line, as in Prometheus, so a family that comes and goes does not flicker.
//!
//! It only records what the parser yields; it never touches samples or storage. The scrape
//! loop writes it and the API reads it, both on the router executor, hence `Rc<RefCell<_>>`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::scrape::parser::{Entry, MetricType};

/// Scrapes a family is kept after its metadata was last seen (Prometheus's scrape cache).
const KEEP_SCRAPES: u64 = 10;

/// One metric family's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricMetadata {
    pub metric: String,
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

#[derive(Debug, Clone)]
struct Family {
    kind: MetricType,
    help: String,
    unit: String,
    last_scrape: u64,
}

/// A target's metadata, shared between its scrape loop and the API.
///
/// Families live in a slab in the order a scrape first listed them, and a target lists them
/// in the same order every time, its HELP and TYPE lines side by side: a metadata line's
/// family is nearly always the previous line's or the next one in the slab, found by
/// comparing one name instead of hashing it (the hash cost ~50 instructions per scraped
/// sample on a node_exporter body with SipHash, still ~15 with ahash).
#[derive(Debug, Default)]
pub struct TargetMetadata {
    /// Family name → slot; consulted only when the hint misses.
    index: HashMap<String, u32, ahash::RandomState>,
    /// The slab: a free slot has an empty name (no metric name is empty).
    names: Vec<String>,
    families: Vec<Family>,
    free: Vec<u32>,
    /// The slot of the family of the last metadata line.
    last: u32,
    scrape: u64,
}

pub type SharedMetadata = Rc<RefCell<TargetMetadata>>;

impl TargetMetadata {
    /// A new scrape starts: forgets families whose metadata was not seen for too long.
    /// Returns whether any was forgotten (its slot may then be reused by another family).
    pub fn begin_scrape(&mut self) -> bool {
        self.scrape += 1;
        let now = self.scrape;
        let mut forgot = false;
        for slot in 0..self.names.len() {
            let stale = now.saturating_sub(self.families[slot].last_scrape) > KEEP_SCRAPES;
            if stale && !self.names[slot].is_empty() {
                let name = std::mem::take(&mut self.names[slot]);
                self.index.remove(&name);
                self.free.push(slot as u32);
                forgot = true;
            }
        }
        // The first family of a scrape is the slab's first, as it was last time.
        self.last = 0;
        forgot
    }

    /// Records a `# TYPE`, `# HELP` or `# UNIT` line and returns its family's slot; other
    /// entries are ignored.
    pub fn observe(&mut self, entry: &Entry<'_>) -> Option<u32> {
        let metric = match entry {
            Entry::Type { metric, .. }
            | Entry::Help { metric, .. }
            | Entry::Unit { metric, .. } => *metric,
            _ => return None,
        };
        let slot = self.slot(metric);
        let family = &mut self.families[slot];
        family.last_scrape = self.scrape;
        match entry {
            Entry::Type { kind, .. } => family.kind = *kind,
            Entry::Help { text, .. } if family.help != **text => family.help = text.to_string(),
            Entry::Unit { unit, .. } if family.unit != *unit => family.unit = unit.to_string(),
            _ => {}
        }
        Some(slot as u32)
    }

    /// A metadata line of family `slot` that changes nothing was seen again in this scrape
    /// (see `MetadataLines`): the family stays listed, and is the hint for the next line.
    #[inline]
    pub fn seen_again(&mut self, slot: u32) {
        if let Some(family) = self.families.get_mut(slot as usize) {
            family.last_scrape = self.scrape;
            self.last = slot;
        }
    }

    /// The slot of `metric`'s family, created if new: the last line's family, the next
    /// one in the slab, or else the index's answer. A live slot's name is unique, so an
    /// equal name is the slot the index would give.
    #[inline]
    fn slot(&mut self, metric: &str) -> usize {
        let last = self.last as usize;
        let slot = if self.names.get(last).is_some_and(|n| n == metric) {
            last
        } else if self.names.get(last + 1).is_some_and(|n| n == metric) {
            last + 1
        } else {
            self.lookup_or_insert(metric)
        };
        self.last = slot as u32;
        slot
    }

    #[cold]
    fn lookup_or_insert(&mut self, metric: &str) -> usize {
        if let Some(&slot) = self.index.get(metric) {
            return slot as usize;
        }
        let family = Family {
            kind: MetricType::Unknown,
            help: String::new(),
            unit: String::new(),
            last_scrape: self.scrape,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.names[slot as usize] = metric.to_string();
                self.families[slot as usize] = family;
                slot
            }
            None => {
                self.names.push(metric.to_string());
                self.families.push(family);
                (self.names.len() - 1) as u32
            }
        };
        self.index.insert(metric.to_string(), slot);
        slot as usize
    }

    fn live(&self) -> impl Iterator<Item = (&str, &Family)> {
        self.names
            .iter()
            .zip(&self.families)
            .filter(|(name, _)| !name.is_empty())
            .map(|(name, f)| (name.as_str(), f))
    }

    /// Every family's metadata, sorted by name.
    pub fn list(&self) -> Vec<MetricMetadata> {
        let mut all: Vec<MetricMetadata> =
            self.live().map(|(name, f)| to_metadata(name, f)).collect();
        all.sort_by(|a, b| a.metric.cmp(&b.metric));
        all
    }

    /// One family's metadata.
    pub fn get(&self, metric: &str) -> Option<MetricMetadata> {
        let slot = *self.index.get(metric)? as usize;
        Some(to_metadata(metric, &self.families[slot]))
    }
}

fn to_metadata(name: &str, f: &Family) -> MetricMetadata {
    MetricMetadata {
        metric: name.to_string(),
        kind: f.kind,
        help: f.help.clone(),
        unit: f.unit.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::parser::{Format, Parser};

    fn scrape(md: &mut TargetMetadata, body: &str, format: Format) {
        md.begin_scrape();
        for e in Parser::new(body.as_bytes(), format) {
            md.observe(&e.unwrap());
        }
    }

    #[test]
    fn records_type_help_and_unit_per_family() {
        let mut md = TargetMetadata::default();
        scrape(
            &mut md,
            "# HELP a_total Things.\n# TYPE a_total counter\na_total 1\n# HELP b Only help.\nb 2\nc 3\n",
            Format::PrometheusText,
        );
        let list = md.list();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].metric, "a_total");
        assert_eq!(list[0].kind, MetricType::Counter);
        assert_eq!(list[0].help, "Things.");
        assert_eq!(list[1].kind, MetricType::Unknown);
        assert_eq!(list[1].help, "Only help.");
        assert!(md.get("c").is_none());
    }

    #[test]
    fn openmetrics_unit_and_expiry_after_ten_scrapes() {
        let mut md = TargetMetadata::default();
        scrape(
            &mut md,
            "# TYPE d_seconds gauge\n# UNIT d_seconds seconds\nd_seconds 1\n# EOF\n",
            Format::OpenMetrics,
        );
        assert_eq!(md.get("d_seconds").unwrap().unit, "seconds");
        for _ in 0..KEEP_SCRAPES {
            scrape(&mut md, "x 1\n", Format::PrometheusText);
        }
        assert!(md.get("d_seconds").is_some());
        scrape(&mut md, "x 1\n", Format::PrometheusText);
        assert!(md.get("d_seconds").is_none());
    }

    /// The slab and its hints against a plain map of the same rules, over scrapes that
    /// list families in changing orders, drop some and bring them back after expiry.
    #[test]
    fn slab_agrees_with_a_map() {
        use proptest::prelude::*;
        let line = (0..6usize, 0..3u8, 0..3u8);
        let scrapes = proptest::collection::vec(proptest::collection::vec(line, 0..10), 1..30);
        proptest!(|(scrapes in scrapes)| {
            let mut md = TargetMetadata::default();
            let mut model: HashMap<String, (MetricType, String, u64)> = HashMap::new();
            for (n, lines) in scrapes.iter().enumerate() {
                let now = n as u64 + 1;
                md.begin_scrape();
                model.retain(|_, f| now - f.2 <= KEEP_SCRAPES);
                for &(family, what, text) in lines {
                    let metric = ["a", "b", "c", "d", "e", "f"][family];
                    let text = ["x", "y", ""][usize::from(text)];
                    let entry = match what {
                        0 => Entry::Type { metric, kind: MetricType::Gauge },
                        1 => Entry::Help { metric, text: text.into() },
                        _ => Entry::Unit { metric, unit: text },
                    };
                    md.observe(&entry);
                    let f = model
                        .entry(metric.to_string())
                        .or_insert((MetricType::Unknown, String::new(), now));
                    f.2 = now;
                    if what == 0 {
                        f.0 = MetricType::Gauge;
                    } else if what == 1 {
                        f.1 = text.to_string();
                    }
                }
                let mut want: Vec<(String, MetricType, String)> = model
                    .iter()
                    .map(|(m, f)| (m.clone(), f.0, f.1.clone()))
                    .collect();
                want.sort_by(|a, b| a.0.cmp(&b.0));
                let got: Vec<(String, MetricType, String)> =
                    md.list().into_iter().map(|m| (m.metric, m.kind, m.help)).collect();
                prop_assert_eq!(got, want);
            }
        });
    }
}
