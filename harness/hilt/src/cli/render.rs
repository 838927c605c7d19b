//! `hilt render`: verifies a signed report, then renders it as HTML or JUnit XML. Exit codes as for
//! `hilt verify` (0, 1 not verified, 2 bad input), and 3 when the rendering cannot be written.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

use super::Failure;

#[derive(Args)]
pub struct RenderArgs {
    /// The signed envelope, e.g. reports/runs/…/report.dsse.json
    envelope: PathBuf,
    /// The signer's public key: the report is rendered only if it verifies
    #[arg(long)]
    key: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value = "html")]
    format: Format,
    /// Output file (default: report.html or junit.xml beside the envelope)
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Html,
    Junit,
}

/// Render a report from its verified, signed form, so a rendering never shows what the signer did not sign.
pub fn run(a: RenderArgs) -> Result<u8, Failure> {
    let key = hilt_report::keys::load_public(&a.key)
        .with_context(|| format!("cannot load public key {}", a.key.display()))
        .map_err(Failure::input)?;
    let verified = match hilt_report::verify::verify_envelope_file(&a.envelope, &key) {
        Ok(v) => v,
        Err(e) => return super::verify::not_verified(e, "verification FAILED, nothing rendered"),
    };
    let report: hilt_report::model::Report = serde_json::from_value(verified.report)
        .context("the signed report does not match this hilt's report schema")
        .map_err(Failure::input)?;
    let (text, default_name) = match a.format {
        Format::Html => (
            hilt_report::html::render(&report).map_err(Failure::undecided)?,
            "report.html",
        ),
        Format::Junit => (
            hilt_report::junit::render(&report).map_err(Failure::undecided)?,
            "junit.xml",
        ),
    };
    let dir = a.envelope.parent().map(PathBuf::from).unwrap_or_default();
    let out = a.out.unwrap_or_else(|| dir.join(default_name));
    hilt_report::atomic::write_atomic(&out, text.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))
        .map_err(Failure::undecided)?;
    println!("verified and rendered: {}", out.display());
    Ok(0)
}
