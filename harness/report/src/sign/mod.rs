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
    EVIDENCE_DIR, PREDICATE_TYPE, STATEMENT_TYPE, Subject, check_evidence_path, has_scheme,
    statement,
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
    if !dut.is_opaque() {
        return Err(SignError::DutName(dut.name));
    }
    if !is_sha256_hex(&dut.sha256) {
        return Err(SignError::BadDigest {
            name: dut.name,
            digest: dut.sha256,
        });
    }
    if !report.is_object() {
        return Err(SignError::ReportNotObject);
    }
    let mut subjects = vec![dut];
    subjects.extend(evidence_subjects(dir)?);
    let count = subjects.len();
    let envelope = sign_statement(&statement(subjects, report.clone()), key);

    let report_path = dir.join(REPORT_FILE);
    write_atomic(&report_path, &report_bytes(report)).map_err(|source| SignError::Io {
        path: report_path,
        source,
    })?;
    let envelope_path = dir.join(ENVELOPE_FILE);
    write_atomic(&envelope_path, &envelope_bytes(&envelope)).map_err(|source| SignError::Io {
        path: envelope_path.clone(),
        source,
    })?;
    info!(
        key_id = %key.key_id(),
        subjects = count,
        path = %envelope_path.display(),
        "signed conformance report"
    );
    Ok(envelope_path)
}
