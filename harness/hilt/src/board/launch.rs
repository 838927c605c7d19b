//! Launching a virtual board (or an emulator) as its own process, the way a lab would: run the profile's
//! command, wait for its ready line, and stop it cleanly when the session ends.

use regex::Regex;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::BoardError;

pub struct VirtualProcess {
    child: Child,
    /// Held open: the board exits when hilt dies and this pipe closes.
    _stdin: Option<ChildStdin>,
    program: String,
}

impl VirtualProcess {
    /// Start `argv` and wait up to `timeout` for a stdout line matching `ready`; its named groups are returned.
    pub fn start(
        argv: &[String],
        ready: &Regex,
        timeout: Duration,
    ) -> Result<(Self, BTreeMap<String, String>), BoardError> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| BoardError::Launch("launch.command is empty".into()))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BoardError::Launch(format!("cannot start {program}: {e}")))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel::<String>();
        // Keep draining both pipes for the board's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                tracing::debug!(target: "hilt::board", "stdout: {line}");
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                tracing::debug!(target: "hilt::board", "stderr: {line}");
            }
        });
        let mut proc = VirtualProcess {
            child,
            _stdin: stdin,
            program: program.clone(),
        };
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(caps) = ready.captures(&line) {
                        let vars = ready
                            .capture_names()
                            .flatten()
                            .filter_map(|n| {
                                caps.name(n)
                                    .map(|m| (n.to_string(), m.as_str().to_string()))
                            })
                            .collect();
                        return Ok((proc, vars));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(BoardError::Launch(format!(
                        "{} printed no line matching {:?} within {timeout:?}",
                        proc.program,
                        ready.as_str()
                    )));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = proc
                        .child
                        .wait()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|e| e.to_string());
                    return Err(BoardError::Launch(format!(
                        "{} exited ({status}) before it was ready",
                        proc.program
                    )));
                }
            }
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within a grace period.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!("{} did not stop on SIGTERM; killing it", self.program);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for VirtualProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
