//! End to end: the real `loadgen` binary on free loopback ports, scraped by a plain std
//! TcpStream client (keep-alive, pipelined, gzip and not, both formats), then by Debian's
//! Prometheus through the file_sd file loadgen wrote. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flate2::read::GzDecoder;
use loadgen::body::Format;
use loadgen::check::check;

const TARGETS: usize = 3;
const SERIES: usize = 300;
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts loadgen with its own sd file and log in `dir`, offering `format` (text or
/// openmetrics). `ignore_sigint` starts it the way a shell starts a background job.
fn start_loadgen(
    dir: &Path,
    format: &str,
    ignore_sigint: bool,
) -> (Running, PathBuf, Vec<SocketAddr>) {
    let sd = dir.join(format!("targets-{format}.json"));
    let log = dir.join(format!("loadgen-{format}.log"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    if ignore_sigint {
        // SAFETY: signal() is async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                Ok(())
            });
        }
    }
    let child = cmd
        .args(["serve", "--base-port=0", "--report-every=1"])
        .arg(format!("--format={format}"))
        .arg(format!("--targets={TARGETS}"))
        .arg(format!("--series-per-target={SERIES}"))
        .arg("--churn=600")
        .arg(format!("--sd-file={}", sd.display()))
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .expect("start loadgen");
    let mut running = Running(child);
    let targets = wait_until("the file_sd file", Duration::from_secs(30), || {
        if let Ok(Some(status)) = running.0.try_wait() {
            panic!(
                "loadgen exited with {status}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let text = std::fs::read_to_string(&sd).ok()?;
        let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
        let targets: Vec<SocketAddr> = doc[0]["targets"]
            .as_array()?
            .iter()
            .map(|t| t.as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(doc[0]["labels"]["simulator"], "loadgen");
        Some(targets)
    });
    assert_eq!(targets.len(), TARGETS);
    (running, sd, targets)
}

/// Reads one HTTP response: (status line, headers lower-cased, body).
fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).expect("read response head");
        assert!(n > 0, "connection closed before a response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .expect("Content-Length");
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).expect("read response body");
        assert!(n > 0, "connection closed inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn scrape_with_std_client(targets: &[SocketAddr]) {
    const OM_ACCEPT: &str =
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    for &addr in targets {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();

        // Plain text, then gzip-compressed OpenMetrics, on one kept-alive connection.
        s.write_all(
            b"GET /metrics HTTP/1.1\r\nHost: t\r\nAccept: text/plain;version=0.0.4\r\n\r\n",
        )
        .unwrap();
        let (status, headers, body) = read_response(&mut s, &mut buf);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(header(&headers, "content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        assert_eq!(header(&headers, "content-encoding"), None);
        let checked = check(&body, Format::Text).unwrap_or_else(|e| panic!("{addr}: {e}"));
        assert_eq!(checked.samples, SERIES);

        std::thread::sleep(Duration::from_millis(20));
        let req = format!(
            "GET /metrics HTTP/1.1\r\nHost: t\r\nAccept: {OM_ACCEPT}\r\nAccept-Encoding: gzip\r\n\r\n"
        );
        s.write_all(req.as_bytes()).unwrap();
        let (status, headers, body) = read_response(&mut s, &mut buf);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(header(&headers, "content-type")
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0"));
        assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
        let om = gunzip(&body);
        assert_eq!(check(&om, Format::OpenMetrics).unwrap().samples, SERIES);
        assert!(body.len() * 3 < om.len(), "gzip should shrink the body");

        // Two pipelined requests in one write: both answered, in order; the second closes.
        s.write_all(
            b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\nGET /metrics HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let (status, _, _) = read_response(&mut s, &mut buf);
        assert_eq!(status, "HTTP/1.1 404 Not Found");
        let (status, headers, body) = read_response(&mut s, &mut buf);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(header(&headers, "connection"), Some("close"));
        assert_eq!(check(&gunzip(&body), Format::Text).unwrap().samples, SERIES);
        let mut rest = Vec::new();
        assert_eq!(
            s.read_to_end(&mut rest).unwrap(),
            0,
            "closed after Connection: close"
        );

        // Garbage gets a 400 and a closed connection, and the target keeps serving.
        let mut bad = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        bad.write_all(b"\x00\x01garbage\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        let (status, _, _) = read_response(&mut bad, &mut buf);
        assert_eq!(status, "HTTP/1.1 400 Bad Request");
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET over a fresh connection with `Connection: close`; the body as text.
fn http_get(addr: SocketAddr, path_and_query: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path_and_query} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some(body.to_string())
}

/// Values of an instant query, one per series, by `instance`.
fn query(prom: SocketAddr, expr: &str) -> Option<Vec<(String, String)>> {
    let body = http_get(prom, &format!("/api/v1/query?query={expr}"))?;
    let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = doc["data"]["result"].as_array()?;
    Some(
        result
            .iter()
            .map(|r| {
                (
                    r["metric"]["instance"].as_str().unwrap_or("").to_string(),
                    r["value"][1].as_str().unwrap_or("").to_string(),
                )
            })
            .collect(),
    )
}

/// Prometheus reads every sd file and scrapes every target: `up` is 1 and every series of
/// every target was parsed (OpenMetrics from the targets that offer it, text from others).
fn prometheus_scrapes_every_target(dir: &Path, sd: &[&Path], targets: &[SocketAddr]) {
    let files: Vec<String> = sd.iter().map(|p| format!("'{}'", p.display())).collect();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: loadgen\n    file_sd_configs:\n      - files: [{}]\n",
            files.join(", ")
        ),
    )
    .unwrap();
    let port = free_port();
    let prom: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prom-data").display()
        ))
        .arg(format!("--web.listen-address={prom}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("prometheus.log")).unwrap(),
        ))
        .spawn()
        .expect("start prometheus");
    let _prometheus = Running(child);
    let mut expected: Vec<String> = targets.iter().map(ToString::to_string).collect();
    expected.sort();
    wait_until(
        "up == 1 for every target in Prometheus",
        Duration::from_secs(60),
        || {
            let mut up = query(prom, "up")?;
            up.sort();
            let instances: Vec<String> = up.iter().map(|(i, _)| i.clone()).collect();
            (instances == expected && up.iter().all(|(_, v)| v == "1")).then_some(())
        },
    );
    // Prometheus parsed every series of every target.
    wait_until("scrape_samples_scraped", Duration::from_secs(30), || {
        let scraped = query(prom, "scrape_samples_scraped")?;
        (scraped.len() == targets.len() && scraped.iter().all(|(_, v)| *v == SERIES.to_string()))
            .then_some(())
    });
}

#[test]
fn serves_scrapers_and_prometheus_reads_every_target() {
    let dir = tempfile::tempdir().unwrap();
    let (mut loadgen, sd, targets) = start_loadgen(dir.path(), "openmetrics", false);
    let (mut text_loadgen, text_sd, text_targets) = start_loadgen(dir.path(), "text", true);
    scrape_with_std_client(&targets);

    let have_prometheus = Path::new(PROMETHEUS).exists();
    if have_prometheus {
        let all: Vec<SocketAddr> = targets.iter().chain(&text_targets).copied().collect();
        prometheus_scrapes_every_target(dir.path(), &[&sd, &text_sd], &all);
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {PROMETHEUS} is missing: install Debian's prometheus package"
        );
        eprintln!("skipping the Prometheus part: {PROMETHEUS} is not installed");
    }

    // SIGINT ends loadgen even when it was started with SIGINT ignored, as a shell's
    // background job is; SIGTERM ends it with a final CPU report.
    for (child, sig) in [
        (&mut text_loadgen, libc::SIGINT),
        (&mut loadgen, libc::SIGTERM),
    ] {
        // SAFETY: kill sends a signal to a child we started and have not reaped.
        unsafe { libc::kill(child.0.id() as libc::pid_t, sig) };
        let status = wait_until("loadgen to exit", Duration::from_secs(10), || {
            child.0.try_wait().unwrap()
        });
        assert!(status.success(), "{status}");
    }
    let log = std::fs::read_to_string(dir.path().join("loadgen-openmetrics.log")).unwrap();
    assert!(log.contains("msg=\"targets ready\""), "{log}");
    assert!(
        log.contains("msg=\"received signal, exiting\" signal=SIGTERM"),
        "{log}"
    );
    let total = log
        .lines()
        .find(|l| l.contains("msg=\"total\""))
        .expect(&log);
    assert!(
        total.contains("cpuSeconds=") && total.contains("scrapes="),
        "{total}"
    );
    let scrapes: u64 = total
        .split(' ')
        .find_map(|kv| kv.strip_prefix("scrapes="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(scrapes >= 3 * TARGETS as u64, "{total}");
}
