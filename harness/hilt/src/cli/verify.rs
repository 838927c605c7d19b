use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

use super::Failure;

#[derive(Args)]
pub struct VerifyArgs {
    /// The signed envelope, e.g. reports/runs/…/report.dsse.json
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
            let gate = v
                .report
                .pointer("/summary/gate")
                .and_then(|g| g.as_str())
                .unwrap_or("?");
            let dev = v
                .report
                .pointer("/run/development_key")
                .and_then(|d| d.as_bool())
                .unwrap_or(false);
            println!("OK: signature by key {} is valid", v.key_id);
            println!(
                "OK: {} evidence file(s) match their digests",
                v.evidence_checked
            );
            if v.report_file_checked {
                println!("OK: report.json matches the signed report");
            }
            println!("report gate: {gate}");
            if dev {
                println!("note: signed with a development key, not a lab key");
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("verification FAILED: {e}");
            Ok(1)
        }
    }
}
