//! Verification of a signed report directory: the envelope (canonical bytes, type, key id, strict
//! base64, Ed25519 signature, Statement shape), then the content it vouches for (evidence files and
//! `report.json`). Envelope checks stop at the first failure, since each later one trusts the
//! earlier; content checks report every problem found.
//!
//! A missing `report.json` is accepted (the signed predicate is the report); `Verified` says whether
//! one was compared.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;
use tracing::{debug, warn};

use crate::atomic::parent_dir;
use crate::digest::sha256_file;
use crate::keys::key_id;
use crate::sign::evidence::{self, Entry};
use crate::sign::{
    DocumentKind, ENVELOPE_FILE, Envelope, MEMBER_SCHEME, PAYLOAD_TYPE, Subject,
    check_evidence_path, check_member_path, decode_strict, envelope_bytes, pae, parse_statement,
};

/// How deep members may nest: a campaign of merged reports of shards.
const MAX_MEMBER_DEPTH: usize = 2;

/// Envelope and report files larger than this are refused unread (a DoS guard, not a format rule).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct Verified {
    pub kind: DocumentKind,
    pub key_id: String,
    pub statement: Value,
    /// The signed predicate.
    pub report: Value,
    pub subjects: Vec<Subject>,
    /// Evidence file subjects whose digest was checked.
    pub evidence_checked: usize,
    /// Whether a `report.json` beside the envelope was compared with the predicate.
    pub report_file_checked: bool,
    /// The signed reports bound as members (a campaign's boards, a merged report's shards), in
    /// subject order.
    pub members: Vec<Member>,
}

/// A member report bound by a `member:DIR` subject.
#[derive(Debug, Clone)]
pub struct Member {
    pub dir: String,
    /// `None` when `DIR/report.dsse.json` is not there (only its digest was signed); else it
    /// matched its digest and verified.
    pub verified: Option<Box<Verified>>,
}

/// Why a report did not verify. Two kinds, told apart by [`VerifyError::is_input_error`]:
///
/// - **bad input**: the envelope file could not be read (`Io`, `TooLarge`) or is not a DSSE envelope
///   at all (`NotEnvelope`: not JSON, or JSON of another shape). Nothing was verified; the caller
///   most likely named the wrong file (`hilt verify` exits 2).
/// - **not verified**: a DSSE envelope whose signature, form or signed content does not hold (every
///   other variant): a forged or altered report (`hilt verify` exits 1).
///
/// The I/O variant's message names the file only; its cause is the error's `source`.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: larger than {MAX_FILE_BYTES} bytes, refused", path.display())]
    TooLarge { path: PathBuf },
    /// Not a regular file (a FIFO, a device, a directory).
    #[error(transparent)]
    Open(#[from] hilt_model::fsread::ReadError),
    #[error("{}: not a DSSE envelope: {reason}", path.display())]
    NotEnvelope { path: PathBuf, reason: String },
    #[error("{}: not in canonical form (first difference at byte {offset}): edited after signing", path.display())]
    NotCanonical { path: PathBuf, offset: usize },
    #[error("payloadType is {found:?}, expected {PAYLOAD_TYPE:?}")]
    PayloadType { found: String },
    #[error("envelope has {0} signatures, expected exactly one")]
    SignatureCount(usize),
    #[error("signature keyid {found:?} does not match the given public key (keyid {expected})")]
    KeyIdMismatch { found: String, expected: String },
    #[error("{field} is not strict standard base64: {reason}")]
    Base64 { field: &'static str, reason: String },
    #[error("signature is {0} bytes, an Ed25519 signature has 64")]
    SignatureLength(usize),
    #[error("Ed25519 signature does not verify with key {key_id}")]
    BadSignature { key_id: String },
    #[error("payload is not a hilt in-toto Statement v1: {0}")]
    NotStatement(String),
    #[error("{}", ProblemList(.0))]
    Content(Vec<Problem>),
}

impl VerifyError {
    /// Whether this is bad input (no readable DSSE envelope) rather than a report that failed
    /// verification; see the type's documentation.
    pub fn is_input_error(&self) -> bool {
        match self {
            VerifyError::Io { .. }
            | VerifyError::TooLarge { .. }
            | VerifyError::Open(_)
            | VerifyError::NotEnvelope { .. } => true,
            VerifyError::NotCanonical { .. }
            | VerifyError::PayloadType { .. }
            | VerifyError::SignatureCount(_)
            | VerifyError::KeyIdMismatch { .. }
            | VerifyError::Base64 { .. }
            | VerifyError::SignatureLength(_)
            | VerifyError::BadSignature { .. }
            | VerifyError::NotStatement(_)
            | VerifyError::Content(_) => false,
        }
    }
}

/// One thing wrong with the files a valid envelope vouches for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("subject {name:?}: unsafe path ({reason})")]
    UnsafePath { name: String, reason: String },
    #[error("subject {name:?} is listed more than once")]
    DuplicateSubject { name: String },
    #[error("{name}: missing")]
    EvidenceMissing { name: String },
    #[error("{name}: digest mismatch (signed sha256 {expected}, file has {actual})")]
    EvidenceDigest {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("{name}: cannot read: {reason}")]
    EvidenceUnreadable { name: String, reason: String },
    #[error("{name}: is a {what}, not a regular file")]
    EvidenceNotFile { name: String, what: &'static str },
    #[error("{name}: present under evidence/ but not a signed subject")]
    EvidenceUnlisted { name: String },
    #[error("{path}: evidence file name is not UTF-8")]
    EvidenceNonUtf8 { path: String },
    #[error("{file}: {reason}")]
    ReportUnreadable { file: &'static str, reason: String },
    #[error("{file} differs from the signed document at {pointer}")]
    ReportDiffers { file: &'static str, pointer: String },
    #[error("member {dir}: {reason}")]
    Member { dir: String, reason: String },
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) with the signed content:", self.0.len())?;
        for p in self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// Verifies `path` (a `report.dsse.json` or `campaign.dsse.json`) with `key`, the evidence and plain
/// JSON copy beside it, and every member report that is present.
pub fn verify_envelope_file(path: &Path, key: &VerifyingKey) -> Result<Verified, VerifyError> {
    verify_at_depth(path, key, 0)
}

fn verify_at_depth(path: &Path, key: &VerifyingKey, depth: usize) -> Result<Verified, VerifyError> {
    let bytes = read_limited(path)?;
    let not_envelope = |reason: String| VerifyError::NotEnvelope {
        path: path.to_path_buf(),
        reason,
    };
    let envelope: Envelope =
        serde_json::from_slice(&bytes).map_err(|e| not_envelope(e.to_string()))?;
    let canonical = envelope_bytes(&envelope);
    if canonical != bytes {
        let offset = canonical
            .iter()
            .zip(&bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(canonical.len().min(bytes.len()));
        return Err(VerifyError::NotCanonical {
            path: path.to_path_buf(),
            offset,
        });
    }
    let payload = verify_signature(&envelope, key)?;
    let statement: Value = serde_json::from_slice(&payload)
        .map_err(|e| VerifyError::NotStatement(format!("not JSON: {e}")))?;
    let parsed = parse_statement(&statement).map_err(VerifyError::NotStatement)?;

    let dir = parent_dir(path);
    let mut problems = Vec::new();
    let evidence_checked = check_evidence(dir, &parsed.subjects, &mut problems);
    let report_file_checked = check_report_file(dir, parsed.kind, &parsed.predicate, &mut problems);
    let members = check_members(dir, &parsed.subjects, key, depth, &mut problems);
    if !problems.is_empty() {
        return Err(VerifyError::Content(problems));
    }
    if !report_file_checked {
        warn!(dir = %dir.display(), "no report.json beside the envelope; only the signed copy was checked");
    }
    debug!(path = %path.display(), evidence_checked, "report verified");
    Ok(Verified {
        kind: parsed.kind,
        key_id: key_id(key),
        statement,
        report: parsed.predicate,
        subjects: parsed.subjects,
        evidence_checked,
        report_file_checked,
        members,
    })
}

/// Each `member:DIR` subject: `DIR/report.dsse.json`, when present, must have the signed digest and
/// verify in turn (with the same key). An absent member is listed as such, not a problem: a
/// certifier may receive the merged report without its shards.
fn check_members(
    dir: &Path,
    subjects: &[Subject],
    key: &VerifyingKey,
    depth: usize,
    problems: &mut Vec<Problem>,
) -> Vec<Member> {
    let mut members = Vec::new();
    for s in subjects {
        let Some(rel) = s.name.strip_prefix(MEMBER_SCHEME) else {
            continue;
        };
        let problem = |reason: String| Problem::Member {
            dir: rel.to_string(),
            reason,
        };
        if let Err(reason) = check_member_path(rel) {
            problems.push(problem(format!("unsafe path ({reason})")));
            continue;
        }
        if depth >= MAX_MEMBER_DEPTH {
            problems.push(problem(format!(
                "members nest deeper than {MAX_MEMBER_DEPTH}"
            )));
            continue;
        }
        let envelope = dir.join(rel).join(ENVELOPE_FILE);
        if let Err(e) = fs::symlink_metadata(&envelope)
            && e.kind() == io::ErrorKind::NotFound
        {
            members.push(Member {
                dir: rel.to_string(),
                verified: None,
            });
            continue;
        }
        match sha256_file(&envelope) {
            Ok(actual) if actual != s.sha256 => problems.push(problem(format!(
                "{ENVELOPE_FILE} digest mismatch (signed sha256 {}, file has {actual})",
                s.sha256
            ))),
            Err(e) => problems.push(problem(format!("cannot read {ENVELOPE_FILE}: {e}"))),
            Ok(_) => match verify_at_depth(&envelope, key, depth + 1) {
                Ok(v) => members.push(Member {
                    dir: rel.to_string(),
                    verified: Some(Box::new(v)),
                }),
                Err(e) => problems.push(problem(e.to_string())),
            },
        }
    }
    members
}

/// Checks type, key id and signature; returns the payload bytes.
fn verify_signature(envelope: &Envelope, key: &VerifyingKey) -> Result<Vec<u8>, VerifyError> {
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(VerifyError::PayloadType {
            found: envelope.payload_type.clone(),
        });
    }
    let [signature] = envelope.signatures.as_slice() else {
        return Err(VerifyError::SignatureCount(envelope.signatures.len()));
    };
    let expected = key_id(key);
    if signature.keyid != expected {
        return Err(VerifyError::KeyIdMismatch {
            found: signature.keyid.clone(),
            expected,
        });
    }
    let payload = decode_strict(&envelope.payload).map_err(|reason| VerifyError::Base64 {
        field: "payload",
        reason,
    })?;
    let sig = decode_strict(&signature.sig).map_err(|reason| VerifyError::Base64 {
        field: "signatures[0].sig",
        reason,
    })?;
    let sig: [u8; 64] = sig
        .as_slice()
        .try_into()
        .map_err(|_| VerifyError::SignatureLength(sig.len()))?;
    // verify_strict also rejects small-order keys and malleable signatures.
    key.verify_strict(
        &pae(&envelope.payload_type, &payload),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| VerifyError::BadSignature { key_id: expected })?;
    Ok(payload)
}

/// Checks every file subject and every file under evidence/; returns how many subjects matched.
fn check_evidence(dir: &Path, subjects: &[Subject], problems: &mut Vec<Problem>) -> usize {
    let mut listed = BTreeSet::new();
    let mut checked = 0;
    for subject in subjects.iter().filter(|s| !s.is_opaque()) {
        let name = subject.name.clone();
        if let Err(reason) = check_evidence_path(&name) {
            problems.push(Problem::UnsafePath { name, reason });
            continue;
        }
        if !listed.insert(name.clone()) {
            problems.push(Problem::DuplicateSubject { name });
            continue;
        }
        let path = dir.join(&name);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                problems.push(Problem::EvidenceMissing { name })
            }
            Err(e) => problems.push(Problem::EvidenceUnreadable {
                name,
                reason: e.to_string(),
            }),
            // Non-files are reported by the directory walk below.
            Ok(meta) if !meta.is_file() => {}
            Ok(_) => match sha256_file(&path) {
                Ok(actual) if actual == subject.sha256 => checked += 1,
                Ok(actual) => problems.push(Problem::EvidenceDigest {
                    name,
                    expected: subject.sha256.clone(),
                    actual,
                }),
                Err(e) => problems.push(Problem::EvidenceUnreadable {
                    name,
                    reason: e.to_string(),
                }),
            },
        }
    }
    match evidence::walk(dir) {
        Ok(entries) => {
            for entry in entries {
                problems.extend(match entry {
                    Entry::File { name, .. } if listed.contains(&name) => None,
                    Entry::File { name, .. } => Some(Problem::EvidenceUnlisted { name }),
                    Entry::Other { name, what } => Some(Problem::EvidenceNotFile { name, what }),
                    Entry::NonUtf8 { path } => Some(Problem::EvidenceNonUtf8 {
                        path: path.to_string_lossy().into_owned(),
                    }),
                });
            }
        }
        Err(e) => problems.push(Problem::EvidenceUnreadable {
            name: "evidence/".into(),
            reason: e.to_string(),
        }),
    }
    checked
}

/// Compares the plain JSON copy (`report.json`, `campaign.json`), if present, with the predicate;
/// returns whether one was compared.
fn check_report_file(
    dir: &Path,
    kind: DocumentKind,
    predicate: &Value,
    problems: &mut Vec<Problem>,
) -> bool {
    let file = kind.json_file();
    let path = dir.join(file);
    if let Err(e) = fs::symlink_metadata(&path)
        && e.kind() == io::ErrorKind::NotFound
    {
        return false;
    }
    let unreadable = |reason: String| Problem::ReportUnreadable { file, reason };
    let value = read_limited(&path)
        .map_err(|e| unreadable(read_failure(e)))
        .and_then(|bytes| {
            serde_json::from_slice::<Value>(&bytes)
                .map_err(|e| unreadable(format!("not JSON: {e}")))
        });
    match value {
        Ok(value) => {
            if let Some(pointer) = first_difference(predicate, &value, String::new()) {
                problems.push(Problem::ReportDiffers { file, pointer });
            }
        }
        Err(problem) => problems.push(problem),
    }
    true
}

/// Why [`read_limited`] failed, without the path (the problem names the file).
fn read_failure(e: VerifyError) -> String {
    match e {
        VerifyError::Io { source, .. } => source.to_string(),
        VerifyError::TooLarge { .. } => format!("larger than {MAX_FILE_BYTES} bytes, refused"),
        other => other.to_string(),
    }
}

/// JSON Pointer (RFC 6901) of the first place two values differ; "/" for the root.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    let here = || {
        Some(if at.is_empty() {
            "/".to_string()
        } else {
            at.clone()
        })
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let child = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => first_difference(p, q, child),
                    _ => Some(child),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            let diff = x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| first_difference(p, q, format!("{at}/{i}")));
            match diff {
                None if x.len() != y.len() => Some(format!("{at}/{}", x.len().min(y.len()))),
                other => other,
            }
        }
        _ if a == b => None,
        _ => here(),
    }
}

/// Reads a whole file, refusing one over [`MAX_FILE_BYTES`] without reading it all.
fn read_limited(path: &Path) -> Result<Vec<u8>, VerifyError> {
    let io_err = |source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Not File::open: opening a FIFO would wait for a writer forever.
    let (file, meta) = hilt_model::fsread::open_regular(path).map_err(|e| match e {
        hilt_model::fsread::ReadError::Io { error, .. } => io_err(error),
        other => VerifyError::Open(other),
    })?;
    let too_large = || VerifyError::TooLarge {
        path: path.to_path_buf(),
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_fifo_or_a_directory_is_refused_at_once_never_waited_on() {
        let dir = std::env::temp_dir().join(format!("hilt-verify-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("report.dsse.json");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let started = std::time::Instant::now();
        for path in [fifo.as_path(), dir.as_path()] {
            let e = read_limited(path).unwrap_err();
            assert!(e.is_input_error(), "{e}");
            assert!(e.to_string().contains("is not a regular file"), "{e}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn first_difference_points_at_the_change() {
        let a = json!({"a": {"b/c": [1, 2, 3]}, "z": true});
        assert_eq!(first_difference(&a, &a.clone(), String::new()), None);
        let mut b = a.clone();
        b["a"]["b/c"][2] = json!(4);
        assert_eq!(
            first_difference(&a, &b, String::new()).as_deref(),
            Some("/a/b~1c/2")
        );
        let b = json!({"a": {"b/c": [1, 2]}, "z": true});
        assert_eq!(
            first_difference(&a, &b, String::new()).as_deref(),
            Some("/a/b~1c/2")
        );
        let b = json!({"a": {"b/c": [1, 2, 3]}, "z": true, "extra": 1});
        assert_eq!(
            first_difference(&a, &b, String::new()).as_deref(),
            Some("/extra")
        );
        assert_eq!(
            first_difference(&a, &json!(1), String::new()).as_deref(),
            Some("/")
        );
    }
}
