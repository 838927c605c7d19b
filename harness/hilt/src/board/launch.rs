//! Launching a virtual board (or an emulator) as its own process, the way a lab would: run the profile's
//! command, wait for its ready line, and stop it cleanly when the session ends.
//!
//! The board runs in its own process group, so a terminal's Ctrl-C reaches hilt alone (which then stops
//! the board in order) and stopping signals the whole group, children included. It is also asked to
//! die with hilt (`PR_SET_PDEATHSIG`), so even a hilt killed outright leaves no board behind.

use regex::Regex;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use hilt_link::Secrets;

use super::BoardError;

/// Secrets masked in one board's stdout and stderr as hilt logs them (`HILT_LOG=hilt::board=debug`).
///
/// The board is launched before its credentials can be read (it may write them, as the virtual board
/// writes its label); the executor registers them with [`VirtualProcess::mask`] when a case starts,
/// and values that give a secret away before it sends them. Each line is masked with what is known
/// when it is logged, in any ASCII case, as transcripts are; before that (and for a secret never
/// registered) the value of a `password=`-style line, as a unit label writes it, is masked too.
type OutputSecrets = Arc<Mutex<Secrets>>;

/// `password=V`, `passwd = V`, `secret=V`, `token=V` (a label line, a log field): `V` is masked.
static SECRET_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(password|passwd|passphrase|pwd|secret|token)(\s*=\s*)("[^"]*"|\S+)"#)
        .expect("valid regex")
});

/// A line of the board's output as it may be logged.
fn masked_line(secrets: &OutputSecrets, line: &str) -> String {
    let text = secrets
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .mask_str(line);
    SECRET_FIELD
        .replace_all(&text, "${1}${2}‹secret›")
        .into_owned()
}

pub struct VirtualProcess {
    child: Child,
    /// Held open: the board exits when hilt dies and this pipe closes.
    stdin: Option<ChildStdin>,
    program: String,
    secrets: OutputSecrets,
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
        // Orphans of the board (its own children) are reparented to hilt rather than to init, so
        // hilt can reap them too.
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::debug!("cannot become a child subreaper: {e}");
        }
        let mut command = Command::new(program);
        command.args(args).process_group(0);
        // SAFETY: between fork and exec only async-signal-safe calls: prctl(2) via nix.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BoardError::Launch(format!("cannot start {program}: {e}")))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel::<String>();
        let secrets = OutputSecrets::default();
        // Keep draining both pipes for the board's whole life so it never blocks on a full pipe.
        let out_secrets = secrets.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                tracing::debug!(target: "hilt::board", "stdout: {}", masked_line(&out_secrets, &line));
                let _ = tx.send(line);
            }
        });
        let err_secrets = secrets.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                tracing::debug!(target: "hilt::board", "stderr: {}", masked_line(&err_secrets, &line));
            }
        });
        let mut proc = VirtualProcess {
            child,
            stdin,
            program: program.clone(),
            secrets,
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

    /// Mask `secret` (a unit's password, a value giving it away) in the board's output that hilt
    /// logs from now on.
    pub fn mask(&self, secret: &str, label: &str) {
        self.secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(secret.as_bytes(), label);
    }

    /// The board's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Close its stdin, SIGTERM its process group, then SIGKILL the group if the board has not exited
    /// within a grace period; always reaped.
    pub fn stop(&mut self) {
        use nix::sys::signal::{Signal, killpg};
        drop(self.stdin.take());
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = killpg(group, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if self.child.try_wait().ok().flatten().is_none() {
            tracing::warn!("{} did not stop on SIGTERM; killing it", self.program);
        }
        // Whatever is left of the group (the leader, or children it left behind) goes now.
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
        reap_group(group);
    }
}

/// Reap the group's remaining members (reparented to hilt, the subreaper), for up to a second.
fn reap_group(group: nix::unistd::Pid) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let any_in_group = nix::unistd::Pid::from_raw(-group.as_raw());
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match waitpid(any_in_group, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(10)),
            Ok(_) => {}
            Err(_) => return, // ECHILD: none left
        }
    }
}

impl Drop for VirtualProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_board_output_masks_registered_secrets_and_password_fields() {
        let secrets = OutputSecrets::default();
        secrets
            .lock()
            .unwrap()
            .add(b"Qx7launchtest", "unit-secret-1");
        let masked_line = |l: &str| super::masked_line(&secrets, l);
        assert_eq!(
            masked_line("INFO login succeeded with QX7LAUNCHTEST and qx7launchtest!"),
            "INFO login succeeded with ‹secret:unit-secret-1› and ‹secret:unit-secret-1›!"
        );
        assert_eq!(
            masked_line("provisioned serial=VRB-1 password=abc123 Token = \"x y\" pw-ok"),
            "provisioned serial=VRB-1 password=‹secret› Token = ‹secret› pw-ok"
        );
        assert_eq!(masked_line("PTY /dev/pts/3"), "PTY /dev/pts/3");
    }
}
