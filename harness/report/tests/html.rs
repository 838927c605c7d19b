//! The HTML rendering: complete for the committed example, escaped for hostile values, self-contained.

use std::fs;
use std::path::PathBuf;

use hilt_model::Verdict;
use hilt_report::html::render;
use hilt_report::model::{Gate, Report};

fn example() -> Report {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../reports/example/report.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn html(r: &Report) -> String {
    render(r).expect("the report renders")
}

#[test]
fn example_has_gate_cases_and_in_scope_provisions() {
    let r = example();
    let out = html(&r);
    assert!(out.starts_with("<!DOCTYPE html>"));
    assert!(out.contains(r#"<span class="gate-label">CONFORMANT</span>"#));
    assert!(out.contains("exit code 0"));
    for c in &r.cases {
        assert!(out.contains(&format!(r#"id="{}""#, c.id)), "case {}", c.id);
        assert!(
            out.contains(&format!(r##"href="#{}""##, c.id)),
            "link {}",
            c.id
        );
    }
    let in_scope: Vec<_> = r
        .provisions
        .en303645
        .iter()
        .filter(|p| p.in_scope)
        .collect();
    assert!(!in_scope.is_empty());
    for p in in_scope {
        assert!(
            out.contains(&format!(r#"id="en-{}""#, p.id)),
            "provision {}",
            p.id
        );
    }
    // Legend, ICS, verification note and evidence digests.
    for v in Verdict::ALL {
        assert!(out.contains(&format!(r#"class="v v-{v}""#)), "legend {v}");
    }
    assert!(out.contains("hilt verify report.dsse.json --key PUBLIC.pem"));
    assert!(out.contains(&r.board.profile.sha256));
    let ev = &r.cases[0].evidence[0];
    assert!(out.contains(&format!(r#"<a href="{}">"#, ev.path)));
    assert!(out.contains(&ev.sha256));
    assert!(!out.contains("dev-key"), "no development-key banner");
}

#[test]
fn long_steps_keep_first_and_non_conforming_attempts() {
    let mut r = example();
    let case = r
        .cases
        .iter_mut()
        .find(|c| c.id == "pw.console.no-universal-default")
        .expect("example case");
    let step = case
        .steps
        .iter_mut()
        .find(|s| s.attempts.len() > 100)
        .expect("a long step");
    let total = step.attempts.len();
    let mark = |a: &mut hilt_report::model::Attempt, v: &str| {
        a.args.insert("marker".into(), v.into());
    };
    mark(&mut step.attempts[50], "OMITTED-MARKER");
    mark(&mut step.attempts[60], "NONCONFORMING-MARKER");
    step.attempts[60].conforms = Some(false);
    mark(&mut step.attempts[9], "TENTH-MARKER");
    let out = html(&r);
    assert!(out.contains("NONCONFORMING-MARKER"));
    assert!(out.contains("TENTH-MARKER"));
    assert!(!out.contains("OMITTED-MARKER"));
    // The first 10, the non-conforming one and the last are shown (the outcome never changes).
    let omitted = total - 12;
    assert!(
        out.contains(&format!("{omitted} omitted below")),
        "{omitted} omitted"
    );
    assert!(out.contains("… 50 attempt(s) omitted (iterations 10–59) …"));
}

#[test]
fn long_steps_keep_outcome_changes() {
    let out = html(&example());
    // bf.console.lockout `guesses`: 210 rejected, then 3 locked; the first locked and the last stay.
    assert!(out.contains("213 attempt(s); 201 omitted below"));
    assert!(out.contains("… 200 attempt(s) omitted (iterations 10–209) …"));
    assert!(out.contains("… 1 attempt(s) omitted (iteration 211) …"));
}

#[test]
fn hostile_values_are_escaped() {
    let mut r = example();
    let script = "<script>alert(1)</script>";
    r.board.identity.manufacturer = script.into();
    r.board.name = format!("vrb{script}");
    r.cases[0].reason = format!("device said {script}");
    r.cases[0].title = r#"<img src=x onerror="alert(2)">"#.into();
    r.cases[0].evidence[0].path = "javascript:alert(3)".into();
    r.cases[0].evidence[1].path = "../../etc/passwd".into();
    r.cases[0].steps[1].attempts[0]
        .args
        .insert("user".into(), r#"a"&<>b"#.into());
    r.ics["provisions"]["5.1-1"]["detail"] = script.into();
    let out = html(&r);
    let lower = out.to_lowercase();
    assert!(!lower.contains("<script"), "raw script tag");
    assert!(!lower.contains("<img"), "raw img tag");
    assert!(out.contains("device said &#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(out.contains("user=a&#34;&#38;&#60;&#62;b"));
    assert!(!lower.contains("href=\"javascript"));
    assert!(!out.contains(r#"href="../"#));
}

#[test]
fn the_labgrid_place_is_shown_when_there_was_one_escaped() {
    let mut r = example();
    assert!(!html(&r).contains("labgrid place"));
    r.board.labgrid_place = Some("lab<7>".into());
    let out = html(&r);
    assert!(
        out.contains("<dt>labgrid place</dt><dd><code>lab&#60;7&#62;</code></dd>"),
        "{}",
        &out[out.find("<dl").unwrap_or(0)..][..600.min(out.len())]
    );
}

#[test]
fn development_key_shows_a_warning() {
    let mut r = example();
    r.run.development_key = true;
    let out = html(&r);
    assert!(out.contains(r#"<div class="banner dev-key" role="alert">"#));
    assert!(out.contains("NOT FOR CERTIFICATION"));
}

#[test]
fn a_failure_shows_its_reason_and_the_gate() {
    let mut r = example();
    let reason = "attempt 26 was accepted, expected locked";
    r.cases[0].verdict = Verdict::Fail;
    r.cases[0].reason = reason.into();
    r.summary.gate = Gate::NonConformant;
    r.summary.mandatory_failed = vec!["5.1-5".into()];
    let out = html(&r);
    assert!(out.contains(reason));
    assert!(out.contains(&format!(
        r#"<section class="case case-FAIL" id="{}">"#,
        r.cases[0].id
    )));
    assert!(out.contains(r#"<span class="gate-label">NON_CONFORMANT</span>"#));
    assert!(out.contains("exit code 1: mandatory in-scope EN 303 645 provision(s) failed: 5.1-5"));
}

#[test]
fn output_is_self_contained() {
    let out = html(&example()).to_lowercase();
    for bad in [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", "@import", "url(", "src=",
    ] {
        assert!(!out.contains(bad), "found {bad}");
    }
    // Every link stays inside the page or the report directory.
    for (i, _) in out.match_indices("href=\"") {
        let target = &out[i + 6..];
        assert!(
            target.starts_with('#') || target.starts_with("evidence/"),
            "link to {}",
            target
                .chars()
                .take_while(|c| *c != '"')
                .take(80)
                .collect::<String>()
        );
    }
    assert!(!out.contains("=\"http"), "attribute with a URL");
}

/// What a hostile device might send: retitle the terminal, ring the bell, clear the screen.
const TERMINAL_ATTACK: &str = "\x1b]0;pwned\x07\x1b[2J";
const TERMINAL_ATTACK_SHOWN: &str = r"\x1b]0;pwned\x07\x1b[2J";

/// The only control characters a rendering may hold are newline and tab: no CR, no other C0, no DEL,
/// no C1, and no line separator or bidirectional override either.
fn assert_only_newlines_and_tabs(out: &str) {
    for (i, c) in out.char_indices() {
        assert!(
            !hilt_report::printable::needs_escape(c),
            "{c:?} at byte {i}"
        );
    }
    assert!(
        out.bytes().all(|b| b >= 0x20 || b == b'\n' || b == b'\t'),
        "a control byte other than \\n and \\t"
    );
}

#[test]
fn device_control_characters_are_shown_escaped() {
    let mut r = example();
    let case = r
        .cases
        .iter_mut()
        .find(|c| c.id == "up.console.model-designation")
        .expect("example case with a capture");
    case.reason = format!("device said {TERMINAL_ATTACK}");
    case.title = "exe.\u{202e}txt".into();
    case.checks[0].detail = "line\r\nnext\u{9b}2J\u{7f}\u{2028}".into();
    let attempt = case
        .steps
        .iter_mut()
        .flat_map(|s| s.attempts.iter_mut())
        .find(|a| !a.captures.is_empty())
        .expect("an attempt with a capture");
    let capture = attempt.captures.values_mut().next().expect("a capture");
    *capture = TERMINAL_ATTACK.into();
    attempt.outcome = Some("\x1b[31mred".into());
    attempt
        .args
        .insert("user\x1b".into(), "\u{2066}x\u{2069}".into());
    r.ics["provisions"]["5.1-1"]["detail"] = TERMINAL_ATTACK.into();
    let out = html(&r);
    assert_only_newlines_and_tabs(&out);
    assert!(out.contains(&format!("device said {TERMINAL_ATTACK_SHOWN}")));
    assert!(
        out.contains(&format!("={TERMINAL_ATTACK_SHOWN}</code>")),
        "capture"
    );
    assert!(out.contains(r"exe.\u{202e}txt"));
    assert!(out.contains(r"line\r"));
    assert!(out.contains(r"next\u{9b}2J\x7f\u{2028}"));
    assert!(out.contains(r"\x1b[31mred"));
    assert!(out.contains(r"user\x1b=\u{2066}x\u{2069}"));
    // The ICS table shows the escape; its raw JSON view keeps JSON's own escape.
    assert!(
        out.contains(&format!("<td>{TERMINAL_ATTACK_SHOWN}</td>")),
        "ICS table"
    );
    assert!(out.contains(r"\u001b]0;pwned\u0007\u001b[2J"), "ICS JSON");
}
