//! in-toto Statement v1: the signed payload binding the report (predicate) to its subjects.

use serde_json::{Map, Value, json};

use crate::digest::is_sha256_hex;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://hilt.dev/conformance-report/v1";
/// A campaign summary: the reports of several boards tested in one run, each bound as a member.
pub const CAMPAIGN_PREDICATE_TYPE: &str = "https://hilt.dev/campaign/v1";
/// Subjects named `member:DIR` bind the signed report found at `DIR/report.dsse.json` (a board of a
/// campaign, a shard of a merged report) by its envelope's digest.
pub const MEMBER_SCHEME: &str = "member:";

/// What a signed document is: a conformance report or a campaign summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    Report,
    Campaign,
}

impl DocumentKind {
    pub fn predicate_type(self) -> &'static str {
        match self {
            DocumentKind::Report => PREDICATE_TYPE,
            DocumentKind::Campaign => CAMPAIGN_PREDICATE_TYPE,
        }
    }

    /// The plain JSON copy written beside the envelope.
    pub fn json_file(self) -> &'static str {
        match self {
            DocumentKind::Report => "report.json",
            DocumentKind::Campaign => "campaign.json",
        }
    }

    pub fn envelope_file(self) -> &'static str {
        match self {
            DocumentKind::Report => "report.dsse.json",
            DocumentKind::Campaign => "campaign.dsse.json",
        }
    }

    fn from_predicate_type(t: &str) -> Option<Self> {
        [DocumentKind::Report, DocumentKind::Campaign]
            .into_iter()
            .find(|k| k.predicate_type() == t)
    }
}

/// A member directory is a plain relative path of at most three parts, each of letters, digits,
/// `.`, `_`, `-` and not starting with `.`: it can never resolve outside the signed directory.
pub fn check_member_path(rel: &str) -> Result<(), String> {
    let parts: Vec<&str> = rel.split('/').collect();
    if parts.len() > 3 {
        return Err("more than three path components".into());
    }
    for part in parts {
        let ok = !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok {
            return Err(format!("component {part:?} is not a plain name"));
        }
    }
    Ok(())
}
/// Evidence subjects are named by their path relative to the envelope, under this directory.
pub const EVIDENCE_DIR: &str = "evidence";

/// One in-toto subject. Names with a URI-style scheme (`dut:VRB-1/VRB-0001`) are opaque identities;
/// any other name is a file path relative to the envelope and must lie under `evidence/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub name: String,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

impl Subject {
    pub fn new(name: impl Into<String>, sha256: impl Into<String>) -> Self {
        Subject {
            name: name.into(),
            sha256: sha256.into(),
        }
    }

    /// True when the name is an opaque identity (`scheme:rest`) rather than a file path.
    pub fn is_opaque(&self) -> bool {
        has_scheme(&self.name)
    }
}

/// RFC 3986 scheme: a letter, then letters, digits, `+`, `-`, `.`, then `:`.
pub fn has_scheme(name: &str) -> bool {
    let Some((scheme, _)) = name.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Checks that a file subject name is a plain relative path under `evidence/`: no absolute path,
/// no empty, `.` or `..` component, no NUL, so it can never resolve outside the report directory.
pub fn check_evidence_path(name: &str) -> Result<(), String> {
    if name.starts_with('/') {
        return Err("absolute path".into());
    }
    if name.contains('\0') {
        return Err("contains NUL".into());
    }
    let mut parts = name.split('/');
    if parts.next() != Some(EVIDENCE_DIR) {
        return Err(format!("not under {EVIDENCE_DIR}/"));
    }
    let mut count = 0;
    for part in parts {
        match part {
            ".." => return Err("'..' component".into()),
            "." | "" => return Err("empty or '.' component".into()),
            _ => count += 1,
        }
    }
    if count == 0 {
        return Err(format!("names the {EVIDENCE_DIR}/ directory itself"));
    }
    Ok(())
}

/// Builds a conformance report's Statement; subjects keep the given order.
pub fn statement(subjects: Vec<Subject>, predicate: Value) -> Value {
    statement_of(DocumentKind::Report, subjects, predicate)
}

/// Builds the Statement of a document of `kind`; subjects keep the given order.
pub fn statement_of(kind: DocumentKind, subjects: Vec<Subject>, predicate: Value) -> Value {
    let subjects: Vec<Value> = subjects
        .into_iter()
        .map(|s| json!({"name": s.name, "digest": {"sha256": s.sha256}}))
        .collect();
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": kind.predicate_type(),
        "predicate": predicate,
    })
}

/// A Statement that passed [`parse_statement`].
#[derive(Debug, Clone)]
pub(crate) struct ParsedStatement {
    pub kind: DocumentKind,
    pub subjects: Vec<Subject>,
    pub predicate: Value,
}

/// Validates a hilt Statement v1; the error names the offending field.
pub(crate) fn parse_statement(value: &Value) -> Result<ParsedStatement, String> {
    let obj = value.as_object().ok_or("not a JSON object")?;
    expect_str(obj, "_type", STATEMENT_TYPE)?;
    let kind = match obj.get("predicateType") {
        Some(Value::String(t)) => DocumentKind::from_predicate_type(t).ok_or_else(|| {
            format!("\"predicateType\" is {t:?}, expected {PREDICATE_TYPE:?} or {CAMPAIGN_PREDICATE_TYPE:?}")
        })?,
        Some(other) => return Err(format!("\"predicateType\" is {other}, not a string")),
        None => return Err("no \"predicateType\"".into()),
    };
    let predicate = obj.get("predicate").ok_or("no \"predicate\"")?;
    if !predicate.is_object() {
        return Err("\"predicate\" is not an object".into());
    }
    let list = obj
        .get("subject")
        .and_then(Value::as_array)
        .ok_or("\"subject\" missing or not an array")?;
    if list.is_empty() {
        return Err("\"subject\" is empty".into());
    }
    let mut subjects = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("subject[{i}].name missing, empty or not a string"))?;
        let sha256 = item
            .get("digest")
            .and_then(|d| d.get("sha256"))
            .and_then(Value::as_str)
            .filter(|d| is_sha256_hex(d))
            .ok_or_else(|| {
                format!("subject[{i}].digest.sha256 missing or not 64 lowercase hex digits")
            })?;
        subjects.push(Subject::new(name, sha256));
    }
    Ok(ParsedStatement {
        kind,
        subjects,
        predicate: predicate.clone(),
    })
}

fn expect_str(obj: &Map<String, Value>, field: &str, want: &str) -> Result<(), String> {
    match obj.get(field) {
        Some(Value::String(s)) if s == want => Ok(()),
        Some(other) => Err(format!("\"{field}\" is {other}, expected \"{want}\"")),
        None => Err(format!("no \"{field}\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn schemes_and_paths() {
        assert!(has_scheme("dut:VRB-1/VRB-0001"));
        assert!(has_scheme("urn:x"));
        assert!(!has_scheme("evidence/a:b.log"));
        assert!(!has_scheme(":x"));
        assert!(!has_scheme("1x:y"));
        assert!(check_evidence_path("evidence/a/console.log").is_ok());
        for bad in [
            "/etc/passwd",
            "evidence/../report.json",
            "evidence//a",
            "evidence/./a",
            "evidence",
            "evidence/",
            "other/a",
            "../evidence/a",
            "evidence/a\0b",
        ] {
            assert!(check_evidence_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn round_trips_through_parse() {
        let st = statement(
            vec![Subject::new("dut:X/1", D), Subject::new("evidence/a", D)],
            json!({"verdict": "pass"}),
        );
        let parsed = parse_statement(&st).unwrap();
        assert_eq!(parsed.subjects.len(), 2);
        assert_eq!(parsed.subjects[0].name, "dut:X/1");
        assert!(parsed.subjects[0].is_opaque());
        assert_eq!(parsed.predicate, json!({"verdict": "pass"}));
    }

    #[test]
    fn rejects_wrong_shapes_naming_the_field() {
        let good = statement(vec![Subject::new("dut:X", D)], json!({}));
        let cases: Vec<(&str, Value)> = vec![
            ("_type", json!("https://in-toto.io/Statement/v0.1")),
            ("predicateType", json!(7)),
            ("subject", json!([])),
            (
                "subject",
                json!([{"name": "x", "digest": {"sha256": D.to_uppercase()}}]),
            ),
            ("subject", json!([{"name": 3, "digest": {"sha256": D}}])),
            ("predicate", json!([1, 2])),
        ];
        for (field, value) in cases {
            let mut st = good.clone();
            st[field] = value;
            let err = parse_statement(&st).unwrap_err();
            assert!(err.contains(field), "{field}: {err}");
        }
        assert!(parse_statement(&json!("text")).is_err());
    }
}
