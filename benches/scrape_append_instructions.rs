//! The router's cost per cached sample in instructions rather than seconds, for a shared or
//! noisy machine: appends the bench body of `scrape_append` N times (after a first scrape
//! whose refs are acknowledged), so that the instructions of N2 − N1 runs under
//! `valgrind --tool=callgrind`, divided by (N2 − N1) × samples per body, are those of the
//! cached path alone, whatever else the machine runs. BENCHMARKS.md has the command.

use promcore::scrape::append::{ScrapeAppender, SeriesRules, ShardBatches};
use promcore::scrape::parser::Format;
use shards::labels::Labels;

#[path = "support/node_body.rs"]
mod node_body;

#[path = "support/acknowledge.rs"]
mod acknowledge;
use acknowledge::acknowledge;

// The server's allocator, so allocation counts as it does there.
#[global_allocator]
static GLOBAL: promcore::transient_heap::ServerAllocator =
    promcore::transient_heap::ServerAllocator;

fn main() {
    // `cargo bench` passes `--bench`; the first number on the command line is N.
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let (body, samples) = node_body::body(Format::PrometheusText);
    let rules = SeriesRules {
        target_labels: Labels::from_pairs([("instance", "10.0.0.1:9100"), ("job", "node")])
            .unwrap_or_default(),
        honor_timestamps: true,
        ..Default::default()
    };
    let mut a = ScrapeAppender::new(rules);
    let mut out = ShardBatches::new(2);
    if let Err(e) = a.append_body(body.as_bytes(), Format::PrometheusText, 0, &mut out) {
        panic!("the bench body does not parse: {e}");
    }
    acknowledge(&mut a, &mut out);
    let mut appended = 0;
    for i in 1..=n {
        let t = i as i64 * 15_000;
        if a.append_body(body.as_bytes(), Format::PrometheusText, t, &mut out)
            .is_ok()
        {
            appended += out.samples();
        }
    }
    println!("{n} cached scrapes of {samples} samples: {appended} samples appended");
}
