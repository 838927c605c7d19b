//! Signing a report: an in-toto Statement v1 (report as predicate, DUT and evidence files as
//! subjects) wrapped in a DSSE envelope, written beside the report as `report.dsse.json`.

mod dsse;
pub(crate) mod evidence;
mod statement;

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tracing::info;

pub(crate) use dsse::decode_strict;
pub use dsse::{Envelope, EnvelopeSignature, PAYLOAD_TYPE, envelope_bytes, pae, sign_payload};
pub(crate) use statement::parse_statement;
pub use statement::{
    CAMPAIGN_PREDICATE_TYPE, DocumentKind, EVIDENCE_DIR, MEMBER_SCHEME, PREDICATE_TYPE,
    STATEMENT_TYPE, Subject, check_evidence_path, check_member_path, has_scheme, statement,
    statement_of,
};

use crate::atomic::write_atomic;
use crate::digest::{is_sha256_hex, sha256_file};
use crate::keys::KeyPair;
use evidence::Entry;

/// File names inside a report directory.
pub const REPORT_FILE: &str = "report.json";
pub const ENVELOPE_FILE: &str = "report.dsse.json";

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "DUT subject name {0:?} must start with a scheme such as \"dut:\" (paths are for evidence)"
    )]
    DutName(String),
    #[error("subject {name:?}: digest {digest:?} is not 64 lowercase hex digits")]
    BadDigest { name: String, digest: String },
    #[error("{name}: evidence must be regular files in directories, found a {what}")]
    Evidence { name: String, what: &'static str },
    #[error("{}: evidence file name is not UTF-8", path.display())]
    NonUtf8Name { path: PathBuf },
    #[error("the report must be a JSON object")]
    ReportNotObject,
    #[error("member {rel:?}: {reason}")]
    Member { rel: String, reason: String },
}

/// Signs a Statement (compact JSON as payload).
pub fn sign_statement(statement: &Value, key: &KeyPair) -> Envelope {
    // Display of a Value is compact JSON and infallible.
    sign_payload(PAYLOAD_TYPE, statement.to_string().as_bytes(), key)
}

/// The canonical form of `report.json`: pretty JSON plus a final newline.
pub fn report_bytes(report: &Value) -> Vec<u8> {
    format!("{report:#}\n").into_bytes()
}

/// Hashes every file under `dir/evidence/` into subjects sorted by name.
pub fn evidence_subjects(dir: &Path) -> Result<Vec<Subject>, SignError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SignError::Io { path, source }
    };
    let entries = evidence::walk(dir).map_err(io_err(&dir.join(EVIDENCE_DIR)))?;
    let mut subjects = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry {
            Entry::File { name, path } => {
                let sha256 = sha256_file(&path).map_err(io_err(&path))?;
                subjects.push(Subject::new(name, sha256));
            }
            Entry::Other { name, what } => return Err(SignError::Evidence { name, what }),
            Entry::NonUtf8 { path } => return Err(SignError::NonUtf8Name { path }),
        }
    }
    Ok(subjects)
}

/// Writes `dir/report.json` (the report, pretty) and `dir/report.dsse.json` (the signed envelope),
/// each atomically. Subjects: the DUT first, then every evidence file sorted by name.
/// Returns the envelope's path.
pub fn write_signed_report(
    dir: &Path,
    report: &Value,
    dut: Subject,
    key: &KeyPair,
) -> Result<PathBuf, SignError> {
    write_signed_report_with_members(dir, report, dut, &[], key)
}

/// As [`write_signed_report`], also binding the signed reports in the subdirectories `members`
/// (each `DIR/report.dsse.json`, already written) by their envelopes' digests: a merged report's
/// shards.
pub fn write_signed_report_with_members(
    dir: &Path,
    report: &Value,
    dut: Subject,
    members: &[String],
    key: &KeyPair,
) -> Result<PathBuf, SignError> {
    if !dut.is_opaque() {
        return Err(SignError::DutName(dut.name));
    }
    if !is_sha256_hex(&dut.sha256) {
        return Err(SignError::BadDigest {
            name: dut.name,
            digest: dut.sha256,
        });
    }
    let mut subjects = vec![dut];
    subjects.extend(member_subjects(dir, members)?);
    subjects.extend(evidence_subjects(dir)?);
    write_signed(dir, DocumentKind::Report, report, subjects, key)
}

/// Writes `dir/campaign.json` and `dir/campaign.dsse.json`: a campaign summary binding each board's
/// signed report (`DIR/report.dsse.json` for each of `members`) by its envelope's digest.
pub fn write_signed_campaign(
    dir: &Path,
    campaign: &Value,
    members: &[String],
    key: &KeyPair,
) -> Result<PathBuf, SignError> {
    let subjects = member_subjects(dir, members)?;
    write_signed(dir, DocumentKind::Campaign, campaign, subjects, key)
}

/// `member:DIR` subjects, each with the digest of `dir/DIR/report.dsse.json`.
fn member_subjects(dir: &Path, members: &[String]) -> Result<Vec<Subject>, SignError> {
    members
        .iter()
        .map(|rel| {
            check_member_path(rel).map_err(|reason| SignError::Member {
                rel: rel.clone(),
                reason,
            })?;
            let path = dir.join(rel).join(ENVELOPE_FILE);
            let sha256 = sha256_file(&path).map_err(|source| SignError::Io { path, source })?;
            Ok(Subject::new(format!("{MEMBER_SCHEME}{rel}"), sha256))
        })
        .collect()
}

fn write_signed(
    dir: &Path,
    kind: DocumentKind,
    document: &Value,
    subjects: Vec<Subject>,
    key: &KeyPair,
) -> Result<PathBuf, SignError> {
    if !document.is_object() {
        return Err(SignError::ReportNotObject);
    }
    let count = subjects.len();
    let envelope = sign_statement(&statement_of(kind, subjects, document.clone()), key);
    let json_path = dir.join(kind.json_file());
    write_atomic(&json_path, &report_bytes(document)).map_err(|source| SignError::Io {
        path: json_path,
        source,
    })?;
    let envelope_path = dir.join(kind.envelope_file());
    write_atomic(&envelope_path, &envelope_bytes(&envelope)).map_err(|source| SignError::Io {
        path: envelope_path.clone(),
        source,
    })?;
    info!(
        key_id = %key.key_id(),
        subjects = count,
        path = %envelope_path.display(),
        "signed {}",
        match kind {
            DocumentKind::Report => "conformance report",
            DocumentKind::Campaign => "campaign summary",
        }
    );
    Ok(envelope_path)
}
