//! `loadgen bench`'s command line. Both `--flag=value` and `--flag value` are accepted, as in
//! `loadgen serve`; everything is checked here, before any process starts.

use std::path::PathBuf;
use std::time::Duration;

use super::server::Kind;
use crate::flags::{churn_per_minute, openmetrics, whole_number, FlagError};

pub const USAGE: &str = "usage: loadgen bench [flags]

Starts loadgen's targets, then promcore, Prometheus and VictoriaMetrics one after another
against the same targets (each with a fresh data directory and its own port), and reports
for each: samples ingested/s (its own counter), CPU-seconds per million samples and RSS
(/proc), scrape duration p50/p99 and missed scrapes, restart time (clean stop, SIGKILL),
and query latency. Servers that are not installed are skipped.

  --servers=LIST            comma-separated: promcore,prometheus,victoria-metrics (default all)
  --promcore=PATH           promcore binary (default: promcore next to this loadgen binary)
  --targets=N               simulated targets (default 100)
  --series-per-target=M     series per target (default 1000)
  --interval=SECONDS        scrape interval (default 10)
  --warmup=SECONDS          scraping before the measured window (default 2 intervals)
  --window=SECONDS          measured window (default 40)
  --format=text|openmetrics body format offered (default text)
  --gzip-level=0..9         loadgen's gzip level (servers ask for gzip) (default 1)
  --churn=PER_MIN           series replaced per minute on each target (default 0)
  --loadgen-cores=N         loadgen's executors (default: every core)
  --loadgen-pin=true|false  pin loadgen's executors to cores (default true)
  --restart=true|false      measure restart times (default true)
  --queries=true|false      measure the query set (default true)
  --saturate                saturation search instead of one fixed load: raises --targets
                            ×--step-factor per step until a server falls behind
  --step-factor=F           load growth per step (default 2)
  --refine=N                most bisection steps once a step failed (default 4)
  --resolution=F            stop bisecting once the failed and sustained target counts
                            differ by at most F of the sustained one (default 0.05)
  --max-targets=N           highest target count tried (default 4000)
  --max-steps=N             most steps per server before one fails (default 8)
  --json=PATH               JSON output (default loadgen-bench.json)
  --markdown=PATH           also write the tables into PATH (e.g. BENCHMARKS.md) between
                            markers, replacing the previous section of this mode
  --work-dir=PATH           where data directories and logs go (default: a new /tmp dir,
                            removed at the end)
";

#[derive(Debug, Clone, PartialEq)]
pub struct BenchFlags {
    pub servers: Vec<Kind>,
    pub promcore: Option<PathBuf>,
    pub targets: usize,
    pub series_per_target: usize,
    pub interval: Duration,
    pub warmup: Option<Duration>,
    pub window: Duration,
    pub openmetrics: bool,
    pub gzip_level: u32,
    pub churn_per_minute: f64,
    pub loadgen_cores: Option<usize>,
    pub loadgen_pin: bool,
    pub restart: bool,
    pub queries: bool,
    pub saturate: bool,
    pub step_factor: f64,
    pub refine: usize,
    pub resolution: f64,
    pub max_targets: usize,
    pub max_steps: usize,
    pub json: PathBuf,
    pub markdown: Option<PathBuf>,
    pub work_dir: Option<PathBuf>,
    /// The command line as given, for the report.
    pub command: String,
}

impl Default for BenchFlags {
    fn default() -> Self {
        BenchFlags {
            servers: Kind::ALL.to_vec(),
            promcore: None,
            targets: 100,
            series_per_target: 1000,
            interval: Duration::from_secs(10),
            warmup: None,
            window: Duration::from_secs(40),
            openmetrics: false,
            gzip_level: 1,
            churn_per_minute: 0.0,
            loadgen_cores: None,
            loadgen_pin: true,
            restart: true,
            queries: true,
            saturate: false,
            step_factor: 2.0,
            refine: 4,
            resolution: 0.05,
            max_targets: 4000,
            max_steps: 8,
            json: PathBuf::from("loadgen-bench.json"),
            markdown: None,
            work_dir: None,
            command: "loadgen bench".to_string(),
        }
    }
}

impl BenchFlags {
    pub fn warmup(&self) -> Duration {
        self.warmup.unwrap_or(self.interval * 2)
    }
}

/// Parses the flags after `bench`; `Ok(None)` asks for help.
pub fn parse<I: Iterator<Item = String>>(mut args: I) -> Result<Option<BenchFlags>, FlagError> {
    let mut f = BenchFlags::default();
    let mut given = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        given.push(arg.clone());
        if arg == "--saturate" {
            f.saturate = true;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let value = match inline {
            Some(v) => v,
            None => {
                let v = args
                    .next()
                    .ok_or_else(|| FlagError::MissingValue(name.clone()))?;
                given.push(v.clone());
                v
            }
        };
        let invalid = |reason: &str| FlagError::Invalid {
            flag: name.clone(),
            value: value.clone(),
            reason: reason.to_string(),
        };
        let count = |min: usize, max: usize| -> Result<usize, FlagError> {
            whole_number(&value, min, max).map_err(|reason| invalid(&reason))
        };
        let seconds = |min: f64| -> Result<Duration, FlagError> {
            value
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= min && *s <= 86400.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| invalid(&format!("expected seconds from {min} to 86400")))
        };
        let boolean = || match value.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid("expected true or false")),
        };
        match name.as_str() {
            "--servers" => {
                f.servers = value
                    .split(',')
                    .map(|s| Kind::from_name(s.trim()))
                    .collect::<Option<Vec<_>>>()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        invalid("expected a list of promcore, prometheus, victoria-metrics")
                    })?
            }
            "--promcore" => f.promcore = Some(PathBuf::from(&value)),
            "--targets" => f.targets = count(1, 60_000)?,
            "--series-per-target" => f.series_per_target = count(1, 10_000_000)?,
            // Whole seconds: the servers' configuration takes them.
            "--interval" => f.interval = Duration::from_secs(count(1, 3600)? as u64),
            "--warmup" => f.warmup = Some(seconds(0.0)?),
            "--window" => f.window = Duration::from_secs(count(1, 86400)? as u64),
            "--format" => f.openmetrics = openmetrics(&value).map_err(|r| invalid(&r))?,
            "--gzip-level" => f.gzip_level = count(0, 9)? as u32,
            "--churn" => f.churn_per_minute = churn_per_minute(&value).map_err(|r| invalid(&r))?,
            "--loadgen-cores" => f.loadgen_cores = Some(count(1, 1024)?),
            "--loadgen-pin" => f.loadgen_pin = boolean()?,
            "--restart" => f.restart = boolean()?,
            "--queries" => f.queries = boolean()?,
            "--step-factor" => {
                f.step_factor = value
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x > 1.0 && *x <= 16.0)
                    .ok_or_else(|| invalid("expected a factor above 1, at most 16"))?
            }
            "--refine" => f.refine = count(0, 20)?,
            "--resolution" => {
                f.resolution = value
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0 && *x < 1.0)
                    .ok_or_else(|| invalid("expected a share from 0 to below 1"))?
            }
            "--max-targets" => f.max_targets = count(1, 60_000)?,
            "--max-steps" => f.max_steps = count(1, 100)?,
            "--json" => f.json = PathBuf::from(&value),
            "--markdown" => f.markdown = Some(PathBuf::from(&value)),
            "--work-dir" => f.work_dir = Some(PathBuf::from(&value)),
            _ => return Err(FlagError::Unknown(name)),
        }
    }
    if !given.is_empty() {
        f.command = format!("loadgen bench {}", given.join(" "));
    }
    Ok(Some(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(args: &[&str]) -> Result<BenchFlags, FlagError> {
        parse(args.iter().map(|s| s.to_string())).map(|f| f.expect("not help"))
    }

    #[test]
    fn defaults_finish_in_a_few_minutes() {
        let f = bench(&[]).unwrap();
        assert_eq!(f.servers, Kind::ALL.to_vec());
        assert_eq!(f.warmup(), Duration::from_secs(20));
        // Per server: warm-up + window, well under two minutes with restarts and queries.
        assert!(f.warmup() + f.window <= Duration::from_secs(60));
        assert_eq!(f.command, "loadgen bench");
    }

    #[test]
    fn parses_every_style() {
        let f = bench(&[
            "--servers=promcore,victoria-metrics",
            "--targets",
            "200",
            "--interval=5",
            "--saturate",
            "--restart=false",
            "--resolution=0.02",
            "--markdown=BENCHMARKS.md",
        ])
        .unwrap();
        assert!(f.loadgen_pin);
        assert!(!bench(&["--loadgen-pin=false"]).unwrap().loadgen_pin);
        assert_eq!(f.servers, vec![Kind::Promcore, Kind::VictoriaMetrics]);
        assert_eq!(f.targets, 200);
        assert_eq!(f.interval, Duration::from_secs(5));
        assert_eq!(f.warmup(), Duration::from_secs(10));
        assert!(f.saturate && !f.restart && f.queries);
        assert_eq!(f.resolution, 0.02);
        assert_eq!(f.markdown, Some(PathBuf::from("BENCHMARKS.md")));
        assert_eq!(
            f.command,
            "loadgen bench --servers=promcore,victoria-metrics --targets 200 --interval=5 --saturate --restart=false --resolution=0.02 --markdown=BENCHMARKS.md"
        );
    }

    #[test]
    fn refusals() {
        assert!(bench(&["--servers=thanos"]).is_err());
        assert!(bench(&["--servers="]).is_err());
        assert!(bench(&["--interval=0"]).is_err());
        assert!(bench(&["--step-factor=1"]).is_err());
        assert!(bench(&["--restart=yes"]).is_err());
        assert_eq!(
            bench(&["--window"]),
            Err(FlagError::MissingValue("--window".into()))
        );
        assert_eq!(
            bench(&["--nope=1"]),
            Err(FlagError::Unknown("--nope".into()))
        );
        assert_eq!(parse(["--help".to_string()].into_iter()), Ok(None));
    }
}
