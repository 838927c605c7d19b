//! `hilt report merge`: CI shards of one suite run (`hilt run --shard K/N` on several runners) made
//! into one signed report. Every shard is verified first (signature and evidence), and shards that
//! are not of one run of one suite on one board are refused, naming what differs. The merged report
//! holds every case, rolled up per provision as if one run had made them; each shard is kept whole
//! under `shards/K-of-N/` and bound by its envelope's digest, so `hilt verify` can check it too.

use hilt_model::catalogue::Catalogue;
use hilt_model::profile::BoardProfile;
use hilt_report::keys::KeyPair;
use hilt_report::keys::VerifyingKey;
use hilt_report::model::{CaseResult, Report, ShardRef};
use hilt_report::rollup::{rollup, summarise};
use hilt_report::sign::{ENVELOPE_FILE, Subject};
use hilt_report::verify::verify_envelope_file;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::runner::Shard;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{}: {source}", dir.display())]
    Verify {
        dir: PathBuf,
        #[source]
        source: hilt_report::verify::VerifyError,
    },
    #[error("{}: the signed report is not a hilt report of this version: {reason}", dir.display())]
    NotAReport { dir: PathBuf, reason: String },
    #[error("{}: not a shard (run without --shard K/N)", dir.display())]
    NotAShard { dir: PathBuf },
    #[error("shards differ in {what}: {} has {a}, {} has {b}", first.display(), other.display())]
    Mismatch {
        what: &'static str,
        first: PathBuf,
        other: PathBuf,
        a: String,
        b: String,
    },
    #[error("shard {shard} is given twice: {} and {}", first.display(), other.display())]
    Duplicate {
        shard: String,
        first: PathBuf,
        other: PathBuf,
    },
    #[error("shard(s) {missing} of {count} missing: a merged report must cover every shard")]
    Missing { missing: String, count: usize },
    #[error("case {case} is in two shards ({} and {})", first.display(), other.display())]
    CaseTwice {
        case: String,
        first: PathBuf,
        other: PathBuf,
    },
    #[error(
        "{}: the board profile the shards ran with (sha256 {want}) is not the one in this suite (sha256 {have}); merge in the checkout the shards ran from",
        path.display()
    )]
    ProfileChanged {
        path: PathBuf,
        want: String,
        have: String,
    },
    #[error(transparent)]
    Load(#[from] hilt_model::error::LoadError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the merged report: {0:#}")]
    Write(anyhow::Error),
}

/// One verified shard.
struct Input {
    dir: PathBuf,
    shard: Shard,
    report: Report,
    envelope_sha256: String,
    /// Its evidence files (signed subjects), relative to its directory.
    evidence: Vec<String>,
}

/// Verify the shards in `dirs` with `shard_key`, merge them into `out` signed with `key`; returns
/// the merged report's envelope path and the report.
pub fn merge(
    dirs: &[PathBuf],
    shard_key: &VerifyingKey,
    suite_root: &Path,
    out: &Path,
    key: &KeyPair,
) -> Result<(PathBuf, Report), MergeError> {
    let mut inputs = dirs
        .iter()
        .map(|d| read_shard(d, shard_key))
        .collect::<Result<Vec<_>, _>>()?;
    check_same_run(&inputs)?;
    inputs.sort_by_key(|i| i.shard.index);
    let profile = profile_of(&inputs[0], suite_root)?;
    let mut members = Vec::new();
    for input in &inputs {
        let rel = format!("shards/{}-of-{}", input.shard.index, input.shard.count);
        copy_shard(input, &out.join(&rel))?;
        for name in &input.evidence {
            link_or_copy(&input.dir.join(name), &out.join(name))?;
        }
        members.push(rel);
    }
    let report = merged_report(&inputs, &members, &profile);
    let envelope = crate::report::write_with_members(out, &report, &members, key)
        .and_then(|env| {
            let html = hilt_report::html::render(&report)?;
            hilt_report::atomic::write_atomic(&out.join("report.html"), html.as_bytes())?;
            Ok(env)
        })
        .map_err(MergeError::Write)?;
    Ok((envelope, report))
}

fn read_shard(dir: &Path, key: &VerifyingKey) -> Result<Input, MergeError> {
    let envelope = dir.join(ENVELOPE_FILE);
    let verified = verify_envelope_file(&envelope, key).map_err(|source| MergeError::Verify {
        dir: dir.to_path_buf(),
        source,
    })?;
    let report: Report =
        serde_json::from_value(verified.report).map_err(|e| MergeError::NotAReport {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
    let shard = report
        .run
        .shard
        .as_deref()
        .and_then(|s| s.parse::<Shard>().ok())
        .ok_or_else(|| MergeError::NotAShard {
            dir: dir.to_path_buf(),
        })?;
    let envelope_sha256 =
        hilt_report::digest::sha256_file(&envelope).map_err(|source| MergeError::Io {
            path: envelope.clone(),
            source,
        })?;
    let evidence = verified
        .subjects
        .iter()
        .filter(|s: &&Subject| !s.is_opaque())
        .map(|s| s.name.clone())
        .collect();
    Ok(Input {
        dir: dir.to_path_buf(),
        shard,
        report,
        envelope_sha256,
        evidence,
    })
}

/// Shards of one run: one suite version, one board profile, units, defects and place, one scenario set,
/// one shard count, each shard once and every one present, no case twice.
fn check_same_run(inputs: &[Input]) -> Result<(), MergeError> {
    let first = inputs.first().ok_or(MergeError::Missing {
        missing: "all".into(),
        count: 0,
    })?;
    let facts = |r: &Input| -> [(&'static str, String); 8] {
        let b = &r.report.board;
        [
            ("suite version", r.report.suite.version.clone()),
            ("suite commit", format!("{:?}", r.report.suite.git_commit)),
            ("board profile", b.profile.sha256.clone()),
            ("units", b.units.join(",")),
            ("defects", format!("{:?}", b.defects)),
            ("labgrid place", format!("{:?}", b.labgrid_place)),
            ("scenarios", scenario_digest(&r.report)),
            ("shard count", r.shard.count.to_string()),
        ]
    };
    let want = facts(first);
    let mut seen_shards = std::collections::BTreeMap::new();
    let mut seen_cases = std::collections::BTreeMap::new();
    for input in inputs {
        for ((what, a), (_, b)) in want.iter().zip(facts(input)) {
            if *a != b {
                return Err(MergeError::Mismatch {
                    what,
                    first: first.dir.clone(),
                    other: input.dir.clone(),
                    a: a.clone(),
                    b,
                });
            }
        }
        if let Some(prev) = seen_shards.insert(input.shard.index, &input.dir) {
            return Err(MergeError::Duplicate {
                shard: input.shard.to_string(),
                first: prev.clone(),
                other: input.dir.clone(),
            });
        }
        for c in &input.report.cases {
            if let Some(prev) = seen_cases.insert(c.id.clone(), &input.dir) {
                return Err(MergeError::CaseTwice {
                    case: c.id.clone(),
                    first: prev.clone(),
                    other: input.dir.clone(),
                });
            }
        }
    }
    let count = first.shard.count;
    let missing: Vec<String> = (1..=count)
        .filter(|k| !seen_shards.contains_key(k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            missing: missing.join(", "),
            count,
        });
    }
    Ok(())
}

/// The scenarios a report was run with, as one comparable string.
fn scenario_digest(r: &Report) -> String {
    let all: BTreeSet<String> = r
        .scenarios
        .iter()
        .map(|s| format!("{}={}", s.path, s.sha256))
        .collect();
    hilt_report::digest::sha256_bytes(all.into_iter().collect::<Vec<_>>().join("\n").as_bytes())
}

/// The board profile the shards ran with, from this suite, refused if it has changed since.
fn profile_of(input: &Input, suite_root: &Path) -> Result<BoardProfile, MergeError> {
    let signed = &input.report.board.profile;
    let path = suite_root.join(&signed.path);
    let profile = BoardProfile::load(&path)?;
    let have = hilt_report::digest::sha256_bytes(profile.text.as_bytes());
    if have != signed.sha256 {
        return Err(MergeError::ProfileChanged {
            path,
            want: signed.sha256.clone(),
            have,
        });
    }
    Ok(profile)
}

/// The merged document: every case in the order one run would have given them (shards take the
/// selection round robin), rolled up again per provision.
fn merged_report(inputs: &[Input], members: &[String], profile: &BoardProfile) -> Report {
    let mut report = inputs[0].report.clone();
    let cases = interleave(inputs);
    let interrupted = inputs.iter().any(|i| i.report.run.interrupted);
    let provisions = rollup(&cases, &profile.ics, Catalogue::embedded());
    report.summary = summarise(
        &cases,
        &provisions,
        report.summary.cases_in_suite,
        interrupted,
    );
    report.provisions = provisions;
    report.cases = cases;
    let started = inputs.iter().map(|i| i.report.run.started.clone()).min();
    let finished = inputs.iter().map(|i| i.report.run.finished.clone()).max();
    let run = &mut report.run;
    run.started = started.unwrap_or_default();
    run.finished = finished.unwrap_or_default();
    run.duration_ms = span_ms(&run.started, &run.finished);
    run.id = format!("{}-merged-{}", inputs[0].report.run.id, inputs.len());
    run.host = crate::report::hostname();
    run.interrupted = interrupted;
    run.development_key = inputs.iter().any(|i| i.report.run.development_key);
    run.shard = None;
    if let Some(at) = run.selection.iter().position(|a| a == "--shard") {
        run.selection.drain(at..(at + 2).min(run.selection.len()));
    }
    report.shards = inputs
        .iter()
        .zip(members)
        .map(|(i, dir)| ShardRef {
            shard: i.shard.to_string(),
            dir: dir.clone(),
            run_id: i.report.run.id.clone(),
            host: i.report.run.host.clone(),
            envelope_sha256: i.envelope_sha256.clone(),
            cases: i.report.cases.iter().map(|c| c.id.clone()).collect(),
        })
        .collect();
    report
}

/// Shard K held selected positions K-1, K-1+N, …: taking one case from each shard in turn gives the
/// selection's order back.
fn interleave(inputs: &[Input]) -> Vec<CaseResult> {
    let mut out = Vec::new();
    let longest = inputs
        .iter()
        .map(|i| i.report.cases.len())
        .max()
        .unwrap_or(0);
    for row in 0..longest {
        for i in inputs {
            if let Some(c) = i.report.cases.get(row) {
                out.push(c.clone());
            }
        }
    }
    out
}

fn span_ms(started: &str, finished: &str) -> u64 {
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (parse(started), parse(finished)) {
        (Some(a), Some(b)) => (b - a).num_milliseconds().max(0) as u64,
        _ => 0,
    }
}

/// The shard's signed files and evidence, whole, under `to`.
fn copy_shard(input: &Input, to: &Path) -> Result<(), MergeError> {
    for name in ["report.json", ENVELOPE_FILE] {
        let from = input.dir.join(name);
        if from.exists() {
            link_or_copy(&from, &to.join(name))?;
        }
    }
    for name in &input.evidence {
        link_or_copy(&input.dir.join(name), &to.join(name))?;
    }
    Ok(())
}

/// A hard link when both lie on one file system (evidence can be large), else a copy.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), MergeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MergeError::Io { path, source }
    };
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map(|_| ()).map_err(io(from))
}
