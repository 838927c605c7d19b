//! Records the suite's git commit in the binary, so each report names the exact suite that produced it.

use std::process::Command;

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    println!("cargo:rerun-if-changed={root}/.git/HEAD");
    println!("cargo:rerun-if-changed={root}/.git/refs/heads");
    println!("cargo:rerun-if-env-changed=HILT_GIT_COMMIT");
    let out = Command::new("git")
        .args(["-C", root, "rev-parse", "HEAD"])
        .output();
    if let Ok(o) = out
        && o.status.success()
    {
        let commit = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let dirty = Command::new("git")
            .args(["-C", root, "status", "--porcelain", "--untracked-files=no"])
            .output()
            .is_ok_and(|d| !d.stdout.is_empty());
        let suffix = if dirty { "-dirty" } else { "" };
        println!("cargo:rustc-env=HILT_GIT_COMMIT={commit}{suffix}");
    }
}
