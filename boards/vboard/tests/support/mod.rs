//! Launching the board binary and talking to its console, for the integration tests.

#![allow(dead_code)]

pub mod peer;
pub mod serial;
pub mod update_server;

pub use serial::{expect, send};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A running board; killed when dropped.
pub struct Board {
    pub child: Child,
    pub pty: String,
    pub stderr: PathBuf,
}

impl Drop for Board {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Board {
    /// What the board logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// Starts `hilt-vboard run --state <dir>/unit <extra>`, logging at `log_level` into `<dir>/stderr`.
pub fn spawn(dir: &Path, extra: &[&str], log_level: &str) -> Board {
    spawn_ready(dir, extra, log_level).0
}

/// [`spawn`], with the ready line the board printed.
pub fn spawn_ready(dir: &Path, extra: &[&str], log_level: &str) -> (Board, String) {
    let stderr = dir.join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hilt-vboard"))
        .arg("run")
        .arg("--state")
        .arg(dir.join("unit"))
        .args(["--failure-delay-ms", "50"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .env("HILT_VBOARD_LOG", log_level)
        .spawn()
        .expect("spawn board");
    let line = serial::ready_line(&mut child);
    let pty = serial::pty_of(&line);
    (Board { child, pty, stderr }, line)
}

/// The password printed on the unit's label.
pub fn label_password(dir: &Path) -> String {
    let label = std::fs::read_to_string(dir.join("unit/label.txt")).unwrap();
    label
        .lines()
        .find_map(|l| l.strip_prefix("password="))
        .expect("password on label")
        .to_string()
}

/// Logs in with the label's password at a login prompt that was already read.
pub fn login_again(port: &mut serialport::TTYPort, dir: &Path) {
    send(port, "\r");
    expect(port, "login: ");
    send(port, &format!("admin\r{}\r", label_password(dir)));
    expect(port, "vrb$ ");
}

/// Stops the board with SIGTERM and waits for it to exit.
pub fn stop(board: &mut Board) {
    use nix::sys::signal::{Signal, kill};
    let pid = nix::unistd::Pid::from_raw(board.child.id() as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while board.child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "board did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Opens the console and logs in as admin with the password from the label.
pub fn login(board: &Board, dir: &Path) -> serialport::TTYPort {
    let password = label_password(dir);
    let mut port = serialport::new(&board.pty, 115_200)
        .timeout(Duration::from_millis(100))
        .open_native()
        .expect("open pty slave");
    expect(&mut port, "login: ");
    send(&mut port, &format!("admin\r{password}\r"));
    expect(&mut port, "vrb$ ");
    port
}

/// Runs a shell command and returns its output (up to the next prompt).
pub fn command(port: &mut serialport::TTYPort, cmd: &str) -> String {
    send(port, &format!("{cmd}\r"));
    expect(port, "vrb$ ")
}
