//! Any single-bit change anywhere in report.dsse.json must make verification fail.
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::ops::Range;

use common::*;
use hilt_report::verify::{VerifyError, verify_envelope_file};

/// Byte range of the string value of `"field": "..."` in the file.
fn value_range(text: &str, field: &str) -> Range<usize> {
    let key = format!("\"{field}\": \"");
    let start = text.find(&key).expect("field present") + key.len();
    let len = text[start..].find('"').expect("closing quote");
    start..start + len
}

fn kind(err: &VerifyError) -> &'static str {
    match err {
        VerifyError::NotEnvelope { .. } => "not-envelope",
        VerifyError::NotCanonical { .. } => "not-canonical",
        VerifyError::PayloadType { .. } => "payload-type",
        VerifyError::KeyIdMismatch { .. } => "keyid",
        VerifyError::Base64 { .. } => "base64",
        VerifyError::SignatureLength(_) => "sig-length",
        VerifyError::BadSignature { .. } => "bad-signature",
        _ => "other",
    }
}

#[test]
fn every_single_bit_flip_is_detected() {
    let (_dir, env) = signed_dir();
    let good = fs::read(&env).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    let key = test_key().verifying_key();
    assert!(verify_envelope_file(&env, &key).is_ok());

    let regions = [
        ("payload", value_range(&text, "payload")),
        ("keyid", value_range(&text, "keyid")),
        ("sig", value_range(&text, "sig")),
    ];
    // Every offset for a small file; otherwise a stride (>= 2000 offsets) plus all of keyid and sig.
    let mut offsets: Vec<usize> = if good.len() <= 16 * 1024 {
        (0..good.len()).collect()
    } else {
        let stride = good.len() / 2000;
        (0..good.len()).step_by(stride.max(1)).collect()
    };
    offsets.extend(regions[1].1.clone().chain(regions[2].1.clone()));
    offsets.sort_unstable();
    offsets.dedup();
    assert!(offsets.len() >= 200, "only {} offsets", offsets.len());
    for (name, range) in &regions {
        assert!(
            offsets.iter().any(|o| range.contains(o)),
            "no offset inside {name}"
        );
    }

    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for &offset in &offsets {
        let mut bytes = good.clone();
        bytes[offset] ^= 1 << (offset % 8);
        fs::write(&env, &bytes).unwrap();
        match verify_envelope_file(&env, &key) {
            Ok(_) => panic!(
                "flip at byte {offset} ({:?}) went unnoticed",
                good[offset] as char
            ),
            Err(e) => *kinds.entry(kind(&e)).or_default() += 1,
        }
    }
    eprintln!(
        "{} offsets of {} bytes: {kinds:?}",
        offsets.len(),
        good.len()
    );
    // The flips must reach the deep checks, not only the JSON parser. (No single-bit flip turns
    // JSON whitespace into other whitespace, so canonical form is tested separately below.)
    for k in ["not-envelope", "base64", "keyid", "bad-signature"] {
        assert!(
            kinds.get(k).copied().unwrap_or(0) > 0,
            "no {k} failure: {kinds:?}"
        );
    }
    fs::write(&env, &good).unwrap();
    assert!(
        verify_envelope_file(&env, &key).is_ok(),
        "restored file verifies again"
    );
}

#[test]
fn whitespace_changes_are_detected() {
    let (_dir, env) = signed_dir();
    let good = fs::read_to_string(&env).unwrap();
    let key = test_key().verifying_key();
    let variants = [
        good.trim_end().to_string(),
        format!("{good}\n"),
        good.replacen('\n', "\r\n", 1),
        good.replacen("  \"", "   \"", 1),
        good.replacen("\": \"", "\":\"", 1),
        format!(" {good}"),
    ];
    for (i, v) in variants.iter().enumerate() {
        fs::write(&env, v).unwrap();
        let err = verify_envelope_file(&env, &key).unwrap_err();
        assert!(
            matches!(err, VerifyError::NotCanonical { .. }),
            "variant {i}: {err}"
        );
    }
}
