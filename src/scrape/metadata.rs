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
#[derive(Debug, Default)]
pub struct TargetMetadata {
    /// Looked up for every HELP/TYPE/UNIT line of every scrape: ahash, not SipHash (which
    /// cost ~50 instructions per scraped sample on a node_exporter body).
    families: HashMap<String, Family, ahash::RandomState>,
    scrape: u64,
}

pub type SharedMetadata = Rc<RefCell<TargetMetadata>>;

impl TargetMetadata {
    /// A new scrape starts: forgets families whose metadata was not seen for too long.
    pub fn begin_scrape(&mut self) {
        self.scrape += 1;
        let now = self.scrape;
        self.families
            .retain(|_, f| now.saturating_sub(f.last_scrape) <= KEEP_SCRAPES);
    }

    /// Records a `# TYPE`, `# HELP` or `# UNIT` line; other entries are ignored.
    pub fn observe(&mut self, entry: &Entry<'_>) {
        let metric = match entry {
            Entry::Type { metric, .. }
            | Entry::Help { metric, .. }
            | Entry::Unit { metric, .. } => *metric,
            _ => return,
        };
        let scrape = self.scrape;
        // One lookup for the usual case, a family seen before; a key is allocated only for a
        // new family.
        let family = match self.families.get_mut(metric) {
            Some(f) => f,
            None => self.families.entry(metric.to_string()).or_insert(Family {
                kind: MetricType::Unknown,
                help: String::new(),
                unit: String::new(),
                last_scrape: scrape,
            }),
        };
        family.last_scrape = scrape;
        match entry {
            Entry::Type { kind, .. } => family.kind = *kind,
            Entry::Help { text, .. } if family.help != **text => family.help = text.to_string(),
            Entry::Unit { unit, .. } if family.unit != *unit => family.unit = unit.to_string(),
            _ => {}
        }
    }

    /// Every family's metadata, sorted by name.
    pub fn list(&self) -> Vec<MetricMetadata> {
        let mut all: Vec<MetricMetadata> = self
            .families
            .iter()
            .map(|(name, f)| to_metadata(name, f))
            .collect();
        all.sort_by(|a, b| a.metric.cmp(&b.metric));
        all
    }

    /// One family's metadata.
    pub fn get(&self, metric: &str) -> Option<MetricMetadata> {
        self.families.get(metric).map(|f| to_metadata(metric, f))
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
}
