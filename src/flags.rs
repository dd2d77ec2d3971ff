//! Command-line flags, with Prometheus's names, defaults and value syntax where the meaning is
//! the same (`--storage.tsdb.path`, `--web.listen-address`, `--query.timeout`, ...) plus
//! promcore's `--shards`. Both `--flag=value` and `--flag value` are accepted, and booleans
//! take `--flag` / `--no-flag`, as Prometheus's kingpin does. `status_flags` lists every flag
//! with its value the way `/api/v1/status/flags` shows them.
//!
//! This module only parses and checks syntax; it never opens a socket or a file, so a value
//! that is well formed but unusable (a port already taken) is the caller's error to report.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use thiserror::Error;

use crate::config::duration::Duration;
use crate::config::size::ByteSize;

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

impl LogLevel {
    /// The spelling `--log.level` takes and `/status/flags` shows.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    pub config_file: PathBuf,
    pub storage_path: PathBuf,
    /// `None`: one shard per available core.
    pub shards: Option<usize>,
    pub log_level: LogLevel,
    pub snapshot_on_shutdown: bool,
    /// Kept as the operator wrote it, so `/status/flags` shows `:9090` and not what it means;
    /// `listen_address` gives the socket address. Checked when the flags are parsed.
    pub web_listen_address: String,
    /// `/-/reload` and `/-/quit` answer 403 unless set.
    pub web_enable_lifecycle: bool,
    pub web_max_connections: usize,
    pub web_read_timeout: Duration,
    /// Empty: derived from the host name and the listen port, as Prometheus does.
    pub web_external_url: String,
    /// `--web.route-prefix`: the path every endpoint is served under; `None`: the external
    /// URL's path, as Prometheus.
    pub web_route_prefix: Option<String>,
    /// `--web.cors.origin`: the regex (anchored when used) an `Origin` must match to be
    /// allowed; `.*` allows every origin (`Access-Control-Allow-Origin: *`).
    pub web_cors_origin: String,
    pub retention_time: Duration,
    /// Zero: no size-based retention.
    pub retention_size: ByteSize,
    /// Whether `--storage.tsdb.retention.time` was given: without it and with a size limit,
    /// Prometheus keeps no time limit (and derives the max block duration accordingly).
    pub retention_time_set: bool,
    /// `--storage.tsdb.min-block-duration`: the head's block range.
    pub min_block_duration: Duration,
    /// `--storage.tsdb.max-block-duration`; `None`: derived from the retention
    /// (`max_block_duration()`).
    pub max_block_duration: Option<Duration>,
    /// `/api/v1/admin/*` answer `unavailable` unless set.
    pub web_enable_admin_api: bool,
    pub query_timeout: Duration,
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`).
    pub query_lookback_delta: Duration,
    pub query_max_samples: u64,
    pub query_max_concurrency: usize,
    /// How long after an outage alert `for` state is still restored.
    pub rules_alert_for_outage_tolerance: Duration,
    /// Least time an alert waits after a restart before it may fire again.
    pub rules_alert_for_grace_period: Duration,
    /// Least time between two notifications of the same alert to Alertmanager.
    pub rules_alert_resend_delay: Duration,
    pub alertmanager_notification_queue_capacity: usize,
    pub help: bool,
    pub version: bool,
}

const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:9090";

impl Default for Flags {
    fn default() -> Self {
        const MINUTE: u64 = 60;
        const DAY: u64 = 24 * 60 * MINUTE;
        Flags {
            config_file: PathBuf::from("prometheus.yml"),
            storage_path: PathBuf::from("data/"),
            shards: None,
            log_level: LogLevel::Info,
            snapshot_on_shutdown: true,
            web_listen_address: DEFAULT_LISTEN_ADDRESS.to_string(),
            web_enable_lifecycle: false,
            web_max_connections: 512,
            web_read_timeout: Duration::from_secs(5 * MINUTE),
            web_external_url: String::new(),
            web_route_prefix: None,
            web_cors_origin: ".*".to_string(),
            retention_time: Duration::from_secs(15 * DAY),
            retention_size: ByteSize(0),
            retention_time_set: false,
            min_block_duration: Duration::from_secs(2 * 60 * MINUTE),
            max_block_duration: None,
            web_enable_admin_api: false,
            query_timeout: Duration::from_secs(2 * MINUTE),
            query_lookback_delta: Duration::from_secs(5 * MINUTE),
            query_max_samples: 50_000_000,
            query_max_concurrency: 20,
            rules_alert_for_outage_tolerance: Duration::from_secs(3600),
            rules_alert_for_grace_period: Duration::from_secs(600),
            rules_alert_resend_delay: Duration::from_secs(60),
            alertmanager_notification_queue_capacity: 10_000,
            help: false,
            version: false,
        }
    }
}

pub const USAGE: &str = "usage: promcore [flags]

  --config.file=PATH            configuration file (default prometheus.yml)
  --storage.tsdb.path=PATH      data directory (default data/)
  --storage.tsdb.retention.time=DURATION
                                how long to keep samples, e.g. 15d, 4w, 1y (default 15d)
  --storage.tsdb.retention.size=BYTES
                                most bytes of blocks to keep, e.g. 512MB, 100GB
                                (default 0: no size limit)
  --storage.tsdb.min-block-duration=DURATION
                                time range of a block cut from the head (default 2h;
                                lower it only for tests)
  --storage.tsdb.max-block-duration=DURATION
                                longest block that compaction merges up to (default: a
                                tenth of the retention time, at most 31d)
  --[no-]storage.tsdb.snapshot-on-shutdown
                                write a head snapshot on clean shutdown (default on)
  --shards=N                    storage shards, one pinned core each (default: one per core);
                                fixed when the data directory is created
  --web.listen-address=ADDR     address the HTTP server listens on (default 0.0.0.0:9090;
                                :9090 means all IPv4 interfaces)
  --web.external-url=URL        URL promcore is reachable at, e.g. behind a reverse proxy
                                (default: from the host name and listen port)
  --web.route-prefix=PATH       path prefix of every endpoint (default: the external URL's
                                path)
  --web.cors.origin=REGEX       origins allowed to read the API from a browser (CORS),
                                an anchored regex (default .*: any origin)
  --[no-]web.enable-admin-api   serve /api/v1/admin/tsdb/* (delete_series, clean_tombstones,
                                snapshot) (default off)
  --[no-]web.enable-lifecycle   allow shutdown and reload over HTTP (/-/quit, /-/reload)
                                (default off)
  --web.max-connections=N       most simultaneous HTTP connections (default 512)
  --web.read-timeout=DURATION   longest wait for a request, and idle keep-alive time
                                (default 5m)
  --query.timeout=DURATION      longest a query may run before it is aborted (default 2m)
  --query.lookback-delta=DURATION
                                how far back an instant selector looks for a sample
                                (default 5m)
  --query.max-samples=N         most samples one query may hold in memory at once
                                (default 50000000)
  --query.max-concurrency=N     most queries evaluated at the same time (default 20)
  --rules.alert.for-outage-tolerance=DURATION
                                longest outage after which alerts' `for` state is still
                                restored (default 1h)
  --rules.alert.for-grace-period=DURATION
                                least wait after a restart before a restored alert fires,
                                and least `for` that is restored (default 10m)
  --rules.alert.resend-delay=DURATION
                                least time between resends of an alert to Alertmanager
                                (default 1m)
  --alertmanager.notification-queue-capacity=N
                                alerts waiting to be sent; the oldest are dropped beyond
                                (default 10000)
  --log.level=LEVEL             debug, info, warn or error (default info)
  --version                     print the version
  -h, --help                    this text

Durations are Prometheus's: 1y, 2w, 3d, 4h, 5m, 6s, 7ms, or combined as 1h30m.
";

impl Flags {
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Flags, FlagError> {
        let mut f = Flags::default();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            if let Some((field, on)) = f.bool_flag(&name) {
                *field = match inline.as_deref() {
                    None => on,
                    // Beyond kingpin, which refuses `=value` on a boolean: `=false` must
                    // never be read as "on".
                    Some("true") if on => true,
                    Some("false") if on => false,
                    Some(v) => {
                        return Err(invalid(
                            &name,
                            v,
                            "a boolean flag is --flag, --no-flag, --flag=true or --flag=false",
                        ))
                    }
                };
                continue;
            }
            // Kingpin refuses `--flag --other`: the next flag is not this one's value.
            let mut value = |name: &str| -> Result<String, FlagError> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => args
                        .next_if(|next| !next.starts_with("--"))
                        .ok_or_else(|| FlagError::MissingValue(name.to_string())),
                }
            };
            match name.as_str() {
                "-h" | "--help" => f.help = true,
                "--version" => f.version = true,
                "--config.file" => f.config_file = PathBuf::from(value(&name)?),
                "--storage.tsdb.path" => f.storage_path = PathBuf::from(value(&name)?),
                "--storage.tsdb.retention.time" => {
                    f.retention_time = duration(&name, &value(&name)?)?;
                    f.retention_time_set = true;
                }
                "--storage.tsdb.min-block-duration" => {
                    f.min_block_duration = positive_duration(&name, &value(&name)?)?
                }
                "--storage.tsdb.max-block-duration" => {
                    f.max_block_duration = Some(positive_duration(&name, &value(&name)?)?)
                }
                "--storage.tsdb.retention.size" => {
                    let v = value(&name)?;
                    f.retention_size =
                        ByteSize::parse(&v).map_err(|e| invalid(&name, &v, e.to_string()))?;
                }
                "--shards" => {
                    let v = value(&name)?;
                    let n = number(&name, &v, 1)?;
                    if n > 1024 {
                        return Err(invalid(&name, &v, "must be 1..=1024"));
                    }
                    f.shards = Some(n);
                }
                "--web.listen-address" => {
                    let v = value(&name)?;
                    parse_listen_address(&v).map_err(|reason| invalid(&name, &v, reason))?;
                    f.web_listen_address = v;
                }
                "--web.external-url" => {
                    let v = value(&name)?;
                    // Prometheus's own check: quotes are what a mis-quoted unit file or shell
                    // script leaves behind, and would end up in every link.
                    if v.starts_with(['"', '\'']) || v.ends_with(['"', '\'']) {
                        return Err(invalid(&name, &v, "must not begin or end with quotes"));
                    }
                    f.web_external_url = v;
                }
                "--web.route-prefix" => f.web_route_prefix = Some(value(&name)?),
                "--web.cors.origin" => {
                    let v = value(&name)?;
                    regex::Regex::new(&format!("^(?:{v})$"))
                        .map_err(|e| invalid(&name, &v, e.to_string()))?;
                    f.web_cors_origin = v;
                }
                "--web.max-connections" => {
                    f.web_max_connections = number(&name, &value(&name)?, 1)?
                }
                "--web.read-timeout" => f.web_read_timeout = duration(&name, &value(&name)?)?,
                "--query.timeout" => f.query_timeout = duration(&name, &value(&name)?)?,
                "--query.lookback-delta" => {
                    f.query_lookback_delta = duration(&name, &value(&name)?)?
                }
                "--query.max-samples" => f.query_max_samples = number(&name, &value(&name)?, 0)?,
                "--query.max-concurrency" => {
                    f.query_max_concurrency = number(&name, &value(&name)?, 1)?
                }
                "--rules.alert.for-outage-tolerance" => {
                    f.rules_alert_for_outage_tolerance = duration(&name, &value(&name)?)?
                }
                "--rules.alert.for-grace-period" => {
                    f.rules_alert_for_grace_period = duration(&name, &value(&name)?)?
                }
                "--rules.alert.resend-delay" => {
                    f.rules_alert_resend_delay = duration(&name, &value(&name)?)?
                }
                "--alertmanager.notification-queue-capacity" => {
                    f.alertmanager_notification_queue_capacity = number(&name, &value(&name)?, 1)?
                }
                "--log.level" => {
                    let v = value(&name)?;
                    f.log_level = match v.as_str() {
                        "debug" => LogLevel::Debug,
                        "info" => LogLevel::Info,
                        "warn" => LogLevel::Warn,
                        "error" => LogLevel::Error,
                        _ => return Err(invalid(&name, &v, "one of debug, info, warn, error")),
                    };
                }
                _ => return Err(FlagError::Unknown(arg)),
            }
        }
        Ok(f)
    }

    /// The boolean field `name` sets and the value it sets it to: `true` for `--flag`,
    /// `false` for `--no-flag`.
    fn bool_flag(&mut self, name: &str) -> Option<(&mut bool, bool)> {
        let bare = name.strip_prefix("--")?;
        let (bare, on) = match bare.strip_prefix("no-") {
            Some(rest) => (rest, false),
            None => (bare, true),
        };
        let field = match bare {
            "storage.tsdb.snapshot-on-shutdown" => &mut self.snapshot_on_shutdown,
            "web.enable-lifecycle" => &mut self.web_enable_lifecycle,
            "web.enable-admin-api" => &mut self.web_enable_admin_api,
            _ => return None,
        };
        Some((field, on))
    }

    /// The socket address `--web.listen-address` names.
    pub fn listen_address(&self) -> Result<SocketAddr, FlagError> {
        parse_listen_address(&self.web_listen_address)
            .map_err(|reason| invalid("--web.listen-address", &self.web_listen_address, reason))
    }

    /// The time retention in effect: the flag's, or 15d when neither it nor a size limit is
    /// given (Prometheus's rule); zero means none.
    pub fn effective_retention_time(&self) -> Duration {
        if self.retention_time_set || self.retention_size.0 == 0 {
            self.retention_time
        } else {
            Duration::from_secs(0)
        }
    }

    /// `--storage.tsdb.max-block-duration`, or as Prometheus derives it when not given: a
    /// tenth of the time retention, at most 31 days.
    pub fn max_block_duration(&self) -> Duration {
        if let Some(d) = self.max_block_duration {
            return d;
        }
        let cap = Duration::from_secs(31 * 24 * 3600);
        let retention_ms = self.effective_retention_time().as_millis();
        if retention_ms == 0 || retention_ms / 10 >= cap.as_millis() {
            cap
        } else {
            Duration::from_millis(retention_ms / 10)
        }
    }

    /// Every flag and its value as `/api/v1/status/flags` shows them: names without the
    /// leading `--`, sorted (Prometheus's JSON object has its keys sorted), every value a
    /// string, durations and sizes in Prometheus's normalised form (`15d`, `512MiB`). `-h`
    /// and `--version` are left out, as Prometheus leaves out kingpin's own flags.
    pub fn status_flags(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "alertmanager.notification-queue-capacity",
                self.alertmanager_notification_queue_capacity.to_string(),
            ),
            ("config.file", self.config_file.display().to_string()),
            ("log.level", self.log_level.name().to_string()),
            (
                "query.lookback-delta",
                self.query_lookback_delta.to_string(),
            ),
            (
                "query.max-concurrency",
                self.query_max_concurrency.to_string(),
            ),
            ("query.max-samples", self.query_max_samples.to_string()),
            ("query.timeout", self.query_timeout.to_string()),
            (
                "rules.alert.for-grace-period",
                self.rules_alert_for_grace_period.to_string(),
            ),
            (
                "rules.alert.for-outage-tolerance",
                self.rules_alert_for_outage_tolerance.to_string(),
            ),
            (
                "rules.alert.resend-delay",
                self.rules_alert_resend_delay.to_string(),
            ),
            // Empty when not given: one shard per core, decided at start-up.
            (
                "shards",
                self.shards.map(|n| n.to_string()).unwrap_or_default(),
            ),
            (
                "storage.tsdb.max-block-duration",
                self.max_block_duration().to_string(),
            ),
            (
                "storage.tsdb.min-block-duration",
                self.min_block_duration.to_string(),
            ),
            ("storage.tsdb.path", self.storage_path.display().to_string()),
            (
                "storage.tsdb.retention.size",
                self.retention_size.to_string(),
            ),
            (
                "storage.tsdb.retention.time",
                self.retention_time.to_string(),
            ),
            (
                "storage.tsdb.snapshot-on-shutdown",
                self.snapshot_on_shutdown.to_string(),
            ),
            ("web.cors.origin", self.web_cors_origin.clone()),
            (
                "web.enable-admin-api",
                self.web_enable_admin_api.to_string(),
            ),
            (
                "web.enable-lifecycle",
                self.web_enable_lifecycle.to_string(),
            ),
            ("web.external-url", self.web_external_url.clone()),
            ("web.listen-address", self.web_listen_address.clone()),
            ("web.max-connections", self.web_max_connections.to_string()),
            ("web.read-timeout", self.web_read_timeout.to_string()),
            (
                "web.route-prefix",
                self.web_route_prefix.clone().unwrap_or_default(),
            ),
        ]
    }
}

fn invalid(flag: &str, value: &str, reason: impl Into<String>) -> FlagError {
    FlagError::Invalid {
        flag: flag.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn duration(flag: &str, value: &str) -> Result<Duration, FlagError> {
    Duration::parse(value).map_err(|e| invalid(flag, value, e.to_string()))
}

/// A block duration: zero or negative would make a block range of nothing.
fn positive_duration(flag: &str, value: &str) -> Result<Duration, FlagError> {
    let d = duration(flag, value)?;
    if d.as_millis() == 0 {
        return Err(invalid(flag, value, "must be longer than 0s"));
    }
    Ok(d)
}

fn number<T>(flag: &str, value: &str, min: T) -> Result<T, FlagError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
    T::Err: std::fmt::Display,
{
    let n: T = value
        .parse()
        .map_err(|e: T::Err| invalid(flag, value, e.to_string()))?;
    if n < min {
        return Err(invalid(flag, value, format!("must be at least {min}")));
    }
    Ok(n)
}

/// `host:port` as Go's `net.Listen` takes it, without name resolution: an IP literal
/// (IPv6 in brackets), `localhost`, or nothing for every IPv4 interface (`:9090`). Other
/// host names are refused rather than resolved, so what the server binds to never depends
/// on DNS at start-up. Port 0 (any free port) is allowed, as tests use it.
fn parse_listen_address(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err("missing port: expected host:port, e.g. 0.0.0.0:9090 or :9090".into());
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?} is not a number in 0..=65535"))?;
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h if h.contains(':') && !h.starts_with('[') => {
            return Err("an IPv6 address needs brackets, e.g. [::1]:9090".into())
        }
        h => {
            let bare = h.trim_start_matches('[').trim_end_matches(']');
            bare.parse::<IpAddr>().map_err(|_| {
                format!(
                    "host {h:?} is not an IP address; use an IP address, localhost, \
                     or nothing (:{port}) for every interface"
                )
            })?
        }
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Flags, FlagError> {
        Flags::parse(a.iter().map(|s| s.to_string()))
    }

    fn reason(a: &[&str]) -> String {
        parse(a).unwrap_err().to_string()
    }

    #[test]
    fn both_forms() {
        let f = parse(&[
            "--storage.tsdb.path=/x",
            "--shards",
            "3",
            "--log.level=debug",
            "--web.listen-address",
            "127.0.0.1:9091",
            "--query.timeout=30s",
            "--query.lookback-delta=1m",
            "--storage.tsdb.retention.time",
            "90d",
        ])
        .unwrap();
        assert_eq!(f.storage_path, PathBuf::from("/x"));
        assert_eq!(f.shards, Some(3));
        assert_eq!(f.log_level, LogLevel::Debug);
        assert_eq!(f.web_listen_address, "127.0.0.1:9091");
        assert_eq!(f.query_timeout, Duration::from_secs(30));
        assert_eq!(f.query_lookback_delta, Duration::from_secs(60));
        assert_eq!(f.retention_time, Duration::from_secs(90 * 86_400));
    }

    #[test]
    fn defaults_are_prometheus_s() {
        let f = parse(&[]).unwrap();
        assert_eq!(f, Flags::default());
        assert_eq!(f.web_listen_address, "0.0.0.0:9090");
        assert_eq!(
            f.listen_address().unwrap(),
            "0.0.0.0:9090".parse::<SocketAddr>().unwrap()
        );
        assert!(!f.web_enable_lifecycle);
        assert_eq!(f.web_max_connections, 512);
        assert_eq!(f.web_read_timeout.to_string(), "5m");
        assert_eq!(f.web_external_url, "");
        assert_eq!(f.retention_time.to_string(), "15d");
        assert_eq!(f.retention_size, ByteSize(0));
        assert_eq!(f.query_timeout.to_string(), "2m");
        assert_eq!(f.query_max_samples, 50_000_000);
        assert_eq!(f.query_max_concurrency, 20);
        assert!(f.snapshot_on_shutdown);
    }

    #[test]
    fn every_value_flag_is_read() {
        let f = parse(&[
            "--web.enable-lifecycle",
            "--web.max-connections=64",
            "--web.read-timeout=1m30s",
            "--web.external-url=https://example.org/prom/",
            "--query.max-samples=1000",
            "--query.max-concurrency",
            "4",
            "--storage.tsdb.retention.size=1.5GB",
            "--config.file",
            "/etc/promcore/prometheus.yml",
        ])
        .unwrap();
        assert!(f.web_enable_lifecycle);
        assert_eq!(f.web_max_connections, 64);
        assert_eq!(f.web_read_timeout, Duration::from_secs(90));
        assert_eq!(f.web_external_url, "https://example.org/prom/");
        assert_eq!(f.query_max_samples, 1000);
        assert_eq!(f.query_max_concurrency, 4);
        assert_eq!(f.retention_size, ByteSize(3 << 29));
        assert_eq!(f.config_file, PathBuf::from("/etc/promcore/prometheus.yml"));
    }

    #[test]
    fn booleans_take_no_prefix() {
        let f = parse(&[
            "--web.enable-lifecycle",
            "--no-storage.tsdb.snapshot-on-shutdown",
        ]);
        let f = f.unwrap();
        assert!(f.web_enable_lifecycle);
        assert!(!f.snapshot_on_shutdown);
        // The last one given wins, as in kingpin.
        let f = parse(&["--web.enable-lifecycle", "--no-web.enable-lifecycle"]).unwrap();
        assert!(!f.web_enable_lifecycle);
        // An explicit value must never be ignored.
        assert!(
            !parse(&["--web.enable-lifecycle=false"])
                .unwrap()
                .web_enable_lifecycle
        );
        assert!(
            parse(&["--web.enable-lifecycle=true"])
                .unwrap()
                .web_enable_lifecycle
        );
        assert!(reason(&["--web.enable-lifecycle=yes"]).contains("--web.enable-lifecycle"));
        assert!(parse(&["--no-web.enable-lifecycle=true"]).is_err());
        // A boolean does not swallow the next argument.
        assert_eq!(
            parse(&["--web.enable-lifecycle", "true"]),
            Err(FlagError::Unknown("true".into()))
        );
        assert_eq!(
            parse(&["--no-shards"]),
            Err(FlagError::Unknown("--no-shards".into()))
        );
    }

    #[test]
    fn listen_address_forms() {
        let addr = |s: &str| parse_listen_address(s);
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(addr(":9090"), Ok(sa("0.0.0.0:9090")));
        assert_eq!(addr("0.0.0.0:9090"), Ok(sa("0.0.0.0:9090")));
        assert_eq!(addr("127.0.0.1:0"), Ok(sa("127.0.0.1:0")));
        assert_eq!(addr("localhost:9090"), Ok(sa("127.0.0.1:9090")));
        assert_eq!(addr("[::1]:9090"), Ok(sa("[::1]:9090")));
        assert_eq!(addr("[::]:9090"), Ok(sa("[::]:9090")));
        for bad in [
            "",
            "9090",
            ":",
            ":http",
            ":65536",
            "::1:9090",
            "example.org:9090",
            "[::1]",
            "1.2.3:80",
        ] {
            assert!(addr(bad).is_err(), "{bad} accepted");
        }
        let f = parse(&["--web.listen-address=:9091"]).unwrap();
        // Shown as given, bound as meant.
        assert_eq!(f.web_listen_address, ":9091");
        assert_eq!(f.listen_address(), Ok(sa("0.0.0.0:9091")));
    }

    #[test]
    fn errors_name_the_flag() {
        assert_eq!(parse(&["--nope"]), Err(FlagError::Unknown("--nope".into())));
        assert_eq!(
            parse(&["--shards"]),
            Err(FlagError::MissingValue("--shards".into()))
        );
        assert_eq!(
            parse(&["--config.file", "--shards=2"]),
            Err(FlagError::MissingValue("--config.file".into()))
        );
        let cases: &[(&[&str], &str)] = &[
            (&["--shards=0"], "--shards"),
            (&["--shards=1025"], "--shards"),
            (&["--web.listen-address=9090"], "--web.listen-address"),
            (&["--web.listen-address=prom:9090"], "--web.listen-address"),
            (&["--web.max-connections=0"], "--web.max-connections"),
            (&["--web.max-connections=-1"], "--web.max-connections"),
            (&["--web.read-timeout=5"], "--web.read-timeout"),
            (&["--query.timeout=2x"], "--query.timeout"),
            (&["--query.max-samples=lots"], "--query.max-samples"),
            (&["--query.max-concurrency=0"], "--query.max-concurrency"),
            (
                &["--storage.tsdb.retention.time=1.5d"],
                "--storage.tsdb.retention.time",
            ),
            (
                &["--storage.tsdb.retention.size=10kB"],
                "--storage.tsdb.retention.size",
            ),
            (&["--web.external-url=\"http://x/\""], "--web.external-url"),
            (&["--log.level=trace"], "--log.level"),
        ];
        for (args, flag) in cases {
            let e = reason(args);
            assert!(
                e.starts_with(&format!("flag {flag}: invalid value")),
                "{args:?}: {e}"
            );
        }
        assert_eq!(
            reason(&["--web.listen-address=9090"]),
            "flag --web.listen-address: invalid value \"9090\": missing port: expected \
             host:port, e.g. 0.0.0.0:9090 or :9090"
        );
    }

    #[test]
    fn status_flags_as_prometheus_shows_them() {
        let f = Flags::default();
        let flags = f.status_flags();
        let names: Vec<_> = flags.iter().map(|(k, _)| *k).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted and unique");
        let get = |k: &str| {
            flags
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{k} missing"))
        };
        assert_eq!(get("config.file"), "prometheus.yml");
        assert_eq!(get("storage.tsdb.path"), "data/");
        assert_eq!(get("web.listen-address"), "0.0.0.0:9090");
        assert_eq!(get("web.enable-lifecycle"), "false");
        assert_eq!(get("web.max-connections"), "512");
        assert_eq!(get("web.read-timeout"), "5m");
        assert_eq!(get("web.external-url"), "");
        assert_eq!(get("storage.tsdb.retention.time"), "15d");
        assert_eq!(get("storage.tsdb.retention.size"), "0B");
        assert_eq!(get("storage.tsdb.snapshot-on-shutdown"), "true");
        assert_eq!(get("query.timeout"), "2m");
        assert_eq!(get("query.max-samples"), "50000000");
        assert_eq!(get("query.max-concurrency"), "20");
        assert_eq!(get("log.level"), "info");
        assert_eq!(get("shards"), "");

        // Every flag USAGE documents is listed, and nothing else but -h/--version.
        for line in USAGE.lines() {
            let Some(flag) = line.trim_start().strip_prefix("--") else {
                continue;
            };
            let flag = flag.trim_start_matches("[no-]");
            let name = flag.split(['=', ' ']).next().unwrap_or_default();
            if name != "version" {
                assert!(names.contains(&name), "{name} missing from status_flags");
            }
        }

        let f = parse(&[
            "--shards=4",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=14d",
            "--storage.tsdb.retention.size=512MB",
            "--web.read-timeout=300s",
        ])
        .unwrap();
        let flags = f.status_flags();
        let get = |k: &str| flags.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("shards").as_deref(), Some("4"));
        assert_eq!(get("web.enable-lifecycle").as_deref(), Some("true"));
        assert_eq!(get("storage.tsdb.retention.time").as_deref(), Some("2w"));
        assert_eq!(
            get("storage.tsdb.retention.size").as_deref(),
            Some("512MiB")
        );
        assert_eq!(get("web.read-timeout").as_deref(), Some("5m"));
    }

    /// The values Prometheus 2.42 shows in `/api/v1/status/flags` for the same command lines.
    #[test]
    fn block_durations_as_prometheus_derives_them() {
        let shown = |a: &[&str]| {
            let f = parse(a).unwrap();
            let get = |k: &str| {
                f.status_flags()
                    .into_iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v)
                    .unwrap()
            };
            (
                get("storage.tsdb.min-block-duration"),
                get("storage.tsdb.max-block-duration"),
            )
        };
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(shown(&[]), s("2h", "1d12h"));
        assert_eq!(
            shown(&["--storage.tsdb.retention.time=1d"]),
            s("2h", "2h24m")
        );
        assert_eq!(
            shown(&["--storage.tsdb.retention.time=1000d"]),
            s("2h", "31d")
        );
        assert_eq!(
            shown(&["--storage.tsdb.retention.size=1GB"]),
            s("2h", "31d")
        );
        assert_eq!(
            shown(&[
                "--storage.tsdb.min-block-duration=5h",
                "--storage.tsdb.retention.time=1d"
            ]),
            s("5h", "2h24m")
        );
        assert_eq!(
            shown(&[
                "--storage.tsdb.min-block-duration=5m",
                "--storage.tsdb.max-block-duration=1h30m"
            ]),
            s("5m", "1h30m")
        );
        assert!(parse(&["--storage.tsdb.min-block-duration=0s"]).is_err());
        let f = parse(&["--web.enable-admin-api"]).unwrap();
        assert!(f.web_enable_admin_api);
        assert!(!Flags::default().web_enable_admin_api);
    }
}
