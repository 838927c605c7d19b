//! The exit-code table (src/cli/exit.rs) end to end, code by code, including runs that test nothing,
//! bad input files, unwritable outputs, and SIGINT/SIGTERM in the middle of a case: a signed partial
//! report, no board process and no state directory left behind.
//!
//! Codes 0 and 1 (and 3 for a silent device) are covered in `cli.rs` by full runs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

mod common;
use common::{hilt, hilt_cmd, root, text};
use std::time::{Duration, Instant};

#[test]
fn a_filter_that_selects_nothing_exits_2_and_signs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for args in [
        vec!["run", "--out", out.to_str().unwrap(), "nosuchcase"],
        vec!["run", "--out", out.to_str().unwrap(), "--skip", "."],
    ] {
        let o = hilt(&args, tmp.path());
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("no case matches"), "{err}");
        assert!(
            err.contains("nosuchcase") || err.contains("--skip ."),
            "the filter is named: {err}"
        );
        assert!(!out.join("report.dsse.json").exists());
    }
}

#[test]
fn a_labgrid_place_for_several_boards_or_an_empty_one_exits_2_and_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let board = root().join("boards/vboard.toml");
    let board = board.to_str().unwrap();
    let out_s = out.to_str().unwrap();
    for (args, says) in [
        (
            vec![
                "run",
                "--out",
                out_s,
                "--board",
                board,
                "--board",
                board,
                "--labgrid-place",
                "lab-7",
            ],
            "names the place of one board",
        ),
        (
            vec![
                "run",
                "--out",
                out_s,
                "--board",
                board,
                "--labgrid-place",
                " ",
            ],
            "give a place name",
        ),
    ] {
        let o = hilt(&args, tmp.path());
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{err}");
        assert!(!out.exists());
    }
}

#[test]
fn profiles_that_are_not_regular_files_exit_2_fast() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("board.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    for board in [Path::new("/dev/zero"), fifo.as_path()] {
        let started = Instant::now();
        let o = hilt(&["run", "--board", board.to_str().unwrap()], tmp.path());
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(board.to_str().unwrap()), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}

#[test]
fn an_unwritable_junit_path_exits_2_before_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let junit = tmp.path().join("no/such/dir/junit.xml");
    let o = hilt(
        &[
            "run",
            "--out",
            out.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "up.console.model-designation",
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!out.join("report.dsse.json").exists(), "nothing was run");
}

#[test]
fn a_bad_key_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key.pem");
    std::fs::write(&key, "not a key").unwrap();
    let o = hilt(
        &["run", "--key", key.to_str().unwrap(), "up.console"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn sigint_mid_case_leaves_a_signed_partial_report_and_exits_130() {
    interrupted_run(nix::sys::signal::Signal::SIGINT, 130);
}

#[test]
fn sigterm_mid_case_leaves_a_signed_partial_report_and_exits_143() {
    interrupted_run(nix::sys::signal::Signal::SIGTERM, 143);
}

/// The launched board: a child of `parent` whose command line runs `vboard`; its pid and `--state`.
fn board_of(parent: u32, within: Duration) -> (u32, PathBuf) {
    let until = Instant::now() + within;
    while Instant::now() < until {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid != Some(parent) {
                continue;
            }
            let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let args: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.iter().any(|a| a == "vboard")
                && let Some(i) = args.iter().position(|a| a == "--state")
            {
                return (pid, PathBuf::from(&args[i + 1]));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no board process appeared under hilt ({parent})");
}

fn interrupted_run(sig: nix::sys::signal::Signal, code: i32) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // One case at a time, so later cases are certain not to have started when the signal comes.
    let mut child = hilt_cmd(
        &["run", "--jobs", "1", "--out", out.to_str().unwrap()],
        tmp.path(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (board, state) = board_of(child.id(), Duration::from_secs(60));
    assert!(state.is_dir());
    // The first case (the brute-force lockout) takes seconds: signal it in the middle.
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "hilt did not stop within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(status.code(), Some(code), "{stdout}");
    assert!(
        !Path::new(&format!("/proc/{board}")).exists(),
        "the board process {board} is gone"
    );
    assert!(!state.exists(), "the state directory {state:?} is removed");
    let keys = tmp.path();
    let v = hilt(
        &[
            "verify",
            out.join("report.dsse.json").to_str().unwrap(),
            "--key",
            keys.join("dev-signing.pub.pem").to_str().unwrap(),
        ],
        keys,
    );
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["run"]["interrupted"], true);
    assert_eq!(r["summary"]["gate"], "UNDECIDED");
    let cases = r["cases"].as_array().unwrap();
    let last = cases.last().expect("the interrupted case is reported");
    assert_eq!(last["verdict"], "INCONCLUSIVE", "{last}");
    assert_eq!(last["reason"], "interrupted");
    assert!(
        last["evidence"].as_array().is_some_and(|e| !e.is_empty()),
        "its evidence is kept"
    );
    assert!((cases.len() as u64) < r["summary"]["cases_in_suite"].as_u64().unwrap());
}

#[test]
fn a_board_that_ignores_eof_and_sigterm_is_still_reaped() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("board.pid");
    let good = std::fs::read_to_string(root().join("boards/vboard.toml")).unwrap();
    let start = good.find("command = [").unwrap();
    let end = good.find("ready_timeout_ms").unwrap();
    let stubborn = format!(
        "{}command = [\"sh\", \"-c\", \"trap '' TERM INT HUP; echo $$ > \\\"$HILT_TEST_PIDFILE\\\"; echo PTY /dev/null; sleep 600 & wait\"]\nready = '^PTY (?P<console>\\S+)$'\n{}",
        &good[..start],
        &good[end..]
    );
    let p = tmp.path().join("stubborn.toml");
    std::fs::write(&p, stubborn).unwrap();
    let o = hilt_cmd(
        &[
            "run",
            "--board",
            p.to_str().unwrap(),
            "--out",
            tmp.path().join("out").to_str().unwrap(),
            "up.console.model-designation",
            "--exact",
        ],
        tmp.path(),
    )
    .env("HILT_TEST_PIDFILE", &pidfile)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let group: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(2))
                .and_then(|g| g.parse::<i32>().ok())
                == Some(group)
        })
        .collect();
    assert!(
        left.is_empty(),
        "processes of the board's group remain: {left:?}"
    );
}

#[test]
fn boards_lists_what_is_attached_and_exits_0_even_with_no_usb_bus() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        vec!["boards", "--ble-scan-ms", "200"],
        vec!["boards", "--json", "--ble-scan-ms", "200"],
    ] {
        let o = hilt(&args, tmp.path());
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let o = hilt(&["boards", "--json", "--ble-scan-ms", "200"], tmp.path());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in ["usb", "serial_ports", "probes", "ble"] {
        assert!(j.get(key).is_some(), "{key}: {j}");
    }
    if !std::path::Path::new("/sys/bus/usb").exists() {
        let why = j["usb"]["absent"].as_str().unwrap_or_default();
        assert!(why.starts_with("no USB bus on this machine"), "{j}");
        assert!(j["probes"]["absent"].is_string(), "{j}");
        let plain = text(&hilt(&["boards", "--ble-scan-ms", "200"], tmp.path()));
        assert!(plain.contains("no USB bus on this machine"), "{plain}");
    }
    // No D-Bus system bus (a CI container): no Bluetooth, said plainly.
    if !std::path::Path::new("/run/dbus/system_bus_socket").exists() {
        let why = j["ble"]["absent"].as_str().unwrap_or_default();
        assert!(
            why.starts_with("no Bluetooth adapter on this machine"),
            "{j}"
        );
        let plain = text(&hilt(&["boards", "--ble-scan-ms", "200"], tmp.path()));
        assert!(
            plain.contains("no Bluetooth adapter on this machine"),
            "{plain}"
        );
    }
}
