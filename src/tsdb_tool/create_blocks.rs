//! `promcore tsdb create-blocks-from openmetrics INPUT [DATA_DIR]`: promtool's backfill into
//! a promcore data directory.
//!
//! The input is mapped, not read into memory, and parsed once with the scrape parser in
//! OpenMetrics mode (so `# EOF` is required, as by promtool); each distinct series line is
//! decoded into labels once (a cache keyed by its raw bytes, as the scrape cache does).
//! Samples go to `shards::backfill`, which applies promtool's windowing, ordering and
//! de-duplication rules. Errors carry promtool's prefixes (`getting min and max timestamp:
//! ...`, `block creation: process blocks: add sample: ...`) and are found before anything
//! is written: a failed run creates no block, and no data directory.
//!
//! It never writes while a server has the directory open (the data directory lock).

use std::fs::File;
use std::io::Write;

use ahash::AHashMap;
use shards::backfill::{compatible_block_duration, Backfill, DEFAULT_BLOCK_DURATION};
use shards::labels::Labels;

use crate::scrape::parser::{Entry, Format, LabelPairs, Parser};

use super::{open_data_dir, print_blocks, Args};

pub(super) fn run(args: &Args, out: &mut dyn Write) -> Result<(), String> {
    let input = &args.positional[0];
    let data_path = args.data_dir();
    let shards = args.shard_count(&data_path)?;
    let block_duration = args
        .max_block_duration
        .map_or(DEFAULT_BLOCK_DURATION, compatible_block_duration);
    let file = File::open(input).map_err(|e| format!("open {input}: {e}"))?;
    // SAFETY: the mapping is only read; a file truncated underneath would fault, as
    // promtool's own mmap of its input would.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("mmap {input}: {e}"))?;
    let _ = map.advise(memmap2::Advice::Sequential);
    let mut backfill = Backfill::new(block_duration, shards);
    read_samples(&map, &mut backfill)?;
    if let Some(e) = backfill.error() {
        return Err(format!("block creation: process blocks: add sample: {e}"));
    }
    let (data, dirs) = open_data_dir(&data_path, shards)?;
    let written = backfill
        .write(&dirs)
        .map_err(|e| format!("block creation: process blocks: flush: {e}"))?;
    if !args.quiet {
        print_blocks(&written, args.human, out)?;
    }
    data.close()
        .map_err(|e| format!("releasing {}: {e}", data_path.display()))
}

/// Parses the whole input into `backfill`; the first syntax error or sample without a
/// timestamp ends it, with promtool's first-pass message.
fn read_samples(body: &[u8], backfill: &mut Backfill) -> Result<(), String> {
    const PASS: &str = "getting min and max timestamp";
    let mut parser = Parser::new(body, Format::OpenMetrics);
    let mut ids: AHashMap<&[u8], u32> = AHashMap::new();
    let mut last: (&[u8], u32) = (&[], u32::MAX);
    let mut pairs: LabelPairs<'_> = Vec::new();
    while let Some(entry) = parser.next() {
        let (series, value, t) = match entry {
            Ok(Entry::Sample {
                series,
                value,
                timestamp_ms,
            }) => (series, value, timestamp_ms),
            Ok(_) => continue,
            Err(e) => return Err(format!("{PASS}: next: {e}")),
        };
        let id = if last.1 != u32::MAX && series == last.0 {
            last.1
        } else if let Some(&id) = ids.get(series) {
            id
        } else {
            pairs.clear();
            parser
                .labels(series, &mut pairs)
                .map_err(|e| format!("{PASS}: next: {e}"))?;
            let labels = Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_ref(), v.as_ref())))
                .map_err(|e| format!("{PASS}: line {}: {e}", parser.line()))?;
            let id = backfill.series_id(labels);
            ids.insert(series, id);
            id
        };
        last = (series, id);
        let Some(t) = t else {
            return Err(format!("{PASS}: expected timestamp for series got none"));
        };
        backfill.append(id, t, value);
    }
    Ok(())
}
