//! Drives the built board binary over its real pseudo-terminal, as the harness does.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[path = "support/serial.rs"]
mod serial;

use serial::{expect, send};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A running board; killed if a test fails before stopping it.
struct Board {
    child: Child,
    pty: String,
}

impl Drop for Board {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(state: &Path, extra: &[&str]) -> Board {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hilt-vboard"))
        .arg("run")
        .arg("--state")
        .arg(state)
        .args(["--max-failures", "3", "--failure-delay-ms", "50"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env("HILT_VBOARD_LOG", "warn")
        .spawn()
        .expect("spawn board");
    let pty = serial::pty_path(&mut child);
    Board { child, pty }
}

fn open(board: &Board) -> serialport::TTYPort {
    serialport::new(&board.pty, 115_200)
        .timeout(Duration::from_millis(100))
        .open_native()
        .expect("open pty slave")
}

fn wait_exit(board: &mut Board) -> ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = board.child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "board did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn terminate(board: &mut Board) -> ExitStatus {
    kill(Pid::from_raw(board.child.id() as i32), Signal::SIGTERM).unwrap();
    wait_exit(board)
}

fn label_field(state: &Path, key: &str) -> String {
    let label = std::fs::read_to_string(state.join("label.txt")).unwrap();
    label
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("label has no {key}: {label}"))
        .to_string()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn login_info_wrong_password_and_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("unit");
    let ready = tmp.path().join("ready");
    let mut board = spawn(&state, &["--ready-file", ready.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&ready).unwrap(), board.pty);
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("label.txt")), 0o600);
    let password = label_field(&state, "password");
    let serial = label_field(&state, "serial");
    assert_eq!(password.len(), 12);
    let flash = std::fs::read(state.join("flash.img")).unwrap();
    assert!(!String::from_utf8_lossy(&flash).contains(&password));

    let mut port = open(&board);
    let banner = expect(&mut port, "login: ");
    assert!(
        banner.contains("VRB-1 virtual reference board, firmware 1.0.0"),
        "{banner}"
    );

    send(&mut port, "admin\r");
    expect(&mut port, "Password: ");
    send(&mut port, "not-the-password\r");
    let out = expect(&mut port, "login: ");
    assert!(out.contains("\r\nLogin incorrect\r\n"), "{out}");

    send(&mut port, "admin\r");
    expect(&mut port, "Password: ");
    send(&mut port, &format!("{password}\r"));
    let out = expect(&mut port, "vrb$ ");
    assert!(out.contains("Welcome, admin"), "{out}");
    assert!(!out.contains(&password), "password echoed: {out}");

    send(&mut port, "info\r");
    let out = expect(&mut port, "vrb$ ");
    assert!(
        out.contains(&format!("model=VRB-1 serial={serial} hw=1.0 fw=1.0.0\r\n")),
        "{out}"
    );

    let status = terminate(&mut board);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn lockout_survives_a_restart_and_serial_comes_from_flash() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("unit");
    let mut board = spawn(&state, &["--serial", "SN-FIRST", "--lockout-ms", "60000"]);
    let password = label_field(&state, "password");
    let mut port = open(&board);
    expect(&mut port, "login: ");
    for _ in 0..3 {
        send(&mut port, "admin\rwrong\r");
        expect(&mut port, "Login incorrect");
    }
    drop(port);
    assert_eq!(terminate(&mut board).code(), Some(0));
    drop(board);

    let mut board = spawn(&state, &["--serial", "SN-SECOND", "--lockout-ms", "60000"]);
    let mut port = open(&board);
    expect(&mut port, "login: ");
    send(&mut port, &format!("admin\r{password}\r"));
    let out = expect(&mut port, "login: ");
    assert!(
        out.contains("Too many failed attempts, try again in"),
        "{out}"
    );
    assert!(!out.contains("Welcome"), "{out}");
    assert_eq!(label_field(&state, "serial"), "SN-FIRST");
    assert_eq!(terminate(&mut board).code(), Some(0));
}

#[test]
fn closing_stdin_stops_the_board_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut board = spawn(tmp.path(), &["--exit-on-stdin-eof"]);
    drop(board.child.stdin.take());
    assert_eq!(wait_exit(&mut board).code(), Some(0));
}

#[test]
fn defects_listing_and_refusals() {
    let bin = env!("CARGO_BIN_EXE_hilt-vboard");
    let out = Command::new(bin).arg("defects").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("universal-default-password\t"), "{text}");
    assert!(text.contains("no-login-rate-limit\t"), "{text}");

    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args(["run", "--state"])
        .arg(tmp.path())
        .args(["--defect", "open-telnet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("open-telnet") && err.contains("no-login-rate-limit"),
        "{err}"
    );

    std::fs::write(tmp.path().join("flash.img"), b"VRBFLASH garbage").unwrap();
    let out = Command::new(bin)
        .args(["run", "--state"])
        .arg(tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
    assert!(
        out.stdout.is_empty(),
        "no PTY line for a unit that cannot boot"
    );
}

#[test]
fn universal_default_password_defect() {
    let tmp = tempfile::tempdir().unwrap();
    let mut board = spawn(tmp.path(), &["--defect", "universal-default-password"]);
    assert_eq!(label_field(tmp.path(), "password"), "admin");
    let mut port = open(&board);
    expect(&mut port, "login: ");
    send(&mut port, "admin\radmin\r");
    expect(&mut port, "Welcome, admin");
    assert_eq!(terminate(&mut board).code(), Some(0));
}

#[test]
fn lockout_bypass_defect_accepts_the_right_password_while_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut board = spawn(
        tmp.path(),
        &["--defect", "lockout-bypass", "--lockout-ms", "60000"],
    );
    let password = label_field(tmp.path(), "password");
    let mut port = open(&board);
    expect(&mut port, "login: ");
    for _ in 0..3 {
        send(&mut port, "admin\rwrong\r");
        expect(&mut port, "Login incorrect");
    }
    // A wrong password is answered "locked" …
    send(&mut port, "admin\rstill-wrong\r");
    expect(
        &mut port,
        "Too many failed attempts, try again in 60 s\r\n\r\nlogin: ",
    );
    // … but the right one walks through the lockout.
    send(&mut port, &format!("admin\r{password}\r"));
    let out = expect(&mut port, "vrb$ ");
    assert!(!out.contains("Too many failed attempts"), "{out}");
    assert!(out.contains("Welcome, admin"), "{out}");
    assert_eq!(terminate(&mut board).code(), Some(0));
}

/// Write with retries: the board drains the pty, but not instantly.
fn send_bulk(port: &mut serialport::TTYPort, mut data: &[u8]) {
    let deadline = Instant::now() + TIMEOUT;
    while !data.is_empty() {
        assert!(Instant::now() < deadline, "board stopped reading");
        match port.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("write: {e}"),
        }
    }
}

/// CPU time (user + system, in clock ticks) the process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn babbling_host_is_survived_and_idle_board_sleeps() {
    let tmp = tempfile::tempdir().unwrap();
    let mut board = spawn(tmp.path(), &[]);
    let password = label_field(tmp.path(), "password");
    let mut port = open(&board);
    expect(&mut port, "login: ");

    let before = cpu_ticks(board.child.id());
    std::thread::sleep(Duration::from_millis(500));
    let idle = cpu_ticks(board.child.id()) - before;
    assert!(
        idle <= 5,
        "idle board used {idle} ticks in 0.5 s: busy loop?"
    );

    // 256 KiB of binary junk with no line ending, sent without reading the echo.
    let mut x: u32 = 0x9e37_79b9;
    let junk: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .filter(|b| !matches!(b, b'\r' | b'\n' | 0x03))
        .collect();
    send_bulk(&mut port, &junk);
    send(&mut port, "\r");
    expect(&mut port, "\r\nerror: line too long\r\nlogin: ");
    send(&mut port, &format!("admin\r{password}\r"));
    expect(&mut port, "Welcome, admin\r\nvrb$ ");
    assert_eq!(terminate(&mut board).code(), Some(0));
}
