mod common;

use std::fs;

use common::*;
use hilt_report::digest::sha256_bytes;
use hilt_report::sign::{
    self, PAYLOAD_TYPE, SignError, Subject, envelope_bytes, sign_payload, sign_statement,
    statement, write_signed_report,
};
use hilt_report::verify::{MAX_FILE_BYTES, Problem, VerifyError, verify_envelope_file};
use serde_json::{Value, json};

fn verify(env: &std::path::Path) -> Result<hilt_report::verify::Verified, VerifyError> {
    verify_envelope_file(env, &test_key().verifying_key())
}

fn problems(err: VerifyError) -> Vec<Problem> {
    match err {
        VerifyError::Content(p) => p,
        other => panic!("expected content problems, got {other}"),
    }
}

#[test]
fn round_trip() {
    let (dir, env) = signed_dir();
    assert_eq!(env, dir.path().join("report.dsse.json"));
    let v = verify(&env).unwrap();
    assert_eq!(v.key_id, test_key().key_id());
    assert_eq!(v.report, sample_report());
    assert_eq!(v.evidence_checked, 2);
    assert!(v.report_file_checked);
    let names: Vec<&str> = v.subjects.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dut:VRB-1/VRB-0001",
            "evidence/5.1-1/transcript.txt",
            "evidence/console.log"
        ]
    );
    assert_eq!(
        v.statement["predicateType"],
        "https://hilt.dev/conformance-report/v1"
    );
    let on_disk: Value =
        serde_json::from_slice(&fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(on_disk, sample_report());
}

#[test]
fn signing_twice_is_deterministic() {
    let (dir, env) = signed_dir();
    let first = fs::read(&env).unwrap();
    write_signed_report(dir.path(), &sample_report(), dut(), &test_key()).unwrap();
    assert_eq!(fs::read(&env).unwrap(), first, "Ed25519 is deterministic");
}

#[test]
fn no_evidence_dir_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let env = write_signed_report(dir.path(), &sample_report(), dut(), &test_key()).unwrap();
    let v = verify(&env).unwrap();
    assert_eq!((v.evidence_checked, v.subjects.len()), (0, 1));
}

#[test]
fn changed_evidence_byte_names_the_file() {
    let (dir, env) = signed_dir();
    let path = dir.path().join("evidence/console.log");
    let mut bytes = fs::read(&path).unwrap();
    bytes[3] ^= 0x20;
    fs::write(&path, bytes).unwrap();
    let err = verify(&env).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("evidence/console.log") && msg.contains("digest mismatch"),
        "{msg}"
    );
    assert!(
        matches!(&problems(err)[..], [Problem::EvidenceDigest { name, .. }] if name == "evidence/console.log")
    );
}

#[test]
fn deleted_evidence_fails() {
    let (dir, env) = signed_dir();
    fs::remove_file(dir.path().join("evidence/5.1-1/transcript.txt")).unwrap();
    let p = problems(verify(&env).unwrap_err());
    assert_eq!(
        p,
        [Problem::EvidenceMissing {
            name: "evidence/5.1-1/transcript.txt".into()
        }]
    );
}

#[test]
fn smuggled_evidence_fails() {
    let (dir, env) = signed_dir();
    fs::write(dir.path().join("evidence/5.1-1/extra.txt"), "planted").unwrap();
    let p = problems(verify(&env).unwrap_err());
    assert_eq!(
        p,
        [Problem::EvidenceUnlisted {
            name: "evidence/5.1-1/extra.txt".into()
        }]
    );
}

#[test]
fn symlink_in_evidence_fails_and_is_not_signed() {
    let (dir, env) = signed_dir();
    std::os::unix::fs::symlink("console.log", dir.path().join("evidence/alias.log")).unwrap();
    let p = problems(verify(&env).unwrap_err());
    assert_eq!(
        p,
        [Problem::EvidenceNotFile {
            name: "evidence/alias.log".into(),
            what: "symlink"
        }]
    );
    let err = write_signed_report(dir.path(), &sample_report(), dut(), &test_key()).unwrap_err();
    assert!(
        matches!(
            err,
            SignError::Evidence {
                what: "symlink",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn several_problems_are_all_listed() {
    let (dir, env) = signed_dir();
    fs::remove_file(dir.path().join("evidence/console.log")).unwrap();
    fs::write(dir.path().join("evidence/new.log"), "x").unwrap();
    let mut report = sample_report();
    report["results"][0]["verdict"] = json!("fail");
    fs::write(dir.path().join("report.json"), report.to_string()).unwrap();
    let err = verify(&env).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("3 problem(s)"), "{msg}");
    assert_eq!(
        problems(err),
        [
            Problem::EvidenceMissing {
                name: "evidence/console.log".into()
            },
            Problem::EvidenceUnlisted {
                name: "evidence/new.log".into()
            },
            Problem::ReportDiffers {
                file: "report.json",
                pointer: "/results/0/verdict".into()
            },
        ]
    );
}

#[test]
fn edited_report_json_fails_but_reformatting_does_not() {
    let (dir, env) = signed_dir();
    let path = dir.path().join("report.json");
    // Same JSON value, other formatting: still the signed report.
    fs::write(&path, sample_report().to_string()).unwrap();
    assert!(verify(&env).unwrap().report_file_checked);
    fs::write(&path, "{not json").unwrap();
    assert!(matches!(
        &problems(verify(&env).unwrap_err())[..],
        [Problem::ReportUnreadable { .. }]
    ));
    let mut report = sample_report();
    report["dut"]["serial"] = json!("VRB-0002");
    fs::write(&path, report.to_string()).unwrap();
    assert_eq!(
        problems(verify(&env).unwrap_err()),
        [Problem::ReportDiffers {
            file: "report.json",
            pointer: "/dut/serial".into()
        }]
    );
    fs::remove_file(&path).unwrap();
    assert!(
        !verify(&env).unwrap().report_file_checked,
        "absent report.json is allowed"
    );
}

#[test]
fn wrong_public_key_fails() {
    let (_dir, env) = signed_dir();
    let err = verify_envelope_file(&env, &other_key().verifying_key()).unwrap_err();
    assert!(matches!(err, VerifyError::KeyIdMismatch { .. }), "{err}");
}

#[test]
fn signature_by_another_key_under_our_keyid_fails() {
    let (_dir, env) = signed_dir();
    let mut e: sign::Envelope = serde_json::from_slice(&fs::read(&env).unwrap()).unwrap();
    // Another key signs the same payload; the keyid still claims ours.
    let payload =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &e.payload).unwrap();
    let forged = sign_payload(PAYLOAD_TYPE, &payload, &other_key());
    e.signatures[0].sig = forged.signatures[0].sig.clone();
    fs::write(&env, envelope_bytes(&e)).unwrap();
    assert!(matches!(
        verify(&env).unwrap_err(),
        VerifyError::BadSignature { .. }
    ));
}

#[test]
fn dut_subject_must_be_opaque_with_valid_digest() {
    let dir = tempfile::tempdir().unwrap();
    let key = test_key();
    let bad_name = Subject::new("evidence/x", sha256_bytes(b""));
    assert!(matches!(
        write_signed_report(dir.path(), &sample_report(), bad_name, &key),
        Err(SignError::DutName(_))
    ));
    let bad_digest = Subject::new("dut:x", "ABC");
    assert!(matches!(
        write_signed_report(dir.path(), &sample_report(), bad_digest, &key),
        Err(SignError::BadDigest { .. })
    ));
    assert!(matches!(
        write_signed_report(dir.path(), &json!([1]), dut(), &key),
        Err(SignError::ReportNotObject)
    ));
}

/// Writes an envelope over `payload`, correctly signed by the test key, and verifies it.
fn verify_signed_payload(payload: &[u8], payload_type: &str) -> VerifyError {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("report.dsse.json");
    fs::write(
        &env,
        envelope_bytes(&sign_payload(payload_type, payload, &test_key())),
    )
    .unwrap();
    verify(&env).unwrap_err()
}

#[test]
fn signed_but_malformed_payloads_are_rejected() {
    let err = verify_signed_payload(b"{}", "text/plain");
    assert!(matches!(err, VerifyError::PayloadType { .. }), "{err}");
    for payload in [&b"not json"[..], b"[]", b"{\"_type\":1}", b"\xff\xfe"] {
        let err = verify_signed_payload(payload, PAYLOAD_TYPE);
        assert!(matches!(err, VerifyError::NotStatement(_)), "{err}");
    }
    let wrong_predicate = json!({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "dut:x", "digest": {"sha256": sha256_bytes(b"")}}], "predicateType": "https://slsa.dev/provenance/v1", "predicate": {}});
    let err = verify_signed_payload(wrong_predicate.to_string().as_bytes(), PAYLOAD_TYPE);
    assert!(err.to_string().contains("predicateType"), "{err}");
}

#[test]
fn unsafe_subject_paths_are_rejected_even_when_signed() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("secret"), "x").unwrap();
    let d = sha256_bytes(b"x");
    let subjects = [
        "/etc/hostname",
        "evidence/../secret",
        "secret",
        "evidence/./a",
        "evidence/a",
        "evidence/a",
    ]
    .map(|n| Subject::new(n, d.clone()));
    let st = statement(subjects.to_vec(), sample_report());
    let env = dir.path().join("report.dsse.json");
    fs::write(&env, envelope_bytes(&sign_statement(&st, &test_key()))).unwrap();
    let p = problems(verify(&env).unwrap_err());
    let unsafe_count = p
        .iter()
        .filter(|p| matches!(p, Problem::UnsafePath { .. }))
        .count();
    assert_eq!(unsafe_count, 4, "{p:?}");
    assert!(
        p.contains(&Problem::DuplicateSubject {
            name: "evidence/a".into()
        }),
        "{p:?}"
    );
    assert!(
        p.contains(&Problem::EvidenceMissing {
            name: "evidence/a".into()
        }),
        "{p:?}"
    );
}

#[test]
fn hostile_envelope_files_fail_cleanly() {
    let (dir, env) = signed_dir();
    let good = fs::read(&env).unwrap();
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"null".to_vec(),
        b"{\"payload\": 1, \"payloadType\": [], \"signatures\": {}}".to_vec(),
        b"{\"payload\": \"\", \"payloadType\": \"\", \"signatures\": [], \"extra\": 1}".to_vec(),
        vec![b'['; 100_000],
        vec![0xff; 1000],
    ];
    for (i, case) in cases.iter().enumerate() {
        fs::write(&env, case).unwrap();
        assert!(
            matches!(verify(&env), Err(VerifyError::NotEnvelope { .. })),
            "case {i}"
        );
    }
    for cut in (0..good.len()).step_by(37) {
        fs::write(&env, &good[..cut]).unwrap();
        assert!(verify(&env).is_err(), "truncated at {cut}");
    }
    let mut e: sign::Envelope = serde_json::from_slice(&good).unwrap();
    e.signatures.push(e.signatures[0].clone());
    fs::write(&env, envelope_bytes(&e)).unwrap();
    assert!(matches!(verify(&env), Err(VerifyError::SignatureCount(2))));
    e.signatures.clear();
    fs::write(&env, envelope_bytes(&e)).unwrap();
    assert!(matches!(verify(&env), Err(VerifyError::SignatureCount(0))));

    // Sparse file: no disk or memory is spent, and it is refused before reading.
    fs::File::create(&env)
        .unwrap()
        .set_len(MAX_FILE_BYTES + 1)
        .unwrap();
    assert!(matches!(verify(&env), Err(VerifyError::TooLarge { .. })));
    fs::remove_file(&env).unwrap();
    assert!(matches!(verify(&env), Err(VerifyError::Io { .. })));
    drop(dir);
}

#[test]
fn short_and_non_canonical_signatures_are_rejected() {
    let (_dir, env) = signed_dir();
    let good: sign::Envelope = serde_json::from_slice(&fs::read(&env).unwrap()).unwrap();
    let mut e = good.clone();
    e.signatures[0].sig = "AAAA".into();
    fs::write(&env, envelope_bytes(&e)).unwrap();
    assert!(matches!(verify(&env), Err(VerifyError::SignatureLength(3))));
    // 64 signature bytes end in "X==": X carries 4 unused bits that must be zero.
    let sig = &good.signatures[0].sig;
    assert!(sig.ends_with("==") && sig.len() == 88);
    let last = sig.as_bytes()[85];
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let idx = alphabet.find(last as char).unwrap();
    let dirty = alphabet.as_bytes()[idx | 1] as char;
    assert_ne!(
        dirty as u8, last,
        "canonical encodings have zero trailing bits"
    );
    for bad in [
        format!("{}{dirty}==", &sig[..85]),
        sig.trim_end_matches('=').to_string(),
    ] {
        let mut e = good.clone();
        e.signatures[0].sig = bad;
        fs::write(&env, envelope_bytes(&e)).unwrap();
        let err = verify(&env).unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::Base64 {
                    field: "signatures[0].sig",
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn input_errors_are_told_from_reports_that_fail_verification() {
    let (dir, env) = signed_dir();
    let good = fs::read(&env).unwrap();
    let is_input = |env: &std::path::Path| verify(env).unwrap_err().is_input_error();

    // Bad input: nothing to verify.
    assert!(is_input(&dir.path().join("missing.dsse.json")), "missing");
    assert!(is_input(dir.path()), "a directory");
    for (what, bytes) in [
        ("not JSON", &b"hello"[..]),
        ("empty", b""),
        ("JSON, not an envelope", br#"{"schema": "hilt-report/v1"}"#),
    ] {
        fs::write(&env, bytes).unwrap();
        assert!(is_input(&env), "{what}");
    }
    fs::File::create(&env)
        .unwrap()
        .set_len(MAX_FILE_BYTES + 1)
        .unwrap();
    assert!(is_input(&env), "too large");

    // A DSSE envelope that does not verify: forged or altered.
    let signed: sign::Envelope = serde_json::from_slice(&good).unwrap();
    let mut forged = signed.clone();
    forged.signatures[0].sig = STANDARD_SIG_OF_ZEROS.into();
    fs::write(&env, envelope_bytes(&forged)).unwrap();
    let err = verify(&env).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err}");
    assert!(!err.is_input_error());
    let mut spaced = good.clone();
    spaced.push(b' ');
    fs::write(&env, &spaced).unwrap();
    assert!(!is_input(&env), "not canonical");
    fs::write(&env, &good).unwrap();
    let err = verify_envelope_file(&env, &other_key().verifying_key()).unwrap_err();
    assert!(!err.is_input_error(), "{err}");
    fs::write(dir.path().join("evidence/console.log"), "edited").unwrap();
    let err = verify(&env).unwrap_err();
    assert!(matches!(err, VerifyError::Content(_)), "{err}");
    assert!(!err.is_input_error());
}

/// 64 zero bytes in standard base64: a well-formed signature that verifies nothing.
const STANDARD_SIG_OF_ZEROS: &str =
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";

#[test]
fn io_errors_name_the_file_once_and_keep_the_cause_as_source() {
    use std::error::Error as _;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.dsse.json");
    let err = verify(&missing).unwrap_err();
    let shown = err.to_string();
    let cause = err
        .source()
        .expect("the I/O error is the source")
        .to_string();
    assert_eq!(shown, missing.display().to_string());
    assert!(!shown.contains(&cause), "{shown}");
}
