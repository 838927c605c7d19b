//! Assembling the report document from a run, and writing it signed.

use anyhow::Context;
use hilt_model::catalogue::Catalogue;
use hilt_model::profile::BoardProfile;
use hilt_report::digest::sha256_bytes;
use hilt_report::keys::KeyPair;
use hilt_report::model::{Board, FileDigest, Report, Run, SCHEMA, Suite};
use hilt_report::rollup::{rollup, summarise};
use hilt_report::sign::{Subject, write_signed_report_with_members};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::suite::Case;

use crate::runner::RunOutput;

pub struct ReportInputs<'a> {
    pub board: &'a BoardProfile,
    pub scenarios: &'a [Arc<Case>],
    pub suite_root: &'a Path,
    pub defects: &'a [String],
    pub selection: Vec<String>,
    /// The CI shard this run was, if any.
    pub shard: Option<crate::runner::Shard>,
    pub development_key: bool,
}

pub fn build(out: &RunOutput, inp: &ReportInputs) -> Report {
    let cat = Catalogue::embedded();
    let provisions = rollup(&out.cases, &inp.board.ics, cat);
    let summary = summarise(
        &out.cases,
        &provisions,
        out.in_suite,
        out.interrupted.is_some(),
    );
    let rel = |p: &Path| {
        p.strip_prefix(inp.suite_root)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let fmt =
        |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Report {
        schema: SCHEMA.to_string(),
        suite: suite_info(),
        run: Run {
            id: format!(
                "{}-{}",
                out.started.format("%Y%m%dT%H%M%SZ"),
                inp.board.name()
            ),
            started: fmt(&out.started),
            finished: fmt(&out.finished),
            duration_ms: (out.finished - out.started).num_milliseconds().max(0) as u64,
            host: hostname(),
            selection: inp.selection.clone(),
            development_key: inp.development_key,
            interrupted: out.interrupted.is_some(),
            shard: inp.shard.map(|s| s.to_string()),
        },
        board: Board {
            name: inp.board.name().to_string(),
            profile: FileDigest {
                path: rel(&inp.board.path),
                sha256: sha256_bytes(inp.board.text.as_bytes()),
            },
            identity: inp.board.identity.clone(),
            units: inp.board.units.iter().map(|u| u.serial.clone()).collect(),
            defects: inp.board.launch.as_ref().map(|_| inp.defects.to_vec()),
            labgrid_place: inp.board.labgrid.as_ref().map(|l| l.place.clone()),
        },
        ics: ics_json(inp.board),
        ixit: serde_json::to_value(&inp.board.ixit.sheets).unwrap_or_default(),
        scenarios: inp
            .scenarios
            .iter()
            .map(|s| FileDigest {
                path: rel(&s.path),
                sha256: sha256_bytes(s.text.as_bytes()),
            })
            .collect(),
        cases: out.cases.clone(),
        provisions,
        summary,
        shards: Vec::new(),
    }
}

/// This suite: its name, version, commit and the catalogue it judges against.
pub fn suite_info() -> Suite {
    Suite {
        name: "hilt".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        git_commit: option_env!("HILT_GIT_COMMIT").map(str::to_string),
        catalogue: Catalogue::embedded().source.clone(),
    }
}

fn ics_json(board: &BoardProfile) -> serde_json::Value {
    let cat = Catalogue::embedded();
    let provisions: serde_json::Map<String, serde_json::Value> = board
        .ics
        .provisions
        .iter()
        .map(|(id, e)| {
            let e = e.get_ref();
            let status = cat.en(id).map(|p| p.status_code()).unwrap_or_default();
            (id.clone(), serde_json::json!({"status": status, "support": e.support.as_str(), "detail": e.detail}))
        })
        .collect();
    let flags = |m: &std::collections::BTreeMap<String, serde_spanned::Spanned<bool>>| -> serde_json::Value {
        m.iter().map(|(k, v)| (k.clone(), serde_json::Value::Bool(*v.get_ref()))).collect()
    };
    serde_json::json!({
        "features": flags(&board.ics.features),
        "conditions": flags(&board.ics.conditions),
        "provisions": provisions,
    })
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The DUT subject: the firmware image digest once links can read it; for now a digest of its identity.
fn dut_subject(report: &Report) -> Subject {
    let id = &report.board.identity;
    let identity = serde_json::json!({"identity": id, "units": report.board.units});
    let name = format!("dut:{}/{}", id.model, report.board.units.join(","));
    Subject::new(name, sha256_bytes(identity.to_string().as_bytes()))
}

/// Write `report.json` and `report.dsse.json` into `dir` (whose `evidence/` is already complete).
pub fn write(dir: &Path, report: &Report, key: &KeyPair) -> anyhow::Result<PathBuf> {
    write_with_members(dir, report, &[], key)
}

/// As [`write`], binding the signed reports in the subdirectories `members` (a merged report's
/// shards) by digest.
pub fn write_with_members(
    dir: &Path,
    report: &Report,
    members: &[String],
    key: &KeyPair,
) -> anyhow::Result<PathBuf> {
    let value = serde_json::to_value(report)?;
    Ok(write_signed_report_with_members(
        dir,
        &value,
        dut_subject(report),
        members,
        key,
    )?)
}

/// The signed report, then its readable rendering `report.html` beside it (the envelope stays
/// authoritative); returns the envelope's path.
pub fn write_with_html(dir: &Path, report: &Report, key: &KeyPair) -> anyhow::Result<PathBuf> {
    let envelope = write(dir, report, key)
        .with_context(|| format!("cannot write the signed report in {}", dir.display()))?;
    let html = dir.join("report.html");
    let text = hilt_report::html::render(report).context("HTML rendering")?;
    hilt_report::atomic::write_atomic(&html, text.as_bytes())
        .with_context(|| format!("cannot write {}", html.display()))?;
    Ok(envelope)
}
