//! Shared fixtures: a report directory with evidence, signed by a fixed test key.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use hilt_report::digest::sha256_bytes;
use hilt_report::keys::KeyPair;
use hilt_report::sign::{Subject, write_signed_report};
use serde_json::{Value, json};

pub fn test_key() -> KeyPair {
    KeyPair::from_seed(&[7u8; 32])
}

pub fn other_key() -> KeyPair {
    KeyPair::from_seed(&[8u8; 32])
}

pub fn sample_report() -> Value {
    json!({
        "schema": "hilt-report/v1",
        "dut": {"model": "VRB-1", "serial": "VRB-0001"},
        "results": [
            {"provision": "5.1-1", "verdict": "pass"},
            {"provision": "5.3-2", "verdict": "fail", "note": "update not signed"}
        ]
    })
}

pub fn dut() -> Subject {
    Subject::new("dut:VRB-1/VRB-0001", sha256_bytes(b"firmware image"))
}

/// A directory with two evidence files (one nested), signed with `test_key()`.
pub fn signed_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_evidence(dir.path());
    let env = write_signed_report(dir.path(), &sample_report(), dut(), &test_key())
        .expect("signing works");
    (dir, env)
}

pub fn write_evidence(dir: &Path) {
    let ev = dir.join("evidence");
    fs::create_dir_all(ev.join("5.1-1")).unwrap();
    fs::write(ev.join("console.log"), "login: admin\nPassword:\n$ \n").unwrap();
    fs::write(ev.join("5.1-1/transcript.txt"), "no default password\n").unwrap();
}
