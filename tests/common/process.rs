//! A child process the test started, with its stderr in a log file: killed and reaped when
//! dropped, so a failing (panicking) test leaves nothing running, and its log tail printed
//! in that case so the failure can be understood from the test output alone.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::wait::wait_until;

const LOG_TAIL_LINES: usize = 40;

pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with stdout discarded and stderr (where the servers log) in `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Process {
        let file = File::create(log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({command:?}): {e}"));
        Process {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "--- last lines of {} ({}) ---\n{}\n---",
            self.name,
            self.log.display(),
            lines[from..].join("\n")
        )
    }

    /// The exit status if the process has exited (it is then reaped).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            _ => None,
        }
    }

    /// Waits (bounded) for the process to exit on its own.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        wait_until(within, || self.exited())
    }

    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on the pid of our own unreaped child: it cannot have been
            // recycled for another process.
            let rc = unsafe { libc::kill(child.id() as i32, signal) };
            assert_eq!(rc, 0, "kill({}, {signal}) failed", self.name);
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let running = self.child.is_some();
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "{}{}",
                if running { "" } else { "(had exited) " },
                self.log_tail()
            );
        }
    }
}
