//! Scenarios (`test-cases/<family>/<name>.toml`): what is verified, which provisions it evidences, and
//! the abstract steps and checks that decide the verdict. A certifier should be able to read one.

use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::catalogue::Catalogue;
use crate::error::{LoadError, Source, read};
use crate::flow_vocab::FlowKind;
use crate::fsread::ReadError;
use crate::template::Template;
use crate::var::Var;

/// A template in a scenario: its variables follow the scenario grammar ([`Var`]), parsed at load.
pub type VarTemplate = Template<Var>;
use crate::vocabulary;

pub const SCHEMA: u32 = 1;

/// TS 103 701 test-case kind.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CaseKind {
    Conceptual,
    Functional,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub path: PathBuf,
    pub text: String,
    /// The directory the scenario lives in under test-cases/.
    pub family: String,
    pub id: String,
    pub title: String,
    pub purpose: String,
    pub kind: CaseKind,
    pub pass_criteria: String,
    pub provisions: Provisions,
    pub applicability: Applicability,
    /// Case variables (`[vars]`), generated once per case and used as `{var.NAME}`.
    pub vars: BTreeMap<String, CaseVar>,
    /// Test accounts (`[accounts]`), made in the mock cloud when the case starts and used as
    /// `{account.NAME.id}` and `{account.NAME.token}`.
    pub accounts: BTreeMap<String, AccountSpec>,
    pub steps: Vec<Step>,
    /// The `[[check]]`s as written; the harness's registry types them.
    pub checks: Vec<CheckDecl>,
}

/// A case variable: `NAME = { random = N, secret = true }` makes N random alphanumerics once per case
/// (e.g. a canary value the device must later erase); a secret one is masked like a password.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseVar {
    pub random: usize,
    #[serde(default)]
    pub secret: bool,
}

/// A test account: `owner = { name = "Alice Example" }` (the name its user gives the companion app).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    pub name: String,
}

impl Scenario {
    /// Whether a step acts on the mock cloud (a fault or a flow wait).
    pub fn steps_need_cloud(&self) -> bool {
        !self.accounts.is_empty()
            || self.steps.iter().any(|s| {
                matches!(
                    s.what,
                    StepWhat::CloudFault { .. }
                        | StepWhat::CloudFaultUntil { .. }
                        | StepWhat::WaitFlow(_)
                        | StepWhat::OfferUpdate(_)
                        | StepWhat::AppConsent(_)
                )
            })
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Whether a template evaluated after the steps (in a check) may use these variables: no fixture
    /// row, declared case variables, captures of the scenario's action steps.
    pub fn check_vars(&self, t: &VarTemplate) -> Result<(), String> {
        let known = Known {
            vars: &self.vars,
            accounts: &self.accounts,
            earlier: &self.steps,
        };
        match t.vars().find_map(|v| known.refuse(v, false)) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provisions {
    /// EN 303 645 V3.1.3 provision ids (may be empty for a scenario that evidences ICO items only).
    #[serde(default)]
    pub en303645: Vec<String>,
    /// EN 303 645 V2.1.1 ids, where PSTI Schedule 2 deems compliance through them.
    #[serde(default)]
    pub en303645_v2: Vec<String>,
    #[serde(default)]
    pub psti: Vec<String>,
    #[serde(default)]
    pub ico: Vec<String>,
    /// ETSI TS 103 701 test-case ids this scenario carries out (e.g. `5.1-1-1`).
    #[serde(default)]
    pub ts103701: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Applicability {
    /// ICS feature letters that must be present.
    #[serde(default)]
    pub features: Vec<String>,
    /// ICS condition numbers that must hold.
    #[serde(default)]
    pub conditions: Vec<u32>,
}

/// An integer given literally, by reference (`"{ixit:1-AuthMech/console/Brute Force Prevention/lockout_ms}"`),
/// or as a reference times a whole factor (`"{ixit:23-ResMech/cloud-link/Resilience Measures/backoff_max_ms} * 3"`),
/// so windows and waits can be sized from what the device declares, with headroom.
#[derive(Debug, Clone)]
pub enum Number {
    Literal(u64),
    Ref(VarTemplate),
    Scaled(VarTemplate, u64),
}

impl Number {
    /// The template it refers to, if any.
    pub fn template(&self) -> Option<&VarTemplate> {
        match self {
            Number::Literal(_) => None,
            Number::Ref(t) | Number::Scaled(t, _) => Some(t),
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Written by hand rather than `untagged`, so a bad variable keeps its own message.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Number::Literal(n)),
            Raw::Text(t) => match t.rsplit_once('*') {
                Some((base, factor)) => match factor.trim().parse::<u64>() {
                    Ok(factor) => Template::parse(base.trim()).map(|t| Number::Scaled(t, factor)),
                    Err(_) => Err(format!(
                        "{t:?}: after `*` give a whole factor, e.g. \"{{ixit:…}} * 3\""
                    )),
                },
                None => Template::parse(&t).map(Number::Ref),
            }
            .map_err(serde::de::Error::custom),
        }
    }
}

/// Where a step's rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// A CSV fixture (`fixture:PATH`, relative to fixtures/), read once when the scenario is loaded.
    Fixture {
        path: PathBuf,
        rows: std::sync::Arc<Vec<Row>>,
    },
    /// Candidate passwords derived from the unit's serial number the way careless factories do
    /// (`derived:unit.serial`): columns `derivation` and `password`.
    DerivedFromSerial,
    /// Every unit of the board profile, in order (`for_each = "units"`): columns `unit` (1-based) and
    /// `serial`. Only actions that read memory run per unit.
    Units,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub what: StepWhat,
    /// Run once per row (`{row.COLUMN}` variables).
    pub for_each: Option<Rows>,
    pub repeat: Option<Number>,
    pub repeat_add: u64,
    /// Outcomes that count as conforming; any other outcome FAILs the case.
    pub expect: Vec<String>,
    pub retry: Option<Retry>,
    /// When an answer other than `expect` is the device's failure (see [`JudgedWithin`]).
    pub judged_within: Option<JudgedWithin>,
    /// Where the `[[step]]` is in the scenario file, for located errors found later.
    pub span: std::ops::Range<usize>,
}

impl Step {
    /// A load error located at this step.
    pub fn error(&self, scenario: &Scenario, message: impl Into<String>) -> LoadError {
        LoadError::invalid(&scenario.path, &scenario.text, self.span.clone(), message)
    }
}

#[derive(Debug, Clone)]
pub enum StepWhat {
    Action {
        name: String,
        with: BTreeMap<String, VarTemplate>,
    },
    /// Wait `ms`, or less once the device has made the flows `until` names: a shortcut through the
    /// bound only, since what the wait is for is judged by later steps.
    Sleep {
        ms: Number,
        until: Option<SleepUntil>,
    },
    /// Inject a fault into the mock cloud for `for_ms`, then clear it.
    CloudFault { fault: CloudFault, for_ms: Number },
    /// Put a fault in force on the mock cloud and go on: it stays until step `until` (a later step) has
    /// run, or the case ends; so a fault can surround what the device is asked to do.
    CloudFaultUntil { fault: CloudFault, until: String },
    /// Wait until the device makes a flow of this kind in the mock cloud's log.
    WaitFlow(WaitFlow),
    /// Give or withdraw consent in the companion app, as the test account's user would (real HTTPS
    /// with the account's token to the mock cloud's app API).
    AppConsent(AppConsent),
    /// Put an update on the mock cloud's update server (`offer_update = "tampered"`), replacing any
    /// earlier offer; what was offered is the step's captures ([`OFFER_CAPTURES`]).
    OfferUpdate(UpdateOffer),
}

/// `app_consent = { account = "owner", purpose = "analytics", granted = false }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConsent {
    /// A test account of `[accounts]`.
    pub account: String,
    pub purpose: String,
    pub granted: bool,
}

/// The name of an update variant (`genuine`, `tampered`, `foreign-signed`, `unsigned`, `downgrade`,
/// `insecure-channel`). The harness types it when the suite is loaded, as it does fault names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct UpdateOffer(pub String);

/// What an `offer_update` step captures, for later steps and checks (`{step.ID.version}`).
pub const OFFER_CAPTURES: &[&str] = &[
    "variant",
    "version",
    "security_version",
    "advisory",
    "manifest_sha256",
    "image_sha256",
    "url",
];

/// The name of a mock-cloud fault (`cloud = "outage"`). The harness's fault registry knows what each
/// name does and types it when the suite is loaded (a fault kind is one file there).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct CloudFault(pub String);

/// `wait_flow = { kind = "request", path = "/manifest", since = "restart", timeout_ms = … }`: wait
/// until the device makes a matching flow from the start of step `since` (this step when not given);
/// none within the bound leaves the case without that evidence (INCONCLUSIVE).
#[derive(Debug, Clone)]
pub struct WaitFlow {
    pub pattern: FlowPattern,
    pub since: Option<String>,
    pub timeout_ms: Number,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaitFlow {
    /// Flow kind: `connect`, `publish`, `request`, `tls-failed`, … (a misspelt kind is a load error).
    kind: FlowKind,
    path: Option<String>,
    since: Option<String>,
    timeout_ms: Number,
}

impl RawWaitFlow {
    fn compile(self, at: &str) -> Result<WaitFlow, String> {
        let pattern = RawFlowPattern {
            kind: self.kind,
            path: self.path,
        }
        .compile(at)?;
        Ok(WaitFlow {
            pattern,
            since: self.since,
            timeout_ms: self.timeout_ms,
        })
    }
}

/// `until_flows = { since = "restart", seen = [{ kind = "request", path = "/images/" }, …] }` on a
/// sleep: the wait ends once the device has made a flow matching each pattern, in this order, since the
/// start of step `since` (this step when not given). Ending a wait early earns no verdict: the steps
/// after it read what the device did.
#[derive(Debug, Clone)]
pub struct SleepUntil {
    pub since: Option<String>,
    pub seen: Vec<FlowPattern>,
}

/// One flow of the device's: its kind and, for requests, a regular expression its path must match
/// (compiled when the scenario is loaded).
#[derive(Debug, Clone)]
pub struct FlowPattern {
    pub kind: FlowKind,
    pub path: Option<regex::Regex>,
}

impl FlowPattern {
    /// Whether a flow of this kind with this path (if any) matches.
    pub fn matches(&self, kind: FlowKind, path: Option<&str>) -> bool {
        kind == self.kind
            && self
                .path
                .as_ref()
                .is_none_or(|re| path.is_some_and(|p| re.is_match(p)))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSleepUntil {
    since: Option<String>,
    seen: Vec<RawFlowPattern>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlowPattern {
    kind: FlowKind,
    path: Option<String>,
}

impl RawFlowPattern {
    fn compile(self, at: &str) -> Result<FlowPattern, String> {
        let path = self
            .path
            .map(|re| {
                regex::RegexBuilder::new(&re)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("{at}: flow path pattern {re:?}: {e}"))
            })
            .transpose()?;
        Ok(FlowPattern {
            kind: self.kind,
            path,
        })
    }
}

impl RawSleepUntil {
    fn compile(self, at: &str) -> Result<SleepUntil, String> {
        if self.seen.is_empty() || self.seen.len() > 16 {
            return Err(format!(
                "{at}: until_flows.seen needs 1 to 16 flow patterns"
            ));
        }
        let seen = self
            .seen
            .into_iter()
            .map(|p| p.compile(at))
            .collect::<Result<_, String>>()?;
        Ok(SleepUntil {
            since: self.since,
            seen,
        })
    }
}

/// `judged_within = { step = "guesses", attempt = N, ms = M }`: an answer other than `expect` is the
/// device's failure only if the attempt began within `ms` of the start of attempt `attempt` (1-based)
/// of the earlier step `step`, the window the device declares (e.g. a lockout from the guess that
/// started it). An attempt the harness could only make later is no evidence either way: INCONCLUSIVE.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgedWithin {
    pub step: String,
    pub attempt: Number,
    pub ms: Number,
}

/// Repeat an attempt whose outcome means "not evaluated yet" (e.g. the device is locked out).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    pub on: Vec<String>,
    pub wait_ms: Number,
    #[serde(default = "default_retries")]
    pub max: u32,
}

fn default_retries() -> u32 {
    3
}

/// A `[[check]]` as written: its `kind` and the rest of its table. The harness's check registry turns
/// it into a typed check when the suite is loaded (each kind owns its parameters and their validation).
#[derive(Debug, Clone)]
pub struct CheckDecl {
    pub kind: String,
    /// The table without `kind`.
    pub params: toml::Table,
    /// Where the `[[check]]` is in the scenario file, for located errors.
    pub span: std::ops::Range<usize>,
}

impl CheckDecl {
    /// A load error located at this check.
    pub fn error(&self, scenario: &Scenario, message: impl Into<String>) -> LoadError {
        LoadError::invalid(&scenario.path, &scenario.text, self.span.clone(), message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    schema: Spanned<u32>,
    id: Spanned<String>,
    title: String,
    purpose: String,
    kind: CaseKind,
    pass_criteria: String,
    provisions: Spanned<Provisions>,
    #[serde(default)]
    applicability: Applicability,
    #[serde(default)]
    vars: BTreeMap<String, Spanned<CaseVar>>,
    #[serde(default)]
    accounts: BTreeMap<String, Spanned<AccountSpec>>,
    #[serde(rename = "step")]
    steps: Vec<Spanned<RawStep>>,
    #[serde(default, rename = "check")]
    checks: Vec<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: String,
    action: Option<String>,
    #[serde(default)]
    with: BTreeMap<String, VarTemplate>,
    sleep_ms: Option<Number>,
    cloud: Option<CloudFault>,
    for_ms: Option<Number>,
    until: Option<String>,
    wait_flow: Option<RawWaitFlow>,
    offer_update: Option<UpdateOffer>,
    app_consent: Option<AppConsent>,
    until_flows: Option<RawSleepUntil>,
    for_each: Option<String>,
    repeat: Option<Number>,
    #[serde(default)]
    repeat_add: u64,
    #[serde(default)]
    expect: Vec<String>,
    retry: Option<Retry>,
    judged_within: Option<JudgedWithin>,
}

impl Scenario {
    /// Load one scenario. `fixtures` is the directory `fixture:` paths are relative to.
    pub fn load(path: &Path, fixtures: &Path) -> Result<Scenario, LoadError> {
        let text = read(path)?;
        Self::parse(path, &text, fixtures)
    }

    pub fn parse(path: &Path, text: &str, fixtures: &Path) -> Result<Scenario, LoadError> {
        let raw: RawScenario =
            toml::from_str(text).map_err(|e| LoadError::from_toml(path, text, e))?;
        let src = Source { path, text };
        src.check_schema(&raw.schema, SCHEMA)?;
        let id = raw.id.get_ref();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(src.err(
                raw.id.span(),
                format!(
                    "id {id:?} must be non-empty and use only letters, digits, '-', '_' and '.'"
                ),
            ));
        }
        check_provisions(&src, &raw.provisions)?;
        let cat = Catalogue::embedded();
        for f in &raw.applicability.features {
            if cat.feature(f).is_none() {
                return Err(LoadError::File {
                    path: path.into(),
                    message: format!("applicability.features: unknown feature ({f})"),
                });
            }
        }
        let mut vars = BTreeMap::new();
        for (name, v) in raw.vars {
            if v.get_ref().random == 0 || v.get_ref().random > 256 || !is_ident(&name) {
                return Err(src.err(
                    v.span(),
                    format!("vars.{name}: a case variable needs a name of letters, digits, '-' and '_' and `random` from 1 to 256"),
                ));
            }
            vars.insert(name, v.into_inner());
        }
        let mut accounts = BTreeMap::new();
        for (name, a) in raw.accounts {
            let ok_name = !a.get_ref().name.trim().is_empty() && a.get_ref().name.len() <= 256;
            if !is_ident(&name) || !ok_name {
                return Err(src.err(
                    a.span(),
                    format!("accounts.{name}: an account needs a key of letters, digits, '-' and '_' and a `name` of 1 to 256 bytes"),
                ));
            }
            accounts.insert(name, a.into_inner());
        }
        let mut steps: Vec<Step> = Vec::new();
        let mut ids = BTreeSet::new();
        for raw_step in raw.steps {
            let span = raw_step.span();
            let known = Known {
                vars: &vars,
                accounts: &accounts,
                earlier: &steps,
            };
            let step = raw_step
                .into_inner()
                .validate(&src, span.clone(), fixtures, &known)?;
            if !ids.insert(step.id.clone()) {
                return Err(src.err(span, format!("step id {:?} is used twice", step.id)));
            }
            steps.push(step);
        }
        check_until(&src, &steps)?;
        if steps.is_empty() {
            return Err(LoadError::File {
                path: path.into(),
                message: "a scenario needs at least one [[step]]".into(),
            });
        }
        let mut checks = Vec::new();
        for c in raw.checks {
            let span = c.span();
            let mut params = c.into_inner();
            let kind = match params.remove("kind") {
                Some(toml::Value::String(k)) => k,
                _ => return Err(src.err(span, "a [[check]] needs `kind = \"...\"`")),
            };
            checks.push(CheckDecl { kind, params, span });
        }
        let judged = steps.iter().any(|s| !s.expect.is_empty()) || !checks.is_empty();
        if !judged {
            return Err(LoadError::File {
                path: path.into(),
                message:
                    "the scenario has no pass criterion: give a step an `expect` or add a [[check]]"
                        .into(),
            });
        }
        let family = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Scenario {
            path: path.to_path_buf(),
            text: text.to_string(),
            family,
            id: raw.id.into_inner(),
            title: raw.title,
            purpose: raw.purpose,
            kind: raw.kind,
            pass_criteria: raw.pass_criteria,
            provisions: raw.provisions.into_inner(),
            applicability: raw.applicability,
            vars,
            accounts,
            steps,
            checks,
        })
    }
}

/// A fault held `until` a step must name a step after it: otherwise it would never be cleared by one.
/// A sleep's `until_flows.since` must name it or a step before it: flows are counted from its start.
fn check_until(src: &Source, steps: &[Step]) -> Result<(), LoadError> {
    for (i, step) in steps.iter().enumerate() {
        let since = match &step.what {
            StepWhat::Sleep {
                until: Some(SleepUntil { since, .. }),
                ..
            } => since.as_ref(),
            StepWhat::WaitFlow(w) => w.since.as_ref(),
            _ => None,
        };
        if let Some(j) = &step.judged_within
            && !steps[..i].iter().any(|s| s.id == j.step)
        {
            return Err(src.err(
                step.span.clone(),
                format!(
                    "step {:?}: `judged_within.step` must name an earlier step (got {:?})",
                    step.id, j.step
                ),
            ));
        }
        if let Some(since) = since
            && !steps[..=i].iter().any(|s| &s.id == since)
        {
            return Err(src.err(
                step.span.clone(),
                format!(
                    "step {:?}: `since` must name this step or an earlier one (got {since:?})",
                    step.id
                ),
            ));
        }
        if let StepWhat::CloudFaultUntil { until, .. } = &step.what
            && !steps[i + 1..].iter().any(|s| &s.id == until)
        {
            return Err(src.err(
                step.span.clone(),
                format!(
                    "step {:?}: `until` must name a later step of this scenario (got {until:?})",
                    step.id
                ),
            ));
        }
    }
    Ok(())
}

fn check_provisions(src: &Source, p: &Spanned<Provisions>) -> Result<(), LoadError> {
    let cat = Catalogue::embedded();
    let span = p.span();
    let p = p.get_ref();
    if p.en303645.is_empty() && p.ico.is_empty() {
        return Err(src.err(
            span,
            "provisions must name at least one EN 303 645 V3.1.3 provision (en303645) or ICO item (ico)",
        ));
    }
    for id in &p.ts103701 {
        if !is_ts_case_id(id) {
            return Err(src.err(
                span.clone(),
                format!("provisions.ts103701: {id:?} is not a TS 103 701 test-case id such as \"5.1-1-1\""),
            ));
        }
    }
    for id in &p.en303645 {
        if cat.en(id).is_none() {
            return Err(src.err(
                span.clone(),
                format!("provisions.en303645: unknown provision {id:?}"),
            ));
        }
    }
    for id in &p.en303645_v2 {
        if cat.en_by_v2(id).next().is_none() {
            return Err(src.err(span.clone(), format!("provisions.en303645_v2: {id:?} is no EN 303 645 V2.1.1 provision in the catalogue")));
        }
    }
    for id in &p.psti {
        if cat.psti(id).is_none() {
            return Err(src.err(
                span.clone(),
                format!("provisions.psti: unknown PSTI requirement {id:?}"),
            ));
        }
    }
    for id in &p.ico {
        if cat.ico(id).is_none() {
            return Err(src.err(
                span.clone(),
                format!("provisions.ico: unknown ICO item {id:?}"),
            ));
        }
    }
    Ok(())
}

/// What a step's variables may refer to: the case variables and the steps before it.
struct Known<'a> {
    vars: &'a BTreeMap<String, CaseVar>,
    accounts: &'a BTreeMap<String, AccountSpec>,
    earlier: &'a [Step],
}

impl Known<'_> {
    /// Why `v` cannot be used in this step, if it cannot.
    fn refuse(&self, v: &Var, has_rows: bool) -> Option<String> {
        match v {
            Var::Row(_) if !has_rows => Some(format!("{v} is only known in a for_each step")),
            Var::Case(name) if !self.vars.contains_key(name) => Some(format!(
                "{v}: no case variable {name:?} is declared under [vars]"
            )),
            Var::Account { name, .. } if !self.accounts.contains_key(name) => Some(format!(
                "{v}: no test account {name:?} is declared under [accounts]"
            )),
            Var::Capture { step, name } => {
                // (what the step is, what it captures)
                let captures =
                    self.earlier
                        .iter()
                        .find(|s| &s.id == step)
                        .and_then(|s| match &s.what {
                            StepWhat::Action { name, .. } => vocabulary::action(name)
                                .map(|a| (format!("action {}", a.name), a.captures)),
                            StepWhat::OfferUpdate(_) => {
                                Some(("an offer_update step".to_string(), OFFER_CAPTURES))
                            }
                            _ => None,
                        });
                match captures {
                    None => Some(format!(
                        "{v}: {step:?} is no earlier action or offer_update step"
                    )),
                    Some((what, caps)) if !caps.contains(&name.as_str()) => Some(format!(
                        "{v}: {what} captures no {name:?} (it captures: {})",
                        caps.join(", ")
                    )),
                    Some(_) => None,
                }
            }
            _ => None,
        }
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
}

/// `5.1-1-1`: a TS 103 701 test case (clause, provision, case number).
fn is_ts_case_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts.iter().all(|p| !p.is_empty())
        && parts[0].chars().all(|c| c.is_ascii_digit() || c == '.')
        && parts[1..]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_digit()))
}

impl RawStep {
    fn validate(
        self,
        src: &Source,
        span: std::ops::Range<usize>,
        fixtures: &Path,
        known: &Known,
    ) -> Result<Step, LoadError> {
        let at = format!("step {:?}", self.id);
        let given = [
            self.action.is_some(),
            self.sleep_ms.is_some(),
            self.cloud.is_some(),
            self.wait_flow.is_some(),
            self.offer_update.is_some(),
            self.app_consent.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(src.err(
                span,
                format!("{at}: give exactly one of `action`, `sleep_ms`, `cloud`, `wait_flow`, `offer_update` or `app_consent`"),
            ));
        }
        if let Some(a) = &self.app_consent
            && !known.accounts.contains_key(&a.account)
        {
            return Err(src.err(
                span,
                format!(
                    "{at}: app_consent names account {:?}, which [accounts] does not declare",
                    a.account
                ),
            ));
        }
        let lengths = usize::from(self.for_ms.is_some()) + usize::from(self.until.is_some());
        if self.cloud.is_some() != (lengths == 1) || lengths > 1 {
            return Err(src.err(
                span,
                format!("{at}: a `cloud` fault step needs either `for_ms` or `until` (a later step's id), and only it takes one"),
            ));
        }
        if self.until_flows.is_some() && self.sleep_ms.is_none() {
            return Err(src.err(
                span,
                format!("{at}: `until_flows` ends a `sleep_ms` early, and only one"),
            ));
        }
        let what = match (self.action, self.sleep_ms) {
            (None, None) if self.app_consent.is_some() => {
                StepWhat::AppConsent(self.app_consent.expect("checked above"))
            }
            (None, None) => match (self.cloud, self.for_ms, self.wait_flow, self.offer_update) {
                (Some(fault), None, None, None) => StepWhat::CloudFaultUntil {
                    fault,
                    until: self.until.unwrap_or_default(),
                },
                (Some(fault), Some(for_ms), None, None) => StepWhat::CloudFault { fault, for_ms },
                (None, None, Some(w), None) => {
                    StepWhat::WaitFlow(w.compile(&at).map_err(|e| src.err(span.clone(), e))?)
                }
                (None, None, None, Some(offer)) => StepWhat::OfferUpdate(offer),
                _ => unreachable!("checked above"),
            },
            (Some(name), None) => {
                let Some(spec) = vocabulary::action(&name) else {
                    return Err(src.err(
                        span,
                        format!(
                            "{at}: unknown action {name:?}; the vocabulary has {}",
                            vocabulary::action_names()
                        ),
                    ));
                };
                let given: BTreeSet<&str> = self.with.keys().map(String::as_str).collect();
                let wanted: BTreeSet<&str> = spec.args.iter().copied().collect();
                if given != wanted {
                    return Err(src.err(
                        span,
                        format!(
                            "{at}: action {name} takes exactly these `with` arguments: [{}]",
                            spec.args.join(", ")
                        ),
                    ));
                }
                for o in self
                    .expect
                    .iter()
                    .chain(self.retry.iter().flat_map(|r| r.on.iter()))
                {
                    if !spec.outcomes.contains(&o.as_str()) {
                        return Err(src.err(
                            span,
                            format!(
                                "{at}: {o:?} is not an outcome of action {name} (outcomes: {})",
                                spec.outcomes.join(", ")
                            ),
                        ));
                    }
                }
                StepWhat::Action {
                    name,
                    with: self.with,
                }
            }
            (None, Some(ms)) => StepWhat::Sleep {
                ms,
                until: self
                    .until_flows
                    .map(|u| u.compile(&at))
                    .transpose()
                    .map_err(|e| src.err(span.clone(), e))?,
            },
            _ => {
                return Err(src.err(
                    span,
                    format!("{at}: give exactly one of `action` or `sleep_ms`"),
                ));
            }
        };
        let for_each = match self.for_each {
            None => None,
            Some(f) if f == "derived:unit.serial" => Some(Rows::DerivedFromSerial),
            Some(f) if f == "units" => {
                let per_unit = match &what {
                    StepWhat::Action { name, .. } => vocabulary::action(name)
                        .is_some_and(|a| a.kind == vocabulary::ActionKind::ReadMemory),
                    _ => false,
                };
                if !per_unit {
                    return Err(src.err(
                        span,
                        format!("{at}: for_each = \"units\" runs only actions that read memory (read-storage, read-debug-port)"),
                    ));
                }
                Some(Rows::Units)
            }
            Some(f) => {
                let Some(rel) = f.strip_prefix("fixture:") else {
                    return Err(src.err(
                        span,
                        format!("{at}: for_each must be \"fixture:PATH\" (relative to fixtures/), \"derived:unit.serial\" or \"units\""),
                    ));
                };
                let p = fixtures.join(rel);
                if rel.contains("..") || !p.exists() {
                    return Err(src.err(span, format!("{at}: fixture {} not found", p.display())));
                }
                let rows = fixture_rows(src, span.clone(), &at, &p)?;
                Some(Rows::Fixture {
                    path: p,
                    rows: std::sync::Arc::new(rows),
                })
            }
        };
        let has_rows = for_each.is_some();
        let number_ref = |n: &'_ Number| n.template().cloned();
        let mut templates: Vec<VarTemplate> = match &what {
            StepWhat::Action { with, .. } => with.values().cloned().collect(),
            StepWhat::Sleep { ms: n, .. } | StepWhat::CloudFault { for_ms: n, .. } => {
                number_ref(n).into_iter().collect()
            }
            StepWhat::WaitFlow(w) => number_ref(&w.timeout_ms).into_iter().collect(),
            StepWhat::OfferUpdate(_)
            | StepWhat::CloudFaultUntil { .. }
            | StepWhat::AppConsent(_) => Vec::new(),
        };
        templates.extend(self.repeat.as_ref().and_then(number_ref));
        templates.extend(self.retry.as_ref().and_then(|r| number_ref(&r.wait_ms)));
        if let Some(j) = &self.judged_within {
            if self.expect.is_empty() {
                return Err(src.err(
                    span,
                    format!("{at}: `judged_within` qualifies `expect`, which this step lacks"),
                ));
            }
            templates.extend(number_ref(&j.attempt));
            templates.extend(number_ref(&j.ms));
        }
        for t in &templates {
            if let Some(why) = t.vars().find_map(|v| known.refuse(v, has_rows)) {
                return Err(src.err(span, format!("{at}: {why}")));
            }
        }
        Ok(Step {
            id: self.id,
            what,
            for_each,
            repeat: self.repeat,
            repeat_add: self.repeat_add,
            expect: self.expect,
            retry: self.retry,
            judged_within: self.judged_within,
            span,
        })
    }
}

/// One fixture row: column → value.
pub type Row = BTreeMap<String, String>;

/// Read a CSV fixture as rows of column → value. The file is read bounded (see [`crate::fsread`]);
/// a malformed record is an error at its line.
pub fn read_fixture(path: &Path) -> Result<Vec<Row>, LoadError> {
    let text = read(path)?;
    parse_fixture(path, &text)
}

fn parse_fixture(path: &Path, text: &str) -> Result<Vec<Row>, LoadError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| csv_error(path, text, e))?
        .clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, text, e))?;
        rows.push(
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect(),
        );
    }
    Ok(rows)
}

/// A CSV error, at the record it is about when the reader knows it.
fn csv_error(path: &Path, text: &str, e: csv::Error) -> LoadError {
    let message = e.to_string();
    match e.position() {
        Some(pos) => {
            let at = usize::try_from(pos.byte()).unwrap_or(usize::MAX);
            LoadError::invalid(path, text, at..at, message)
        }
        None => LoadError::File {
            path: path.to_path_buf(),
            message,
        },
    }
}

/// The rows of a step's `fixture:` at scenario load: readable, and at least one row, so that a
/// `for_each` over it cannot pass having tried nothing.
fn fixture_rows(
    src: &Source,
    span: std::ops::Range<usize>,
    at: &str,
    path: &Path,
) -> Result<Vec<Row>, LoadError> {
    let rows =
        read_fixture(path).map_err(|e| src.err(span.clone(), format!("{at}: fixture: {e}")))?;
    if rows.is_empty() {
        return Err(src.err(
            span,
            format!(
                "{at}: fixture {} has no rows (a header line and at least one row are needed)",
                path.display()
            ),
        ));
    }
    Ok(rows)
}

/// Load every scenario under `dir` (recursively), sorted by id; ids must be unique.
pub fn load_suite(dir: &Path, fixtures: &Path) -> Result<Vec<Scenario>, LoadError> {
    let mut files = Vec::new();
    collect_toml(dir, &mut files)?;
    files.sort();
    let mut out: Vec<Scenario> = Vec::new();
    for f in files {
        let s = Scenario::load(&f, fixtures)?;
        if let Some(other) = out.iter().find(|o| o.id == s.id) {
            return Err(LoadError::File {
                path: f,
                message: format!(
                    "scenario id {:?} is also used by {}",
                    s.id,
                    other.path.display()
                ),
            });
        }
        out.push(s);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let rd = std::fs::read_dir(dir).map_err(|e| ReadError::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| ReadError::io(dir, e))?;
        let p = entry.path();
        if p.is_dir() {
            collect_toml(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "toml") {
            out.push(p);
        }
    }
    Ok(())
}
