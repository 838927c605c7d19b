//! A board whose USB console re-enumerates, through the whole `hilt run`: the test plays the device on
//! real pseudo-terminals and publishes it on a bus file (the profile's `bus`), as a native-USB board's
//! console that comes back under a new tty after a reset. Three devices: one that returns under a new
//! path mid-case (the case completes), one whose place is taken by another unit of the same model (it
//! is never opened, the case ends without a verdict on the device), and one that never returns (the
//! case ends with the evidence so far and the run goes on to the next case).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::termios;

mod common;
use common::{hilt, text, verdict};

const SERIAL: &str = "DEV-0001";

struct Pty {
    master: File,
    _slave: OwnedFd,
    path: PathBuf,
}

fn pty() -> Pty {
    let pair = nix::pty::openpty(None, None).expect("openpty");
    let mut t = termios::tcgetattr(&pair.slave).expect("tcgetattr");
    termios::cfmakeraw(&mut t);
    termios::tcsetattr(&pair.slave, termios::SetArg::TCSANOW, &t).expect("tcsetattr");
    let path = nix::unistd::ttyname(&pair.slave).expect("ttyname");
    // openpty's descriptors are inherited by hilt, which would keep the device "plugged in".
    for fd in [&pair.master, &pair.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .expect("cloexec");
    }
    Pty {
        master: File::from(pair.master),
        _slave: pair.slave,
        path,
    }
}

/// Publishes the bus: the device `serial` with its console at `tty`, or nothing.
fn publish(bus: &Path, device: Option<(&str, &Path)>) {
    let list = match device {
        Some((serial, tty)) => serde_json::json!([{
            "vid": 0x1209, "pid": 0x0002, "serial": serial, "class": 2, "subclass": 0,
            "protocol": 0, "location": "1-1",
            "interfaces": [{ "number": 0, "class": 2, "subclass": 2, "protocol": 1, "tty": tty.display().to_string() }]
        }]),
        None => serde_json::json!([]),
    };
    let tmp = bus.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&list).unwrap()).unwrap();
    std::fs::rename(&tmp, bus).unwrap();
}

/// Reads one command line from the device's end, waiting at most 30 s.
fn command(p: &mut Pty) -> Option<String> {
    let until = Instant::now() + Duration::from_secs(30);
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    nix::fcntl::fcntl(
        &p.master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    while Instant::now() < until {
        match p.master.read(&mut b) {
            Ok(1) if b[0] == b'\r' || b[0] == b'\n' => {
                if !line.is_empty() {
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
            }
            Ok(1) => line.push(b[0]),
            Ok(_) => return None,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(_) => return None,
        }
    }
    None
}

#[derive(Clone, Copy)]
enum Then {
    /// Comes back under a new tty 300 ms later, printing its identity as it boots.
    Returns,
    /// Another unit of the model appears under the new tty instead.
    Impostor,
    /// Never comes back.
    Gone,
}

/// The device: answers `info` with its model; at the first one it vanishes instead, then does `then`.
fn device(bus: PathBuf, then: Then) -> thread::JoinHandle<usize> {
    let mut p = pty();
    publish(&bus, Some((SERIAL, &p.path)));
    thread::spawn(move || {
        let mut answered = 0;
        let mut vanished = false;
        while let Some(cmd) = command(&mut p) {
            if cmd != "info" {
                continue;
            }
            if vanished {
                let _ = p.master.write_all(b"model=DEV-1 ok\r\n");
                answered += 1;
                continue;
            }
            vanished = true;
            publish(&bus, None);
            drop(std::mem::replace(&mut p, pty()));
            thread::sleep(Duration::from_millis(300));
            match then {
                Then::Returns => {
                    publish(&bus, Some((SERIAL, &p.path)));
                    thread::sleep(Duration::from_millis(100));
                    let _ = p.master.write_all(b"boot\r\nmodel=DEV-1 ok\r\n");
                    answered += 1;
                }
                Then::Impostor => {
                    publish(&bus, Some(("DEV-0002", &p.path)));
                    let _ = p.master.write_all(b"model=OTHER-1 ok\r\n");
                    // Held for the other case's wait; nobody may read this.
                    thread::sleep(Duration::from_secs(3));
                    return answered;
                }
                Then::Gone => return answered,
            }
        }
        answered
    })
}

/// A suite of two cases, each reading the model once, and a profile finding the console on `bus`.
fn suite(dir: &Path, bus: &Path) -> PathBuf {
    let root = dir.join("suite");
    std::fs::create_dir_all(root.join("test-cases/t")).unwrap();
    std::fs::create_dir_all(root.join("boards")).unwrap();
    for id in ["a", "b"] {
        std::fs::write(
            root.join(format!("test-cases/t/{id}.toml")),
            format!(
                r#"schema = 1
id = "t.model.{id}"
title = "t"
kind = "functional"
purpose = "p"
pass_criteria = "c"
[provisions]
en303645 = ["5.3-16"]
[[step]]
id = "who"
action = "identify"
with = {{}}
[[check]]
kind = "capture-equals"
step = "who"
capture = "model"
expected = "DEV-1"
"#
            ),
        )
        .unwrap();
    }
    let profile = root.join("boards/dev.toml");
    std::fs::write(
        &profile,
        format!(
            r#"schema = 1
[board]
name = "dev"
[identity]
manufacturer = "Test"
model = "DEV-1"
hardware_version = "1"
firmware_version = "1"
[[unit]]
serial = "{SERIAL}"
[links.console]
kind = "serial"
usb = {{ vid = "0x1209", pid = "0x0002", serial = "{{unit.serial}}", interface = 0 }}
bus = "{}"
reattach_ms = 1500
[ics.provisions]
"5.3-16" = {{ support = "Y", detail = "d" }}
[bindings.identify]
link = "console"
timeout_ms = 8000
[[bindings.identify.steps]]
send = "info\r"
[[bindings.identify.steps]]
expect = 'model=(?P<model>\S+) ok'
"#,
            bus.display()
        ),
    )
    .unwrap();
    root
}

fn run(then: Then) -> (serde_json::Value, String, usize) {
    let dir = tempfile::tempdir().unwrap();
    let bus = dir.path().join("bus.json");
    let root = suite(dir.path(), &bus);
    let dev = device(bus, then);
    let out = dir.path().join("run");
    let o = hilt(
        &[
            "run",
            "--suite",
            root.to_str().unwrap(),
            "--board",
            root.join("boards/dev.toml").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let answered = dev.join().unwrap();
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("report.json")).unwrap_or_else(|e| panic!("{e}: {}", text(&o))),
    )
    .unwrap();
    let log =
        std::fs::read_to_string(out.join("evidence/t.model.a/console.log")).unwrap_or_default();
    (report, log, answered)
}

fn reason(report: &serde_json::Value, case: &str) -> String {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == case)
        .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[test]
fn a_console_back_under_a_new_path_completes_the_case() {
    let (report, log, answered) = run(Then::Returns);
    assert_eq!(
        verdict(&report, "t.model.a"),
        "PASS",
        "{log}{}",
        reason(&report, "t.model.a")
    );
    assert_eq!(
        verdict(&report, "t.model.b"),
        "PASS",
        "{}",
        reason(&report, "t.model.b")
    );
    assert!(log.contains("link lost"), "{log}");
    assert!(log.contains("reattached at /dev/pts/"), "{log}");
    assert_eq!(answered, 2);
}

#[test]
fn another_unit_in_its_place_is_never_opened_and_the_run_goes_on() {
    let (report, log, _) = run(Then::Impostor);
    let a = verdict(&report, "t.model.a");
    assert!(
        a == "ERROR" || a == "INCONCLUSIVE",
        "{a}: {}",
        reason(&report, "t.model.a")
    );
    assert!(!log.contains("OTHER-1"), "the impostor was read: {log}");
    assert!(log.contains("did not return within 1500 ms"), "{log}");
    // The next case runs, and finds no such device on the bus.
    assert_eq!(verdict(&report, "t.model.b"), "NOT_TESTED");
    assert!(
        reason(&report, "t.model.b").contains("1209:0002:DEV-0001"),
        "{}",
        reason(&report, "t.model.b")
    );
}

#[test]
fn a_console_that_never_returns_ends_its_case_and_the_run_goes_on() {
    let (report, log, _) = run(Then::Gone);
    let a = verdict(&report, "t.model.a");
    assert!(
        a == "ERROR" || a == "INCONCLUSIVE",
        "{a}: {}",
        reason(&report, "t.model.a")
    );
    assert!(log.contains("did not return within 1500 ms"), "{log}");
    assert_eq!(verdict(&report, "t.model.b"), "NOT_TESTED");
    assert_eq!(report["summary"]["gate"], "UNDECIDED");
}
