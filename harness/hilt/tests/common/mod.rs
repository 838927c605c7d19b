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
