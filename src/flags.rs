//! Command-line flags, with Prometheus's names where the meaning is the same
//! (`--storage.tsdb.path`, `--config.file`, `--log.level`, ...) plus promcore's `--shards`.
//! Both `--flag=value` and `--flag value` are accepted, as Prometheus's kingpin does.

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FlagError {
    #[error("unknown flag {0}; see --help")]
    Unknown(String),
    #[error("flag {0} needs a value")]
    MissingValue(String),
    #[error("flag {flag}: invalid value {value:?}: {reason}")]
    Invalid {
        flag: String,
        value: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    pub config_file: PathBuf,
    pub storage_path: PathBuf,
    /// `None`: one shard per available core.
    pub shards: Option<usize>,
    pub log_level: LogLevel,
    pub snapshot_on_shutdown: bool,
    pub help: bool,
    pub version: bool,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            config_file: PathBuf::from("prometheus.yml"),
            storage_path: PathBuf::from("data/"),
            shards: None,
            log_level: LogLevel::Info,
            snapshot_on_shutdown: true,
            help: false,
            version: false,
        }
    }
}

pub const USAGE: &str = "usage: promcore [flags]

  --config.file=PATH            configuration file (default prometheus.yml)
  --storage.tsdb.path=PATH      data directory (default data/)
  --shards=N                    storage shards, one pinned core each (default: one per core);
                                fixed when the data directory is created
  --[no-]storage.tsdb.snapshot-on-shutdown
                                write a head snapshot on clean shutdown (default on)
  --log.level=LEVEL             debug, info, warn or error (default info)
  --version                     print the version
  -h, --help                    this text
";

impl Flags {
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Flags, FlagError> {
        let mut f = Flags::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<String, FlagError> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => args
                        .next()
                        .ok_or_else(|| FlagError::MissingValue(name.to_string())),
                }
            };
            match name.as_str() {
                "-h" | "--help" => f.help = true,
                "--version" => f.version = true,
                "--config.file" => f.config_file = PathBuf::from(value(&name)?),
                "--storage.tsdb.path" => f.storage_path = PathBuf::from(value(&name)?),
                "--storage.tsdb.snapshot-on-shutdown" => f.snapshot_on_shutdown = true,
                "--no-storage.tsdb.snapshot-on-shutdown" => f.snapshot_on_shutdown = false,
                "--shards" => {
                    let v = value(&name)?;
                    let n: usize =
                        v.parse()
                            .map_err(|e: std::num::ParseIntError| FlagError::Invalid {
                                flag: name.clone(),
                                value: v.clone(),
                                reason: e.to_string(),
                            })?;
                    if n == 0 || n > 1024 {
                        return Err(FlagError::Invalid {
                            flag: name,
                            value: v,
                            reason: "must be 1..=1024".into(),
                        });
                    }
                    f.shards = Some(n);
                }
                "--log.level" => {
                    let v = value(&name)?;
                    f.log_level = match v.as_str() {
                        "debug" => LogLevel::Debug,
                        "info" => LogLevel::Info,
                        "warn" => LogLevel::Warn,
                        "error" => LogLevel::Error,
                        _ => {
                            return Err(FlagError::Invalid {
                                flag: name,
                                value: v,
                                reason: "one of debug, info, warn, error".into(),
                            })
                        }
                    };
                }
                _ => return Err(FlagError::Unknown(arg)),
            }
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Flags, FlagError> {
        Flags::parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn both_forms() {
        let f = parse(&[
            "--storage.tsdb.path=/x",
            "--shards",
            "3",
            "--log.level=debug",
        ])
        .unwrap();
        assert_eq!(f.storage_path, PathBuf::from("/x"));
        assert_eq!(f.shards, Some(3));
        assert_eq!(f.log_level, LogLevel::Debug);
    }

    #[test]
    fn errors_name_the_flag() {
        assert_eq!(parse(&["--nope"]), Err(FlagError::Unknown("--nope".into())));
        assert_eq!(
            parse(&["--shards"]),
            Err(FlagError::MissingValue("--shards".into()))
        );
        assert!(parse(&["--shards=0"])
            .unwrap_err()
            .to_string()
            .contains("--shards"));
    }
}
