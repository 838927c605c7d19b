//! Helpers the CLI test binaries share: where the suite is, running the built `hilt`, reading results.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the suite: test-cases/, boards/, fixtures/).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `hilt ARGS` from the repository root, with its development key kept under `keys`.
pub fn hilt_cmd(args: &[&str], keys: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hilt"));
    c.args(args)
        .env("HILT_DEV_KEY_DIR", keys)
        .current_dir(root());
    c
}

pub fn hilt(args: &[&str], keys: &Path) -> Output {
    hilt_cmd(args, keys).output().expect("run hilt")
}

/// Both output streams, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The verdict of `case` in a report, or "" when it did not run.
pub fn verdict(report: &serde_json::Value, case: &str) -> String {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == case)
        .map(|c| c["verdict"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The shipped scenario `test-cases/REL`, typed.
pub fn case(rel: &str) -> hilt::suite::Case {
    let path = root().join("test-cases").join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    let s = hilt_model::scenario::Scenario::parse(&path, &text, path.parent().unwrap()).unwrap();
    hilt::suite::Case::new(s).unwrap()
}

/// A scenario written in the test (its text whole), typed as if it were `dir/t.toml`.
pub fn inline_case(dir: &Path, text: &str) -> hilt::suite::Case {
    let s = hilt_model::scenario::Scenario::parse(&dir.join("t.toml"), text, dir).unwrap();
    hilt::suite::Case::new(s).unwrap()
}

/// Runs `c` on `bench` in this process: its verdict and reason, and the whole run.
pub fn judge_run(
    bench: &dyn hilt::exec::Bench,
    c: &hilt::suite::Case,
) -> (hilt_model::Verdict, String, hilt::exec::CaseRun) {
    let ctl = hilt::exec::CaseControl {
        cancel: hilt_link::Cancel::new(),
        events: &hilt::events::Discard,
    };
    let run = hilt::exec::run_case(bench, c, &ctl);
    (run.result.verdict, run.result.reason.clone(), run)
}

/// [`judge_run`]'s verdict and reason.
pub fn judge(
    bench: &dyn hilt::exec::Bench,
    c: &hilt::suite::Case,
) -> (hilt_model::Verdict, String) {
    let (v, why, _) = judge_run(bench, c);
    (v, why)
}
