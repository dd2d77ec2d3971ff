//! loadgen's command line: `loadgen serve [flags]`, `loadgen bench [flags]` (parsed by
//! `bench::options`), `--help`, `--version`.
//!
//! Both `--flag=value` and `--flag value` are accepted, as in promcore. Everything a flag
//! could get wrong (port ranges running past 65535, addresses leaving 127.0.0.0/8, shapes
//! that cannot be built) is refused here, before any socket is opened.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FlagError {
    #[error("unknown command {0:?}; see --help")]
    UnknownCommand(String),
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
    #[error(
        "--base-port and --port exclude each other: one port per target, or one address per target"
    )]
    PortAndBasePort,
    #[error("{targets} targets from port {base} run past port 65535; lower --base-port or --targets, or use --port with one address per target")]
    PortsExhausted { targets: usize, base: u16 },
    #[error(
        "{targets} addresses from {first} leave its /8 network; lower --targets or start lower"
    )]
    AddressesExhausted { targets: usize, first: Ipv4Addr },
}

pub const USAGE: &str = "usage: loadgen serve [flags]
       loadgen bench [flags]   (the ingestion benchmark; see loadgen bench --help)

Simulates exporters on loopback: every target serves an evolving /metrics body
(counters, gauges, histograms, summaries, an info metric) over HTTP/1.1 keep-alive.

  --targets=N               simulated targets (default 10)
  --series-per-target=M     series per target, the info metric included (default 1000)
  --labels=K                label dimensions per series besides pod/le/quantile, 0..8 (default 2)
  --label-values=V          distinct values per dimension: a family holds up to V^K
                            label sets (default 4)
  --listen=ADDR             IPv4 address of the first target (default 127.0.0.1)
  --base-port=P             target i listens on ADDR:P+i (default 20000; 0: any free port)
  --port=P                  target i listens on (ADDR+i):P instead, e.g. 127.0.0.1:9100,
                            127.0.0.2:9100, ... (all of 127.0.0.0/8 is loopback on Linux)
  --format=text|openmetrics text: always text 0.0.4, as most exporters; openmetrics: serve
                            OpenMetrics to scrapers that ask for it (default text)
  --gzip-level=0..9         gzip level when a scraper asks for gzip; 0 stores without
                            compressing; 1..9 search matches harder, once per template
                            (a scrape costs the same at every level) (default 1)
  --churn=PER_MIN           series replaced per minute on each target (default 0)
  --sd-file=PATH            file_sd targets file to write (default loadgen-targets.json)
  --cores=N                 glommio executors, one per core (default: every core)
  --pin=true|false          pin each executor to its core; false leaves placement to the
                            kernel, which then moves them off a core a server saturates
                            (default true)
  --report-every=SECONDS    CPU report period (default 10)
  --seed=N                  seed of the simulated values (default 1)

  loadgen --version | --help
";

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Serve(ServeFlags),
    Bench(Box<crate::bench::options::BenchFlags>),
    Help,
    BenchHelp,
    Version,
}

/// How targets get distinct socket addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// One address, consecutive ports (`0`: the OS picks each port).
    Ports { base: u16 },
    /// Consecutive addresses, one port.
    Addresses { port: u16 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServeFlags {
    pub targets: usize,
    pub series_per_target: usize,
    pub labels: usize,
    pub label_values: usize,
    pub listen: Ipv4Addr,
    pub addressing: Addressing,
    pub offer_openmetrics: bool,
    pub gzip_level: u32,
    pub churn_per_minute: f64,
    pub sd_file: PathBuf,
    pub cores: Option<usize>,
    pub pin: bool,
    pub report_every: Duration,
    pub seed: u64,
}

impl Default for ServeFlags {
    fn default() -> Self {
        ServeFlags {
            targets: 10,
            series_per_target: 1000,
            labels: 2,
            label_values: 4,
            listen: Ipv4Addr::LOCALHOST,
            addressing: Addressing::Ports { base: 20000 },
            offer_openmetrics: false,
            gzip_level: 1,
            churn_per_minute: 0.0,
            sd_file: PathBuf::from("loadgen-targets.json"),
            cores: None,
            pin: true,
            report_every: Duration::from_secs(10),
            seed: 1,
        }
    }
}

impl ServeFlags {
    /// The address target `i` binds. In range for every `i < targets` once parsed.
    pub fn target_addr(&self, i: usize) -> SocketAddr {
        match self.addressing {
            Addressing::Ports { base: 0 } => SocketAddr::from((self.listen, 0)),
            Addressing::Ports { base } => SocketAddr::from((self.listen, base + i as u16)),
            Addressing::Addresses { port } => {
                let ip = Ipv4Addr::from(u32::from(self.listen) + i as u32);
                SocketAddr::from((ip, port))
            }
        }
    }
}

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, FlagError> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        None | Some("-h" | "--help" | "help") => return Ok(Command::Help),
        Some("--version") => return Ok(Command::Version),
        Some("serve") => {}
        Some("bench") => {
            return Ok(match crate::bench::options::parse(args)? {
                Some(f) => Command::Bench(Box::new(f)),
                None => Command::BenchHelp,
            })
        }
        Some(other) => return Err(FlagError::UnknownCommand(other.to_string())),
    }
    let mut f = ServeFlags::default();
    let mut base_port = None;
    let mut port = None;
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| FlagError::MissingValue(name.clone()))?,
        };
        let invalid = |reason: &str| FlagError::Invalid {
            flag: name.clone(),
            value: value.clone(),
            reason: reason.to_string(),
        };
        let count = |min: usize, max: usize| -> Result<usize, FlagError> {
            whole_number(&value, min, max).map_err(|reason| invalid(&reason))
        };
        match name.as_str() {
            "--targets" => f.targets = count(1, 1_000_000)?,
            "--series-per-target" => f.series_per_target = count(1, 10_000_000)?,
            "--labels" => f.labels = count(0, 8)?,
            "--label-values" => f.label_values = count(1, 1000)?,
            "--listen" => {
                f.listen = value
                    .parse()
                    .map_err(|_| invalid("expected an IPv4 address"))?
            }
            "--base-port" => base_port = Some(count(0, 65535)? as u16),
            "--port" => port = Some(count(0, 65535)? as u16),
            "--format" => f.offer_openmetrics = openmetrics(&value).map_err(|r| invalid(&r))?,
            "--gzip-level" => f.gzip_level = count(0, 9)? as u32,
            "--churn" => f.churn_per_minute = churn_per_minute(&value).map_err(|r| invalid(&r))?,
            "--sd-file" => f.sd_file = PathBuf::from(&value),
            "--cores" => f.cores = Some(count(1, 1024)?),
            "--pin" => {
                f.pin = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("expected true or false")),
                }
            }
            "--report-every" => {
                f.report_every = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.1 && *s <= 86400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| invalid("expected seconds from 0.1 to 86400"))?
            }
            "--seed" => {
                f.seed = value
                    .parse()
                    .map_err(|_| invalid("expected a whole number"))?
            }
            _ => return Err(FlagError::Unknown(name)),
        }
    }
    f.addressing = match (base_port, port) {
        (Some(_), Some(_)) => return Err(FlagError::PortAndBasePort),
        (Some(base), None) => Addressing::Ports { base },
        (None, Some(port)) => Addressing::Addresses { port },
        (None, None) => f.addressing,
    };
    match f.addressing {
        Addressing::Ports { base } if base > 0 && base as usize + f.targets - 1 > 65535 => {
            return Err(FlagError::PortsExhausted {
                targets: f.targets,
                base,
            })
        }
        Addressing::Addresses { .. } => {
            let first = u32::from(f.listen);
            let last = first as u64 + f.targets as u64 - 1;
            if last >> 24 != u64::from(first >> 24) {
                return Err(FlagError::AddressesExhausted {
                    targets: f.targets,
                    first: f.listen,
                });
            }
        }
        _ => {}
    }
    Ok(Command::Serve(f))
}

/// A whole number in `min..=max`, or why not (the flag parsers of `serve` and `bench`).
pub(crate) fn whole_number(value: &str, min: usize, max: usize) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("expected a whole number from {min} to {max}"))
}

/// `--format`: whether the bodies are OpenMetrics (else text 0.0.4).
pub(crate) fn openmetrics(value: &str) -> Result<bool, String> {
    match value {
        "text" => Ok(false),
        "openmetrics" => Ok(true),
        _ => Err("expected text or openmetrics".to_string()),
    }
}

/// `--churn`: series replaced per minute on each target.
pub(crate) fn churn_per_minute(value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|c| c.is_finite() && *c >= 0.0)
        .ok_or_else(|| "expected series per minute, 0 or more".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServeFlags, FlagError> {
        let all = std::iter::once("serve").chain(args.iter().copied());
        match parse(all.map(String::from))? {
            Command::Serve(f) => Ok(f),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_and_both_value_styles() {
        assert_eq!(serve(&[]).unwrap(), ServeFlags::default());
        let f = serve(&[
            "--targets=3",
            "--series-per-target",
            "50",
            "--format=openmetrics",
            "--churn",
            "12.5",
            "--sd-file=/tmp/x.json",
            "--gzip-level=0",
            "--base-port=0",
            "--pin=false",
        ])
        .unwrap();
        assert!(!f.pin);
        assert!(ServeFlags::default().pin);
        assert_eq!(f.targets, 3);
        assert_eq!(f.series_per_target, 50);
        assert!(f.offer_openmetrics);
        assert_eq!(f.churn_per_minute, 12.5);
        assert_eq!(f.gzip_level, 0);
        assert_eq!(f.sd_file, PathBuf::from("/tmp/x.json"));
        assert_eq!(f.target_addr(2), "127.0.0.1:0".parse().unwrap());
    }

    #[test]
    fn addressing() {
        let f = serve(&["--base-port=9000", "--targets=3"]).unwrap();
        assert_eq!(f.target_addr(2), "127.0.0.1:9002".parse().unwrap());
        let f = serve(&["--port=9100", "--targets=300"]).unwrap();
        assert_eq!(f.target_addr(0), "127.0.0.1:9100".parse().unwrap());
        assert_eq!(f.target_addr(255), "127.0.1.0:9100".parse().unwrap());
        assert_eq!(
            serve(&["--port=1", "--base-port=2"]),
            Err(FlagError::PortAndBasePort)
        );
        assert!(matches!(
            serve(&["--base-port=65000", "--targets=600"]),
            Err(FlagError::PortsExhausted { .. })
        ));
        assert!(matches!(
            serve(&["--listen=127.255.255.250", "--port=1", "--targets=10"]),
            Err(FlagError::AddressesExhausted { .. })
        ));
    }

    #[test]
    fn refusals_name_the_flag() {
        let e = serve(&["--targets=0"]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("flag --targets: invalid value \"0\""),
            "{e}"
        );
        assert_eq!(
            serve(&["--bogus=1"]),
            Err(FlagError::Unknown("--bogus".into()))
        );
        assert_eq!(
            serve(&["--targets"]),
            Err(FlagError::MissingValue("--targets".into()))
        );
        assert!(serve(&["--format=json"]).is_err());
        assert!(serve(&["--gzip-level=10"]).is_err());
        assert!(serve(&["--pin=yes"]).is_err());
        assert!(serve(&["--churn=-1"]).is_err());
        assert!(serve(&["--listen=localhost"]).is_err());
        assert_eq!(
            parse(["scrape".to_string()]),
            Err(FlagError::UnknownCommand("scrape".into()))
        );
        assert!(matches!(
            parse(["bench".to_string()]),
            Ok(Command::Bench(_))
        ));
        assert_eq!(parse(Vec::<String>::new()), Ok(Command::Help));
    }
}
