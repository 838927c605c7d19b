//! `hilt verify` and `hilt render` exit codes: 0 verified, 1 a forged or altered report, 2 bad input
//! (no readable DSSE envelope, a missing or bad key file). Reports are signed through the library, so
//! no board runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hilt_report::digest::sha256_bytes;
use hilt_report::keys::{KeyPair, write_key_files};
use hilt_report::sign::{Envelope, Subject, envelope_bytes, write_signed_report};
use serde_json::{Value, json};

mod common;
use common::text;

fn hilt(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hilt"))
        .args(args)
        .env_remove("HILT_LOG")
        .output()
        .expect("run hilt")
}

fn verify(envelope: &Path, key: &Path) -> Output {
    hilt(&[Path::new("verify"), envelope, Path::new("--key"), key])
}

fn render(envelope: &Path, key: &Path) -> Output {
    hilt(&[Path::new("render"), envelope, Path::new("--key"), key])
}

fn assert_exit(o: &Output, code: i32, what: &str) {
    assert_eq!(o.status.code(), Some(code), "{what}:\n{}", text(o));
}

/// A temporary directory with a signed `run/report.dsse.json` (key `signer`) and the public keys of
/// `signer` and `other`.
struct Fixture {
    dir: tempfile::TempDir,
    envelope: PathBuf,
    signer_pub: PathBuf,
    other_pub: PathBuf,
}

fn fixture(report: &Value) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let signer = KeyPair::from_seed(&[21; 32]);
    let (_, signer_pub) = write_key_files(dir.path(), "signer", &signer).unwrap();
    let (_, other_pub) =
        write_key_files(dir.path(), "other", &KeyPair::from_seed(&[22; 32])).unwrap();
    let run = dir.path().join("run");
    fs::create_dir(&run).unwrap();
    let dut = Subject::new("dut:test/unit-1", sha256_bytes(b"firmware"));
    let envelope = write_signed_report(&run, report, dut, &signer).unwrap();
    Fixture {
        dir,
        envelope,
        signer_pub,
        other_pub,
    }
}

fn small_report() -> Value {
    json!({
        "summary": {"gate": "CONFORMANT", "cases_run": 3, "cases_in_suite": 9},
        "run": {"selection": ["pw", "--skip", "x"], "interrupted": true, "development_key": false}
    })
}

#[test]
fn a_report_that_verifies_exits_0_and_says_what_ran() {
    let f = fixture(&small_report());
    let o = verify(&f.envelope, &f.signer_pub);
    assert_exit(&o, 0, "verified");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("report gate: CONFORMANT"), "{out}");
    assert!(
        out.contains(r#"cases: 3 of 9 in the suite ran (selection: "pw" --skip "x")"#),
        "{out}"
    );
    assert!(
        out.contains("note: the run was INTERRUPTED; this is a partial report"),
        "{out}"
    );
}

#[test]
fn an_unfiltered_complete_run_says_so() {
    let f = fixture(&json!({
        "summary": {"gate": "CONFORMANT", "cases_run": 9, "cases_in_suite": 9},
        "run": {"selection": [], "interrupted": false}
    }));
    let o = verify(&f.envelope, &f.signer_pub);
    assert_exit(&o, 0, "verified");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("cases: 9 of 9 in the suite ran (selection: all)"),
        "{out}"
    );
    assert!(!out.contains("INTERRUPTED"), "{out}");
}

#[test]
fn bad_input_exits_2() {
    let f = fixture(&small_report());
    let missing = f.dir.path().join("nope/report.dsse.json");
    let o = verify(&missing, &f.signer_pub);
    assert_exit(&o, 2, "missing envelope");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.matches("nope/report.dsse.json").count(),
        1,
        "names the file once: {err}"
    );

    let not_json = f.dir.path().join("not-json.dsse.json");
    fs::write(&not_json, "this is not JSON\n").unwrap();
    assert_exit(&verify(&not_json, &f.signer_pub), 2, "non-JSON envelope");

    let report_json = f.envelope.with_file_name("report.json");
    assert_exit(
        &verify(&report_json, &f.signer_pub),
        2,
        "JSON that is not an envelope",
    );

    let no_key = f.dir.path().join("absent.pub.pem");
    assert_exit(&verify(&f.envelope, &no_key), 2, "missing key");
    let bad_key = f.dir.path().join("bad.pub.pem");
    fs::write(
        &bad_key,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    assert_exit(&verify(&f.envelope, &bad_key), 2, "bad key file");

    assert_exit(
        &render(&missing, &f.signer_pub),
        2,
        "render: missing envelope",
    );
    assert_exit(
        &render(&not_json, &f.signer_pub),
        2,
        "render: non-JSON envelope",
    );
}

#[test]
fn a_forged_or_altered_report_exits_1() {
    let f = fixture(&small_report());
    assert_exit(&verify(&f.envelope, &f.other_pub), 1, "another key");

    // Same key id, a well-formed signature that is not the signer's.
    let good = fs::read(&f.envelope).unwrap();
    let mut forged: Envelope = serde_json::from_slice(&good).unwrap();
    forged.signatures[0].sig = ZERO_SIGNATURE.into();
    fs::write(&f.envelope, envelope_bytes(&forged)).unwrap();
    let o = verify(&f.envelope, &f.signer_pub);
    assert_exit(&o, 1, "bad signature");
    assert!(text(&o).contains("verification FAILED"), "{}", text(&o));
    assert_exit(
        &render(&f.envelope, &f.signer_pub),
        1,
        "render: bad signature",
    );

    // Signed content altered after signing.
    fs::write(&f.envelope, &good).unwrap();
    fs::write(f.envelope.with_file_name("report.json"), "{}").unwrap();
    assert_exit(&verify(&f.envelope, &f.signer_pub), 1, "report.json edited");
}

/// 64 zero bytes in standard base64.
const ZERO_SIGNATURE: &str =
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";
