//! `promcore tsdb ...`: the offline storage tools, promtool's `tsdb` commands for a promcore
//! data directory. `create-blocks-from openmetrics` backfills from an OpenMetrics file
//! (`create_blocks`); `import` migrates a Prometheus data directory (`import`).
//!
//! This module owns the command lines, the data directory's shard count for them and what
//! they print. It never runs beside a server on the same directory (the data directory's
//! lock refuses that) and holds no storage logic of its own (that is `shards::backfill` and
//! `shards::import`).

mod block_table;
mod create_blocks;
mod import;

use std::io::Write;
use std::path::{Path, PathBuf};

use shards::block::Block;
use shards::data_dir::DataDir;

use block_table::BlockRow;

pub const USAGE: &str = "\
usage: promcore tsdb create-blocks-from openmetrics [flags] <input file> [<data dir>]
       promcore tsdb import [flags] <prometheus data dir> [<data dir>]

create-blocks-from openmetrics: import samples from an OpenMetrics file, as promtool does,
  into blocks of a promcore data directory, each series in the shard its labels hash to.
import: rewrite every block (tombstones applied) and the WAL of a Prometheus data
  directory into a promcore data directory's shards.

Flags:
  -r, --human-readable        print human readable values
  -q, --quiet                 do not print created blocks
      --max-block-duration=D  (create-blocks-from) longest block to create (default 2h;
                              rounded down to 2h x 3^k)
      --shards=N              shard count of a new data directory (default: the existing
                              directory's, else one per core); must match an existing one
The data directory defaults to data/.
";

/// Flags and arguments common to the subcommands.
struct Args {
    human: bool,
    quiet: bool,
    max_block_duration: Option<i64>,
    shards: Option<usize>,
    positional: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        human: false,
        quiet: false,
        max_block_duration: None,
        shards: None,
        positional: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |flag: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("flag {flag} needs a value"))
        };
        match name {
            "-r" | "--human-readable" => a.human = true,
            "-q" | "--quiet" => a.quiet = true,
            "--max-block-duration" => {
                let v = value(name)?;
                let ms = crate::promql::duration_expr::parse_duration(&v)
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| format!("invalid --max-block-duration {v:?}"))?;
                a.max_block_duration = Some(ms);
            }
            "--shards" => {
                let v = value(name)?;
                let n = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1024).contains(n))
                    .ok_or_else(|| format!("invalid --shards {v:?}: 1 to 1024"))?;
                a.shards = Some(n);
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown flag {s}")),
            _ => a.positional.push(arg.clone()),
        }
    }
    Ok(a)
}

/// A subcommand's body: its parsed arguments and where to print; the error is printed.
type Subcommand = fn(&Args, &mut dyn Write) -> Result<(), String>;

/// `promcore tsdb ARGS...`; returns the exit code.
pub fn main(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let words: Vec<&str> = args.iter().take(2).map(String::as_str).collect();
    let (rest, run): (&[String], Subcommand) = match words.as_slice() {
        ["create-blocks-from", "openmetrics", ..] => (&args[2..], create_blocks::run),
        ["import", ..] => (&args[1..], import::run),
        _ => {
            let _ = err.write_all(USAGE.as_bytes());
            return 2;
        }
    };
    let parsed = match parse_args(rest) {
        Ok(a) if (1..=2).contains(&a.positional.len()) => a,
        Ok(_) | Err(_) if rest.iter().any(|a| a == "-h" || a == "--help") => {
            let _ = out.write_all(USAGE.as_bytes());
            return 0;
        }
        Ok(_) => {
            let _ = writeln!(
                err,
                "expected an input and an optional data directory\n{USAGE}"
            );
            return 2;
        }
        Err(e) => {
            let _ = writeln!(err, "{e}\n{USAGE}");
            return 2;
        }
    };
    match run(&parsed, out) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "{e}");
            1
        }
    }
}

impl Args {
    fn data_dir(&self) -> PathBuf {
        PathBuf::from(self.positional.get(1).map_or("data/", String::as_str))
    }

    /// The shard count to use: `--shards`, which must match an existing directory's, else the
    /// existing directory's, else one per core (the server's default). Checked before any
    /// input is read, so that a mismatch costs nothing.
    fn shard_count(&self, data: &Path) -> Result<usize, String> {
        let recorded = DataDir::recorded_shards(data);
        match (self.shards, recorded) {
            (Some(n), Some(r)) if n != r => Err(format!(
                "data directory {} was created with {r} shards but --shards is {n}: use \
                 --shards {r} (series are placed by hash, so the count cannot change in place)",
                data.display()
            )),
            (Some(n), _) => Ok(n),
            (None, Some(r)) => Ok(r),
            (None, None) => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        }
    }
}

/// Opens (creating if needed, with promcore.json) and locks the data directory.
fn open_data_dir(path: &Path, shards: usize) -> Result<(DataDir, Vec<PathBuf>), String> {
    let data = DataDir::open(path, shards).map_err(|e| e.to_string())?;
    let dirs = (0..shards).map(|i| data.shard_dir(i)).collect();
    Ok((data, dirs))
}

/// Prints the table of written blocks, as promtool prints the blocks it created.
fn print_blocks(
    blocks: &[shards::backfill::WrittenBlock],
    human: bool,
    out: &mut dyn Write,
) -> Result<(), String> {
    if blocks.is_empty() {
        return Ok(());
    }
    let rows: Vec<BlockRow> = blocks
        .iter()
        .map(|b| BlockRow {
            ulid: b.meta.ulid.clone(),
            shard: b.shard,
            min_time: b.meta.min_time,
            max_time: b.meta.max_time,
            samples: b.meta.stats.num_samples,
            chunks: b.meta.stats.num_chunks,
            series: b.meta.stats.num_series,
            size: Block::open(&b.dir).map_or(0, |o| o.size()),
        })
        .collect();
    out.write_all(block_table::render(&rows, human).as_bytes())
        .map_err(|e| format!("writing the block list: {e}"))
}
