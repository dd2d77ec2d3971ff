//! Restart time with the data a measured window left behind: the server is stopped cleanly
//! (SIGTERM) and started again, then killed (SIGKILL) and started again; each time it is
//! timed until its ready path answers and until a query over the old data answers with a
//! non-empty result.
//!
//! This module drives one server's process through those two restarts; it never starts
//! or stops loadgen, which keeps serving meanwhile.

use std::time::{Duration, Instant};

use super::client;
use super::server::{Running, ServerError};

/// Longest a restart (or a clean stop) may take before the benchmark gives up on it.
pub const LIMIT: Duration = Duration::from_secs(300);
/// Answered from data written before the restart.
const PROBE: &str = "count(loadgen_build_info)";

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RestartTimes {
    /// How long SIGTERM took to end the process (a clean stop may flush or snapshot).
    pub clean_stop_s: f64,
    pub clean_ready_s: f64,
    pub clean_first_query_s: f64,
    pub kill_ready_s: f64,
    pub kill_first_query_s: f64,
}

/// Whether a query answer holds at least one series.
pub fn answered(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body).is_ok_and(|v| {
        v["status"] == "success"
            && v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
    })
}

fn start_and_time(server: &mut Running) -> Result<(f64, f64), ServerError> {
    let started = Instant::now();
    server.restart()?;
    let ready = server.wait_ready(started, LIMIT)?;
    let path = format!("/api/v1/query?query={}", client::encode(PROBE));
    let first = server.wait_for("answering queries", started, LIMIT, |addr| {
        client::get_ok(addr, &path, Duration::from_secs(10)).is_ok_and(|b| answered(&b))
    })?;
    Ok((ready.as_secs_f64(), first.as_secs_f64()))
}

/// Both restarts, one after the other. The server is left running.
pub fn measure(server: &mut Running) -> Result<RestartTimes, ServerError> {
    let clean_stop = server.stop_with(libc::SIGTERM, LIMIT)?;
    let (clean_ready, clean_first) = start_and_time(server)?;
    // Let it scrape and write a little after the restart, as a crash would find it.
    std::thread::sleep(Duration::from_secs(2));
    server.stop_with(libc::SIGKILL, LIMIT)?;
    let (kill_ready, kill_first) = start_and_time(server)?;
    Ok(RestartTimes {
        clean_stop_s: clean_stop.as_secs_f64(),
        clean_ready_s: clean_ready,
        clean_first_query_s: clean_first,
        kill_ready_s: kill_ready,
        kill_first_query_s: kill_first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_answer_is_not_an_answer() {
        assert!(answered(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"3"]}]}}"#
        ));
        assert!(!answered(
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
        ));
        assert!(!answered(r#"{"status":"error"}"#));
        assert!(!answered("Service Unavailable"));
    }
}
