//! The JUnit XML rendering: one test case per scenario, and device text shown escaped, never raw.

use std::fs;
use std::path::PathBuf;

use hilt_model::Verdict;
use hilt_report::junit::render;
use hilt_report::model::Report;
use hilt_report::printable::needs_escape;

fn example() -> Report {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../reports/example/report.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_case_is_a_test_case() {
    let r = example();
    let xml = render(&r).expect("renders");
    assert!(xml.starts_with("<?xml"), "{xml}");
    for c in &r.cases {
        assert!(
            xml.contains(&format!(r#"name="{}""#, c.id)),
            "case {}",
            c.id
        );
    }
}

#[test]
fn device_control_characters_are_shown_escaped() {
    let mut r = example();
    r.cases[0].verdict = Verdict::Fail;
    r.cases[0].reason = "device said \x1b]0;pwned\x07\x1b[2J, then \u{9b}\u{202e}\r".into();
    r.board.name = "vrb\x1b[2J".into();
    r.board.identity.firmware_version = "1.0\u{7f}".into();
    let xml = render(&r).expect("renders");
    // Only newline and tab, as in the HTML: no CR, no other C0, DEL, C1 or bidi override.
    for (i, c) in xml.char_indices() {
        assert!(!needs_escape(c), "{c:?} at byte {i}");
    }
    assert!(
        xml.bytes().all(|b| b >= 0x20 || b == b'\n' || b == b'\t'),
        "a control byte other than \\n and \\t"
    );
    assert!(
        xml.contains(r"FAIL: device said \x1b]0;pwned\x07\x1b[2J, then \u{9b}\u{202e}\r"),
        "{xml}"
    );
    assert!(xml.contains(r"vrb\x1b[2J"));
    assert!(xml.contains(r"1.0\x7f"));
}
