//! `hilt verify`: checks a signed report and says what it covers. Exits 0 when it verifies, 1 when
//! the report is forged or altered (signature, form, evidence or `report.json`), 2 for bad input (no
//! readable DSSE envelope, a bad or missing key file).

use anyhow::Context;
use clap::Args;
use hilt_report::printable::printable;
use hilt_report::sign::DocumentKind;
use hilt_report::verify::{Verified, VerifyError};
use serde_json::Value;
use std::path::PathBuf;

use super::Failure;

#[derive(Args)]
pub struct VerifyArgs {
    /// The signed envelope, e.g. reports/runs/…/report.dsse.json (or a campaign's campaign.dsse.json)
    envelope: PathBuf,
    /// The signer's public key (PEM, SubjectPublicKeyInfo)
    #[arg(long)]
    key: PathBuf,
}

pub fn run(a: VerifyArgs) -> Result<u8, Failure> {
    let key = hilt_report::keys::load_public(&a.key)
        .with_context(|| format!("cannot load public key {}", a.key.display()))
        .map_err(Failure::input)?;
    match hilt_report::verify::verify_envelope_file(&a.envelope, &key) {
        Ok(v) => {
            print_verified(&v);
            Ok(0)
        }
        Err(e) => not_verified(e, "verification FAILED"),
    }
}

/// Maps a verification error to the exit code: bad input is a [`Failure::input`] (exit 2), anything
/// else is printed after `what` and exits 1. Shared with `hilt render`.
pub fn not_verified(e: VerifyError, what: &str) -> Result<u8, Failure> {
    if e.is_input_error() {
        return Err(Failure::input(
            anyhow::Error::new(e).context("cannot verify"),
        ));
    }
    eprintln!("{what}: {:#}", anyhow::Error::new(e));
    Ok(1)
}

fn print_verified(v: &Verified) {
    match v.kind {
        DocumentKind::Report => print_report(v, ""),
        DocumentKind::Campaign => print_campaign(v),
    }
}

/// A campaign summary: its signature, then each board's report in turn.
fn print_campaign(v: &Verified) {
    println!(
        "OK: signature by key {} is valid (campaign summary)",
        v.key_id
    );
    if v.report_file_checked {
        println!("OK: campaign.json matches the signed summary");
    }
    print_members(v, "board");
    let gate = v
        .report
        .pointer("/gate")
        .and_then(Value::as_str)
        .unwrap_or("?");
    println!("campaign gate: {}", printable(gate));
    if flag(&v.report, "/development_key") {
        println!("note: signed with a development key, not a lab key");
    }
}

/// Each member (a campaign's board, a merged report's shard): verified, or absent.
fn print_members(v: &Verified, what: &str) {
    for m in &v.members {
        match &m.verified {
            Some(inner) => {
                println!(
                    "OK: {what} {} matches its signed digest:",
                    printable(&m.dir)
                );
                print_report(inner, "    ");
            }
            None => println!(
                "note: {what} {} is not present; only its digest is signed",
                printable(&m.dir)
            ),
        }
    }
}

fn print_report(v: &Verified, indent: &str) {
    let report = &v.report;
    println!("{indent}OK: signature by key {} is valid", v.key_id);
    println!(
        "{indent}OK: {} evidence file(s) match their digests",
        v.evidence_checked
    );
    if v.report_file_checked {
        println!("{indent}OK: report.json matches the signed report");
    }
    print_members(v, "shard");
    let gate = report
        .pointer("/summary/gate")
        .and_then(Value::as_str)
        .unwrap_or("?");
    println!("{indent}report gate: {}", printable(gate));
    if let Some(line) = coverage(report) {
        println!("{indent}{line}");
    }
    if flag(report, "/run/interrupted") {
        println!("{indent}note: the run was INTERRUPTED; this is a partial report");
    }
    if flag(report, "/run/development_key") {
        println!("{indent}note: signed with a development key, not a lab key");
    }
}

fn flag(report: &Value, pointer: &str) -> bool {
    report
        .pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// `cases: 3 of 9 in the suite ran (selection: "pw" --skip "x")`, or only the selection when the
/// report does not carry the counts (older reports); `None` when it carries neither.
fn coverage(report: &Value) -> Option<String> {
    let count = |p: &str| report.pointer(p).and_then(Value::as_u64);
    let selection = report
        .pointer("/run/selection")
        .and_then(Value::as_array)
        .map(|args| describe_selection(args));
    match (
        count("/summary/cases_run"),
        count("/summary/cases_in_suite"),
    ) {
        (Some(run), Some(total)) => Some(format!(
            "cases: {run} of {total} in the suite ran (selection: {})",
            selection.as_deref().unwrap_or("not recorded")
        )),
        _ => selection.map(|s| format!("selection: {s}")),
    }
}

/// The filter arguments as typed: options bare, values quoted; `all` when there are none.
fn describe_selection(args: &[Value]) -> String {
    if args.is_empty() {
        return "all".to_owned();
    }
    args.iter()
        .map(|arg| match arg.as_str() {
            Some(s) if s.starts_with("--") => printable(s).into_owned(),
            Some(s) => printable(&format!("{s:?}")).into_owned(),
            None => printable(&arg.to_string()).into_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coverage_with_counts_and_selection() {
        let r = json!({
            "summary": {"cases_run": 3, "cases_in_suite": 9},
            "run": {"selection": ["pw", "--skip", "x"]}
        });
        assert_eq!(
            coverage(&r).as_deref(),
            Some(r#"cases: 3 of 9 in the suite ran (selection: "pw" --skip "x")"#)
        );
    }

    #[test]
    fn coverage_of_an_unfiltered_or_older_report() {
        let all = json!({
            "summary": {"cases_run": 9, "cases_in_suite": 9},
            "run": {"selection": []}
        });
        assert_eq!(
            coverage(&all).as_deref(),
            Some("cases: 9 of 9 in the suite ran (selection: all)")
        );
        let old = json!({"summary": {}, "run": {"selection": []}});
        assert_eq!(coverage(&old).as_deref(), Some("selection: all"));
        assert_eq!(coverage(&json!({})), None);
    }

    #[test]
    fn selection_is_shown_printable() {
        let args = [json!("\u{1b}]0;x\u{7}"), json!("--exact\u{202e}")];
        let shown = describe_selection(&args);
        assert!(!shown.chars().any(hilt_report::printable::needs_escape));
        assert_eq!(shown, r#""\u{1b}]0;x\u{7}" --exact\u{202e}"#);
    }
}
