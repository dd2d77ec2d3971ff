//! `promcore tsdb import PROMETHEUS_DATA_DIR [DATA_DIR]`: migration from Prometheus. The
//! rewriting is `shards::import`; this prints what was written, the blocks skipped (corrupt
//! or unreadable: reported, never fatal) and what the WAL gave.

use std::io::Write;
use std::path::Path;

use super::{open_data_dir, print_blocks, Args};

pub(super) fn run(args: &Args, out: &mut dyn Write) -> Result<(), String> {
    let src = Path::new(&args.positional[0]);
    if !src.is_dir() {
        return Err(format!("{} is not a directory", src.display()));
    }
    let data_path = args.data_dir();
    let shards = args.shard_count(&data_path)?;
    let (data, dirs) = open_data_dir(&data_path, shards)?;
    let report = shards::import::import(src, &dirs).map_err(|e| format!("import: {e}"))?;
    for (dir, e) in &report.skipped {
        eprintln!("skipping block {}: {e}", dir.display());
    }
    if let Some(e) = &report.wal_error {
        eprintln!(
            "the WAL of {} is corrupt; replayed up to the corruption: {e}",
            src.display()
        );
    }
    let written: Vec<_> = report
        .blocks
        .into_iter()
        .flat_map(|(_, w)| w)
        .chain(report.wal_blocks)
        .collect();
    if !args.quiet {
        print_blocks(&written, args.human, out)?;
        let _ = writeln!(
            out,
            "{} blocks written ({} samples from the WAL), {} source blocks skipped",
            written.len(),
            report.wal_samples,
            report.skipped.len()
        );
    }
    data.close()
        .map_err(|e| format!("releasing {}: {e}", data_path.display()))
}
