//! The example profiles for real boards (boards/examples/: a probe-rs board, an OpenOCD GDB server, an
//! esptool dump) load and run on a machine without their hardware, and every case that needs it is
//! NOT_TESTED with the reason (what could not be reached), never PASS and never the device's FAIL.

use std::path::Path;

mod common;
use common::{hilt, root, text};

/// Runs `filter` against example `board`; the one case's (verdict, reason).
fn run(board: &str, filter: &str) -> (String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let board = root().join("boards/examples").join(board);
    let o = hilt(
        &[
            "run",
            "--board",
            board.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            filter,
        ],
        tmp.path(),
    );
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("report.json")).unwrap_or_else(|e| panic!("{e}: {}", text(&o))),
    )
    .unwrap();
    let cases = report["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{}", text(&o));
    let c = &cases[0];
    (
        c["verdict"].as_str().unwrap().to_string(),
        c["reason"].as_str().unwrap().to_string(),
    )
}

#[test]
fn a_probe_rs_board_without_its_probe_is_not_tested_saying_so() {
    let (v, why) = run("nrf52840-dk-probe-rs.toml", "ex.debug.port-locked");
    assert_eq!(v, "NOT_TESTED", "{why}");
    assert!(
        why.contains("probe-rs nRF52840_xxAA via 1366:1015:000683000001 cannot be reached"),
        "{why}"
    );
}

#[test]
fn a_gdb_server_board_without_its_server_is_not_tested_saying_so() {
    // Nothing may listen on OpenOCD's port for this to mean anything: say so rather than pass.
    assert!(
        std::net::TcpStream::connect("127.0.0.1:3333").is_err(),
        "something listens on 127.0.0.1:3333 (an OpenOCD?): stop it to run this test"
    );
    let (v, why) = run("openocd-gdb.toml", "ex.debug.port-locked");
    assert_eq!(v, "NOT_TESTED", "{why}");
    assert!(
        why.contains("gdb-remote 127.0.0.1:3333 cannot be reached"),
        "{why}"
    );
}

#[test]
fn a_vendor_dump_without_its_tool_or_board_is_not_tested_saying_so() {
    let (v, why) = run("esp32-esptool.toml", "ea.fleet.no-shared-secrets");
    assert_eq!(v, "NOT_TESTED", "{why}");
    assert!(why.contains("esptool.py"), "{why}");
    assert!(why.contains("cannot be reached"), "{why}");
}

#[test]
fn every_example_profile_loads() {
    let dir = root().join("boards/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        hilt_model::profile::BoardProfile::load(Path::new(&path))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 3, "{seen} example profiles");
}
