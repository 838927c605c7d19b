//! A vendor dump command: a tool such as `esptool.py --port /dev/ttyUSB0 read_flash 0 0x400000 dump.bin`
//! writes a dump file, then regions are read from that file like a [`FileImage`].
//!
//! The tool runs once, on the first read, in its own process group under a timeout (the smaller of
//! [`DumpCommand::timeout`] and what is left of [`Limits::deadline`]). On timeout or cancel the whole
//! group is killed, and the tool is always reaped. A missing program or a failing tool is bench trouble
//! ([`MemoryError::Unreachable`]) naming the program, the exit status and the end of its stderr.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;
use tracing::debug;

use super::file::FileImage;
use super::{Limits, MemoryError, MemoryLink, Region};
use crate::cancel::POLL;

/// How much of the tool's stderr (and stdout) is kept for the error message.
pub const TAIL_BYTES: usize = 4096;

/// How long output is still collected after the tool exits (a grandchild may hold the pipes).
const DRAIN: Duration = Duration::from_millis(200);

/// A command that writes a dump to `output`, and the image read from it once it has run.
#[derive(Debug)]
pub struct DumpCommand {
    /// The program and its arguments (no shell).
    pub argv: Vec<String>,
    /// Where the tool writes the dump. Removed before the tool runs, so a stale dump is never read.
    pub output: PathBuf,
    /// The most the tool may take (the snapshot's deadline may cut it shorter).
    pub timeout: Duration,
    image: Option<FileImage>,
}

impl DumpCommand {
    pub fn new(argv: Vec<String>, output: impl Into<PathBuf>, timeout: Duration) -> Self {
        DumpCommand {
            argv,
            output: output.into(),
            timeout,
            image: None,
        }
    }

    /// True once the tool has run and its dump is open.
    pub fn has_run(&self) -> bool {
        self.image.is_some()
    }

    /// Run the tool now (reads do it on first use), and open the dump it wrote.
    pub fn run(&mut self, limits: &Limits) -> Result<(), MemoryError> {
        let program = self.argv.first().cloned().unwrap_or_default();
        if program.is_empty() {
            return Err(self.unreachable("the dump command is empty".into()));
        }
        match std::fs::symlink_metadata(&self.output) {
            Ok(m) if m.is_file() || m.file_type().is_symlink() => {
                std::fs::remove_file(&self.output).map_err(|e| {
                    self.unreachable(format!(
                        "cannot remove the old dump {}: {e}",
                        self.output.display()
                    ))
                })?;
            }
            Ok(_) => {
                return Err(self.unreachable(format!(
                    "the output {} exists and is not a file",
                    self.output.display()
                )));
            }
            Err(_) => {}
        }

        let mut child = Command::new(&program)
            .args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => {
                    self.unreachable(format!("program `{program}` not found"))
                }
                _ => self.unreachable(format!("cannot run `{program}`: {e}")),
            })?;
        debug!(command = %self.shown(), pid = child.id(), "dump command: started");
        let outcome = supervise(&mut child, self.timeout, limits);
        // Always reaped, whatever happened above.
        let status = match child.wait() {
            Ok(status) => status,
            Err(e) => return Err(self.unreachable(format!("cannot reap `{program}`: {e}"))),
        };
        let run = outcome.map_err(|stop| match stop {
            Stop::Cancelled => MemoryError::Cancelled,
            Stop::TimedOut(after) => MemoryError::Timeout {
                source_desc: self.describe(),
                what: format!("running `{}`", self.shown()),
                after,
            },
            Stop::Io(e) => self.unreachable(format!("watching `{program}` failed: {e}")),
        })?;
        debug!(command = %self.shown(), %status, "dump command: finished");
        if !status.success() {
            let tail = if run.stderr.trim().is_empty() {
                run.stdout
            } else {
                run.stderr
            };
            let tail = tail.trim();
            return Err(self.unreachable(format!(
                "`{program}` failed ({}){}",
                describe_status(status),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            )));
        }
        if !self.output.exists() {
            return Err(self.unreachable(format!(
                "`{program}` succeeded but wrote no dump at {}",
                self.output.display()
            )));
        }
        self.image = Some(FileImage::open(&self.output)?);
        Ok(())
    }

    fn shown(&self) -> String {
        self.argv.join(" ")
    }

    fn unreachable(&self, reason: String) -> MemoryError {
        MemoryError::Unreachable {
            source_desc: self.describe(),
            reason,
        }
    }
}

impl MemoryLink for DumpCommand {
    fn describe(&self) -> String {
        format!("command `{}` → {}", self.shown(), self.output.display())
    }

    fn read(&mut self, region: &Region, limits: &Limits) -> Result<Vec<u8>, MemoryError> {
        limits.admit(region)?;
        if self.image.is_none() {
            self.run(limits)?;
        }
        match self.image.as_mut() {
            Some(image) => image.read(region, limits),
            None => Err(self.unreachable("the dump is not open".into())),
        }
    }
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {sig}"),
        },
        _ => status.to_string(),
    }
}

/// Why the tool was stopped before it finished.
enum Stop {
    Cancelled,
    TimedOut(Duration),
    Io(io::Error),
}

/// What the tool printed, the last [`TAIL_BYTES`] of each stream.
struct Output {
    stdout: String,
    stderr: String,
}

/// The last bytes of a stream.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        if self.0.len() > 2 * TAIL_BYTES {
            let cut = self.0.len() - TAIL_BYTES;
            self.0.drain(..cut);
        }
    }

    fn text(&self) -> String {
        let start = self.0.len().saturating_sub(TAIL_BYTES);
        String::from_utf8_lossy(&self.0[start..]).into_owned()
    }
}

/// Wait for the tool while collecting its output; on timeout or cancel kill its process group. Returns
/// with the tool exited but not yet reaped (the caller reaps it), so its group id cannot be reused
/// while it is signalled.
fn supervise(child: &mut Child, timeout: Duration, limits: &Limits) -> Result<Output, Stop> {
    let started = Instant::now();
    let deadline = (started + timeout).min(limits.deadline);
    let pid = Pid::from_raw(child.id() as i32);
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let fds = [
        stdout.as_ref().map(|s| s.as_fd()),
        stderr.as_ref().map(|s| s.as_fd()),
    ];
    for fd in fds.into_iter().flatten() {
        let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| Stop::Io(e.into()))?;
        fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )
        .map_err(|e| Stop::Io(e.into()))?;
    }
    let (mut out_tail, mut err_tail) = (Tail::default(), Tail::default());
    let kill = |why: &str| {
        debug!(
            pid = pid.as_raw(),
            why, "dump command: killing its process group"
        );
        let _ = killpg(pid, Signal::SIGKILL);
    };

    let stopped = loop {
        if limits.cancel.is_cancelled() {
            kill("cancelled");
            break Some(Stop::Cancelled);
        }
        let now = Instant::now();
        if now >= deadline {
            kill("timed out");
            break Some(Stop::TimedOut(deadline.saturating_duration_since(started)));
        }
        match exited(pid) {
            Ok(true) => break None,
            Ok(false) => {}
            Err(e) => {
                kill("cannot wait");
                break Some(Stop::Io(e));
            }
        }
        let wait = deadline.saturating_duration_since(now).min(POLL);
        if let Err(e) = pump(&mut stdout, &mut stderr, &mut out_tail, &mut err_tail, wait) {
            kill("cannot read its output");
            break Some(Stop::Io(e));
        }
    };
    if let Some(stop) = stopped {
        return Err(stop);
    }
    // The tool exited: gather what is still in the pipes, briefly, then end whatever it left behind in
    // its group (a helper holding the serial port would break the next step).
    let drain_until = Instant::now() + DRAIN;
    while stdout.is_some() || stderr.is_some() {
        let left = drain_until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if pump(&mut stdout, &mut stderr, &mut out_tail, &mut err_tail, left).is_err() {
            break;
        }
    }
    let _ = killpg(pid, Signal::SIGKILL);
    Ok(Output {
        stdout: out_tail.text(),
        stderr: err_tail.text(),
    })
}

/// Has the process exited? Leaves it unreaped (`WNOWAIT`).
fn exited(pid: Pid) -> io::Result<bool> {
    match waitid(
        Id::Pid(pid),
        WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
    ) {
        Ok(WaitStatus::StillAlive) => Ok(false),
        Ok(_) => Ok(true),
        Err(Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Wait up to `wait` for output on either pipe and keep its tail; a pipe at end of file is dropped.
fn pump(
    stdout: &mut Option<ChildStdout>,
    stderr: &mut Option<ChildStderr>,
    out_tail: &mut Tail,
    err_tail: &mut Tail,
    wait: Duration,
) -> io::Result<()> {
    let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
    let (out_ready, err_ready) = {
        let mut fds = Vec::with_capacity(2);
        if let Some(s) = stdout.as_ref() {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if let Some(s) = stderr.as_ref() {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if fds.is_empty() {
            std::thread::sleep(wait);
            return Ok(());
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let mut it = fds.iter();
        let out_ready = stdout.is_some() && it.next().is_some_and(ready);
        let err_ready = stderr.is_some() && it.next().is_some_and(ready);
        (out_ready, err_ready)
    };
    if out_ready && drain(stdout, out_tail)? {
        *stdout = None;
    }
    if err_ready && drain(stderr, err_tail)? {
        *stderr = None;
    }
    Ok(())
}

/// Read what a non-blocking pipe holds into `tail`; true at end of file.
fn drain<R: Read>(pipe: &mut Option<R>, tail: &mut Tail) -> io::Result<bool> {
    let Some(p) = pipe.as_mut() else {
        return Ok(true);
    };
    let mut buf = [0u8; 4096];
    loop {
        match p.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => tail.push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cancel;
    use std::path::Path;

    fn limits(within: Duration) -> Limits {
        Limits::new(1 << 20, within, Cancel::new())
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    fn region(start: u64, len: u64) -> Region {
        Region {
            name: "flash".into(),
            start,
            len,
        }
    }

    /// Gone, or (for a grandchild nobody here can reap) a zombie.
    fn gone(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    #[test]
    fn memory_command_writes_a_dump_that_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("dump.bin");
        // A stale dump from an earlier run must not be what is read.
        std::fs::write(&out, b"stale stale stale").unwrap();
        let script = format!(
            "printf 'ABCDEFGHIJKLMNOP' > '{}'; echo progress; echo noise >&2",
            out.display()
        );
        let mut cmd = DumpCommand::new(sh(&script), &out, Duration::from_secs(20));
        let lim = limits(Duration::from_secs(20));
        assert!(cmd.describe().contains("sh -c"));
        assert_eq!(cmd.read(&region(0, 4), &lim).unwrap(), b"ABCD");
        assert!(cmd.has_run());
        assert_eq!(cmd.read(&region(10, 6), &lim).unwrap(), b"KLMNOP");
        let err = cmd.read(&region(10, 7), &lim).unwrap_err();
        assert!(matches!(err, MemoryError::Protocol { .. }), "{err}");
    }

    #[test]
    fn memory_command_timeout_kills_and_reaps_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!("sleep 30 & echo $$ $! > '{}'; wait", pids.display());
        let mut cmd = DumpCommand::new(
            sh(&script),
            dir.path().join("dump.bin"),
            Duration::from_millis(500),
        );
        let started = Instant::now();
        let err = cmd
            .read(&region(0, 4), &limits(Duration::from_secs(30)))
            .unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, MemoryError::Timeout { .. }), "{err}");
        assert!(!err.is_refusal());
        assert!(took < Duration::from_secs(5), "{took:?}");
        let text = std::fs::read_to_string(&pids).unwrap();
        let ids: Vec<i32> = text
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect();
        // The shell (our child) is reaped: no such process at all.
        assert!(
            !Path::new(&format!("/proc/{}", ids[0])).exists(),
            "the tool was not reaped"
        );
        // Its background sleep (same group) was killed too.
        let until = Instant::now() + Duration::from_secs(5);
        while !gone(ids[1]) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(ids[1]), "the tool's group was not killed");
    }

    #[test]
    fn memory_command_cancel_kills_the_tool() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("echo $$ > '{}'; exec sleep 30", pid_file.display());
        let mut cmd = DumpCommand::new(
            sh(&script),
            dir.path().join("dump.bin"),
            Duration::from_secs(60),
        );
        let lim = limits(Duration::from_secs(60));
        let c = lim.cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            c.cancel(15);
        });
        let started = Instant::now();
        let err = cmd.read(&region(0, 4), &lim).unwrap_err();
        assert!(matches!(err, MemoryError::Cancelled), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        assert!(!Path::new(&format!("/proc/{}", pid.trim())).exists());
    }

    #[test]
    fn memory_command_missing_program_is_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = DumpCommand::new(
            vec!["hilt-no-such-dump-tool".into(), "read_flash".into()],
            dir.path().join("dump.bin"),
            Duration::from_secs(5),
        );
        let err = cmd
            .read(&region(0, 4), &limits(Duration::from_secs(5)))
            .unwrap_err();
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("hilt-no-such-dump-tool"), "{err}");
        let mut empty = DumpCommand::new(vec![], dir.path().join("d"), Duration::from_secs(5));
        assert!(matches!(
            empty.read(&region(0, 4), &limits(Duration::from_secs(5))),
            Err(MemoryError::Unreachable { .. })
        ));
    }

    #[test]
    fn memory_command_failure_names_status_and_stderr_tail() {
        let dir = tempfile::tempdir().unwrap();
        // 10 000 lines of chatter on stderr, then the real error: only the tail is kept.
        let script = "i=0; while [ $i -lt 10000 ]; do echo chatter $i >&2; i=$((i+1)); done; \
                      echo 'A fatal error occurred: Failed to connect to ESP32' >&2; exit 2";
        let mut cmd = DumpCommand::new(
            sh(script),
            dir.path().join("dump.bin"),
            Duration::from_secs(30),
        );
        let err = cmd
            .read(&region(0, 4), &limits(Duration::from_secs(30)))
            .unwrap_err();
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("exit status 2"), "{msg}");
        assert!(msg.contains("Failed to connect to ESP32"), "{msg}");
        assert!(!msg.contains("chatter 0\n"), "the whole stderr was kept");
        assert!(msg.len() < TAIL_BYTES + 1024, "{}", msg.len());

        // Success without a dump is an error too, not a stale read.
        let mut quiet = DumpCommand::new(
            sh("true"),
            dir.path().join("dump.bin"),
            Duration::from_secs(10),
        );
        let err = quiet
            .read(&region(0, 4), &limits(Duration::from_secs(10)))
            .unwrap_err();
        assert!(err.to_string().contains("wrote no dump"), "{err}");
    }
}
