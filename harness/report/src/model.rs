//! The report data model: one document that the JSON file, the signed envelope and (later) the HTML and
//! JUnit renderings are all made from. Secrets never enter it: attempts record masked arguments.

use hilt_model::Verdict;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA: &str = "https://hilt.dev/schemas/report/v1";

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    #[serde(rename = "$schema")]
    #[schemars(extend("const" = SCHEMA))]
    pub schema: String,
    pub suite: Suite,
    pub run: Run,
    pub board: Board,
    #[schemars(
        description = "The ICS as declared in the board profile: `features` and `conditions` (EN 303 645 \
                       Table B.1, true/false) and `provisions` (id → status, support Y/N/N/A, detail)."
    )]
    pub ics: serde_json::Value,
    #[schemars(
        description = "The IXIT (TS 103 701 implementation extra information) from the profile: sheet → \
                       entry → field → value."
    )]
    pub ixit: serde_json::Value,
    pub scenarios: Vec<FileDigest>,
    pub cases: Vec<CaseResult>,
    pub provisions: Provisions,
    pub summary: Summary,
    /// For a report merged from CI shards (`hilt report merge`): each shard's signed report, bound
    /// by its envelope's digest, and the cases it ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardRef>,
}

/// One shard of a merged report.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardRef {
    /// `K/N`.
    pub shard: String,
    /// Where the shard's signed report is kept, relative to the merged report.
    pub dir: String,
    pub run_id: String,
    pub host: String,
    pub envelope_sha256: String,
    pub cases: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub name: String,
    pub version: String,
    /// Commit of the suite's sources when built from git, else null.
    pub git_commit: Option<String>,
    pub catalogue: hilt_model::catalogue::Sources,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Run {
    pub id: String,
    pub started: String,
    pub finished: String,
    pub duration_ms: u64,
    pub host: String,
    /// The command line arguments that selected cases (filters), for repeatability.
    pub selection: Vec<String>,
    /// True when signed with a per-user development key, not a lab's key: not for certification.
    pub development_key: bool,
    /// True when a signal stopped the run: the report is partial (the running case ended
    /// INCONCLUSIVE, later cases did not run).
    #[serde(default)]
    pub interrupted: bool,
    /// `K/N` when this run was shard K of N of a CI matrix (`hilt run --shard K/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    pub profile: FileDigest,
    pub identity: hilt_model::profile::Identity,
    pub units: Vec<String>,
    /// For a virtual board: the defects it was launched with (empty = reference behaviour).
    pub defects: Option<Vec<String>>,
    /// The labgrid place the board was reached through, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labgrid_place: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseResult {
    pub id: String,
    pub title: String,
    pub family: String,
    pub kind: hilt_model::scenario::CaseKind,
    pub verdict: Verdict,
    /// Why, in one sentence: the first failing expectation, the ICS rationale, or the error.
    pub reason: String,
    /// What else happened that did not change the verdict, e.g. bench trouble after a FAIL was seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub started: String,
    pub duration_ms: u64,
    /// The case's time budget, from its scenario and the IXIT; past it the case ends INCONCLUSIVE.
    #[serde(default)]
    pub budget_ms: Option<u64>,
    pub provisions: hilt_model::scenario::Provisions,
    pub steps: Vec<StepRecord>,
    pub checks: Vec<CheckRecord>,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    pub id: String,
    /// Start and end, in milliseconds from the case start (no end: the case stopped inside it).
    #[serde(default)]
    pub started_ms: f64,
    #[serde(default)]
    pub ended_ms: Option<f64>,
    /// Start and end in the mock cloud's flow-log time (microseconds), to line steps up with flows.
    #[serde(default)]
    pub flow_from_us: Option<u64>,
    #[serde(default)]
    pub flow_to_us: Option<u64>,
    pub attempts: Vec<Attempt>,
}

/// One execution of an action. Arguments that carried a secret are shown as `‹secret›`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attempt {
    pub iteration: usize,
    pub args: BTreeMap<String, String>,
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub captures: BTreeMap<String, String>,
    /// Offset from the case start.
    pub at_ms: f64,
    /// Time from the first byte sent to the deciding answer.
    pub elapsed_ms: f64,
    /// Attempts repeated because the outcome was one to retry on (e.g. `locked`).
    pub retries: u32,
    pub conforms: Option<bool>,
    /// Why the action could not be completed (bench or link trouble), when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many times the binding sent something to the device (the user actions it took), the last
    /// try's when retried: what withdrawal parity compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sends: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRecord {
    pub kind: String,
    pub verdict: Verdict,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Relative to the report directory, e.g. `evidence/bf.console.lockout/console.log`.
    pub path: String,
    pub sha256: String,
    pub media_type: String,
    pub description: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
// Schema name distinct from the provisions a case cites (hilt_model::scenario::Provisions).
#[schemars(rename = "ProvisionRollup")]
#[serde(deny_unknown_fields)]
pub struct Provisions {
    pub en303645: Vec<EnRollup>,
    pub psti: Vec<PstiRollup>,
    pub ico: Vec<IcoRollup>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnRollup {
    pub id: String,
    pub summary: String,
    /// Table B.1 status, e.g. `M C(14) F(e)`.
    pub status: String,
    pub mandatory: bool,
    pub v2: Option<String>,
    pub ics_support: Option<String>,
    pub ics_detail: Option<String>,
    pub verdict: Verdict,
    pub reason: String,
    pub cases: Vec<String>,
    /// False when no selected case evidences it: listed for completeness, not gated on.
    pub in_scope: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PstiRollup {
    pub id: String,
    pub paragraph: u32,
    pub summary: String,
    pub verdict: Verdict,
    pub cases: Vec<String>,
    /// Schedule 2 deemed-compliance route: the EN 303 645 V2.1.1 provisions and their verdict here.
    pub deemed_by_en_v2: Vec<String>,
    pub deemed_verdict: Option<Verdict>,
    pub in_scope: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IcoRollup {
    pub id: String,
    pub level: String,
    pub summary: String,
    pub verdict: Verdict,
    pub cases: Vec<String>,
    pub in_scope: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub cases: BTreeMap<Verdict, usize>,
    /// How many cases ran, of how many scenarios the suite holds (the rest were filtered out or, in
    /// an interrupted run, never started).
    #[serde(default)]
    pub cases_run: usize,
    #[serde(default)]
    pub cases_in_suite: usize,
    pub gate: Gate,
    /// Mandatory in-scope EN provisions that failed or could not be decided.
    #[schemars(description = "Mandatory in-scope EN provisions whose verdict is FAIL.")]
    pub mandatory_failed: Vec<String>,
    #[schemars(
        description = "Mandatory in-scope EN provisions whose verdict is INCONCLUSIVE, NOT_TESTED or ERROR."
    )]
    pub mandatory_undecided: Vec<String>,
}

/// The CI gate, with the process exit code it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Gate {
    #[schemars(
        description = "No mandatory in-scope EN provision failed or is undecided, and no case is undecided: exit code 0."
    )]
    Conformant,
    #[schemars(description = "A mandatory in-scope EN provision failed: exit code 1.")]
    NonConformant,
    #[schemars(
        description = "None failed, but a mandatory in-scope provision or any case is INCONCLUSIVE, NOT_TESTED or ERROR: exit code 3."
    )]
    Undecided,
}

impl Gate {
    pub fn exit_code(self) -> u8 {
        match self {
            Gate::Conformant => 0,
            Gate::NonConformant => 1,
            Gate::Undecided => 3,
        }
    }
}
