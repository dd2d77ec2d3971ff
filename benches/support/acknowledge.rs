//! The shards' side of a first scrape, for the benchmarks of the scrape path: every new
//! series of the batches gets a ref, as a shard would answer, so later scrapes are cached.

use promcore::scrape::append::{ScrapeAppender, ShardBatches};
use shards::head::AppendOutcome;

/// Assigns refs to every new series of `out`, as the shards would.
pub fn acknowledge(a: &mut ScrapeAppender, out: &mut ShardBatches) {
    let mut next = 0u64;
    let outcomes: Vec<Option<AppendOutcome>> = out
        .batches
        .iter()
        .map(|b| {
            Some(AppendOutcome {
                series_refs: b
                    .new_series
                    .iter()
                    .map(|_| {
                        next += 1;
                        next
                    })
                    .collect(),
                ..Default::default()
            })
        })
        .collect();
    a.commit(out, &outcomes);
}
