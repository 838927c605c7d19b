//! Executing one scenario against one bench: applicability from the ICS (fail closed), then the steps
//! through the board's bindings, then the checks, giving a verdict with its evidence.
//!
//! Integrity rules: a FAIL established with evidence stands whatever happens later in the case (later
//! trouble is noted beside it); every step and attempt made is kept in the result whatever the verdict;
//! a case ends INCONCLUSIVE, with its evidence so far, when it is interrupted or its time budget runs out.

mod applicability;
mod bench;
mod binding;
mod ble_step;
mod budget;
mod cloud;
mod derive;
mod memory_step;
mod power_step;
mod steps;
mod usb_step;
mod vars;

pub use bench::Bench;
pub use binding::{ActionError, Observation, run_binding};
pub use cloud::{Dut, FaultWindow};
pub use vars::{CaseVars, Scope};

use hilt_link::{Cancel, Console, Port};
use hilt_model::Verdict;
use hilt_report::model::{CaseResult, CheckRecord, StepRecord};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checks::{CloudEvidence, Evidence};
use crate::events::{EventSink, RunEvent};
use crate::suite::Case;

/// A file of evidence produced by a case, not yet written.
pub struct EvidenceFile {
    pub name: String,
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub description: String,
}

pub struct CaseRun {
    pub result: CaseResult,
    pub evidence: Vec<EvidenceFile>,
}

/// What the runner lends a case: the run's cancellation flag and where events go.
pub struct CaseControl<'a> {
    pub cancel: Cancel,
    pub events: &'a dyn EventSink,
}

/// Why a case stopped before its end, and with which verdict.
#[derive(Debug, Clone)]
pub(crate) struct Stop(pub Verdict, pub String);

impl Stop {
    pub(crate) fn not_tested(r: impl Into<String>) -> Self {
        Stop(Verdict::NotTested, r.into())
    }
    pub(crate) fn interrupted() -> Self {
        Stop(Verdict::Inconclusive, "interrupted".into())
    }
}

pub(crate) struct Ctx<'a> {
    pub bench: &'a dyn Bench,
    pub scenario: &'a Case,
    pub ctl: &'a CaseControl<'a>,
    pub consoles: BTreeMap<String, Console<Box<dyn Port>>>,
    pub t0: Instant,
    /// When the case's time budget runs out.
    pub deadline: Option<(Instant, Duration)>,
    pub steps: Vec<StepRecord>,
    /// Failures observed with evidence: they decide the verdict whatever happens later.
    pub failures: Vec<String>,
    pub inconclusive: Vec<String>,
    /// (secret, label): the units' passwords, the case's secret variables and the mock cloud's device
    /// passwords, masked wherever they show up.
    pub secrets: Vec<(String, String)>,
    /// Case variables and captures so far; shared with the scopes that resolve variables.
    pub vars: Arc<CaseVars>,
    /// First flow-log sequence number of this case, when the board has a mock cloud.
    pub cloud_from: Option<u64>,
    pub windows: Vec<cloud::FaultWindow>,
    /// A fault in force until a later step has run.
    pub held: Option<cloud::HeldFault>,
    /// Whether an update was offered (it is withdrawn when the case ends, so no later case meets it).
    pub offered: bool,
    /// (step id, signed manifest) of each update offered, kept as evidence.
    pub offers: Vec<(String, Vec<u8>)>,
    /// By step id, what each memory read got (kept for the checks; its evidence is digests).
    pub memory: BTreeMap<String, Vec<crate::memory::MemoryRead>>,
    /// (step id, unit, why) of each memory read the device refused.
    pub refusals: Vec<(String, usize, String)>,
    /// By step id, the device's USB descriptors as listed.
    pub usb: BTreeMap<String, crate::usb::UsbListing>,
    /// By step id, what an unpaired BLE survey learnt.
    pub ble: BTreeMap<String, crate::ble::BleSurvey>,
}

impl<'a> Ctx<'a> {
    pub fn scope(&self) -> Scope<'a> {
        Scope::new(self.bench, self.vars.clone())
    }

    fn event(&self, e: RunEvent) {
        self.ctl.events.event(&e);
    }

    /// Ends the case when it has been interrupted or its budget has run out.
    pub fn checkpoint(&self) -> Result<(), Stop> {
        if self.ctl.cancel.is_cancelled() {
            return Err(Stop::interrupted());
        }
        match self.deadline {
            Some((at, budget)) if Instant::now() >= at => Err(Stop(
                Verdict::Inconclusive,
                format!(
                    "the case's time budget of {} s ran out",
                    budget.as_secs_f64().round()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Wait `length` (a lockout, a window), ending early on interruption or when the budget runs out.
    pub fn wait(&self, step: &str, what: &str, length: Duration) -> Result<(), Stop> {
        self.event(RunEvent::Waiting {
            case: &self.scenario.id,
            step,
            what,
            length,
        });
        self.ctl.cancel.sleep(self.within_budget(length));
        self.checkpoint()
    }

    /// `length`, cut to what is left of the case's budget.
    pub fn within_budget(&self, length: Duration) -> Duration {
        match self.deadline {
            Some((at, _)) => length.min(at.saturating_duration_since(Instant::now())),
            None => length,
        }
    }

    /// Clear the held fault, if any, and keep its window.
    pub fn end_held_fault(&mut self) {
        if let (Some(held), Some(c)) = (self.held.take(), self.bench.cloud()) {
            let w = cloud::end_held(c, held);
            self.note_all(&format!("cloud fault {} cleared", w.fault));
            self.windows.push(w);
        }
    }

    /// Annotate every open transcript (so a reader sees what the harness did between exchanges).
    pub fn note_all(&mut self, text: &str) {
        for console in self.consoles.values_mut() {
            console.note(text);
        }
    }
}

pub fn run_case(bench: &dyn Bench, scenario: &Case, ctl: &CaseControl) -> CaseRun {
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // Generated before anything else, so its secrets are masked from the first byte.
    let (vars, vars_error) = match CaseVars::generate(&scenario.vars) {
        Ok(v) => (v, None),
        Err(e) => (CaseVars::default(), Some(Stop(Verdict::Error, e))),
    };
    let mut ctx = Ctx {
        bench,
        scenario,
        ctl,
        consoles: BTreeMap::new(),
        t0: Instant::now(),
        deadline: None,
        steps: Vec::new(),
        failures: Vec::new(),
        inconclusive: Vec::new(),
        secrets: case_secrets(bench, &vars),
        vars: Arc::new(vars),
        cloud_from: bench.cloud().map(|c| c.log.next_seq()),
        windows: Vec::new(),
        held: None,
        offered: false,
        offers: Vec::new(),
        memory: BTreeMap::new(),
        usb: BTreeMap::new(),
        ble: BTreeMap::new(),
        refusals: Vec::new(),
    };
    let mut checks = Vec::new();
    let mut budget_ms = None;
    let mut flows = None;
    // The secrets are masked in the bench's own records before the case touches it, so a case with no
    // action step (only cloud steps and checks) masks them too.
    for (secret, label) in &ctx.secrets {
        bench.mask(secret, label);
    }
    let ready = match vars_error {
        Some(stop) => Err(stop),
        None => applicability::check(bench, scenario, &ctx.scope())
            .and_then(|()| make_accounts(&mut ctx)),
    };
    let (verdict, reason, notes) = match ready {
        Err(Stop(v, r)) => (v, r, Vec::new()),
        Ok(()) => {
            let stop = steps::prepare(&mut ctx).and_then(|plan| {
                budget_ms = ctx.deadline.map(|(_, b)| b.as_millis() as u64);
                steps::run(&mut ctx, &plan)
            });
            // However the steps ended, no fault outlives them.
            ctx.end_held_fault();
            // One slice of the flow log: what the checks judge is what the evidence shows.
            flows = ctx
                .bench
                .cloud()
                .zip(ctx.cloud_from)
                .map(|(c, from)| cloud_flows(c, from));
            checks = run_checks(&ctx, scenario, flows.as_deref());
            if let Some(c) = ctx.bench.cloud().filter(|_| ctx.offered) {
                c.state.withdraw_update();
            }
            let stop = stop.err();
            let notes = discount_checks(stop.as_ref(), &mut checks);
            let (v, r, mut more) = decide(&ctx, stop, &checks);
            more.extend(notes);
            (v, r, more)
        }
    };
    // What the device said finds its way into reasons and details (a name it advertised, an error
    // it printed): a secret of the case in them is masked like everywhere else.
    let masker = secrets_masker(&ctx.secrets);
    let reason = masker.mask_str(&reason);
    let notes: Vec<String> = notes.iter().map(|n| masker.mask_str(n)).collect();
    for c in &mut checks {
        c.detail = masker.mask_str(&c.detail);
    }
    tracing::info!(case = %scenario.id, %verdict, %reason, "case finished");
    let mut evidence: Vec<EvidenceFile> = ctx
        .consoles
        .iter()
        .flat_map(|(link, c)| transcript_evidence(link, c))
        .collect();
    evidence.extend(ctx.offers.iter().map(|(step, manifest)| EvidenceFile {
        name: format!("offer-{step}.dsse.json"),
        bytes: manifest.clone(),
        media_type: "application/json".into(),
        description: format!("the signed update manifest (DSSE envelope) offered in step {step:?}"),
    }));
    evidence.extend(memory_step::evidence(&ctx));
    evidence.extend(usb_step::evidence(&ctx));
    evidence.extend(ble_step::evidence(&ctx));
    if let Some(c) = bench.cloud().filter(|_| !scenario.accounts.is_empty()) {
        evidence.push(account_records(c, &ctx.vars, &scenario.accounts));
    }
    if let (Some(c), Some(from)) = (bench.cloud(), ctx.cloud_from) {
        let flows = flows.unwrap_or_else(|| cloud_flows(c, from));
        evidence.extend(cloud_evidence(c, &flows));
    }
    // After the evidence is taken: a fleet's other units stop here.
    bench.end_case();
    CaseRun {
        result: CaseResult {
            id: scenario.id.clone(),
            title: scenario.title.clone(),
            family: scenario.family.clone(),
            kind: scenario.kind,
            verdict,
            reason,
            notes,
            started,
            duration_ms: ctx.t0.elapsed().as_millis() as u64,
            budget_ms,
            provisions: scenario.provisions.clone(),
            steps: masked_captures(ctx.steps, &ctx.secrets),
            checks,
            evidence: Vec::new(),
        },
        evidence,
    }
}

/// The step records as the report shows them: a capture that holds a secret (a canary the device
/// echoes back, a token) is masked like the transcripts. Checks judged the records before this.
fn masked_captures(mut steps: Vec<StepRecord>, secrets: &[(String, String)]) -> Vec<StepRecord> {
    if secrets.is_empty() {
        return steps;
    }
    let m = secrets_masker(secrets);
    for a in steps.iter_mut().flat_map(|s| s.attempts.iter_mut()) {
        for v in a.captures.values_mut() {
            *v = m.mask_str(v);
        }
        if let Some(e) = &mut a.error {
            *e = m.mask_str(e);
        }
    }
    steps
}

/// A masker of the case's secrets, for text that reaches the report. A secret of fewer than
/// [`MIN_MASKED`] characters cannot be told from ordinary text ("1" in "5.11-1"): masking it there
/// would give it away, so it is left to the places that know where it was typed.
fn secrets_masker(secrets: &[(String, String)]) -> hilt_link::Secrets {
    let mut m = hilt_link::Secrets::default();
    for (secret, label) in secrets.iter().filter(|(s, _)| s.len() >= MIN_MASKED) {
        m.add(secret.as_bytes(), label);
    }
    m
}

const MIN_MASKED: usize = 4;

/// The test accounts as the mock cloud holds them when the case ends, read back for the evidence: each
/// account's record, consents and app notices, and what the device reported about consent and erasure.
/// Never a token (the records hold none); known secrets are masked.
fn account_records(
    c: &crate::cloud::CloudSession,
    vars: &CaseVars,
    accounts: &BTreeMap<String, hilt_model::scenario::AccountSpec>,
) -> EvidenceFile {
    let users: BTreeMap<&str, serde_json::Value> = accounts
        .keys()
        .filter_map(|name| Some((name.as_str(), &vars.accounts.get(name)?.0)))
        .map(|(name, id)| {
            let record = serde_json::json!({
                "account": c.state.account(id),
                "consents": c.state.consents(id),
                "notices": c.state.notices(id),
            });
            (name, record)
        })
        .collect();
    let dut = &c.dut_username;
    let doc = serde_json::json!({
        "accounts": users,
        "device": {
            "id": dut,
            "consents_reported": c.state.device_consents(dut),
            "erasures_reported": c.state.device_erasures(dut),
            "notices_sent": c.state.device_notices(dut),
        },
    });
    let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    EvidenceFile {
        name: "accounts.json".into(),
        bytes: c.mask(&bytes),
        media_type: "application/json".into(),
        description: "the case's test accounts as the mock cloud holds them at the end (records, consents, app notices) and what the device reported (consents, erasures, notices); no token".into(),
    }
}

/// The scenario's test accounts, made in the mock cloud as a user installing the companion app would;
/// their tokens are secrets, masked from now on wherever they show up.
fn make_accounts(ctx: &mut Ctx) -> Result<(), Stop> {
    if ctx.scenario.accounts.is_empty() {
        return Ok(());
    }
    let c = ctx
        .bench
        .cloud()
        .ok_or_else(|| Stop::not_tested("test accounts need the mock cloud"))?;
    let mut made = std::collections::BTreeMap::new();
    for (name, spec) in &ctx.scenario.accounts {
        let acct = c.state.create_account(&spec.name).map_err(|e| {
            Stop(
                Verdict::Error,
                format!("cannot make test account {name}: {e}"),
            )
        })?;
        let label = format!("token-{name}");
        ctx.bench.mask(&acct.token, &label);
        ctx.secrets.push((acct.token.clone(), label));
        made.insert(name.clone(), (acct.id, acct.token));
    }
    Arc::make_mut(&mut ctx.vars).accounts = made;
    Ok(())
}

fn transcript_evidence(link: &str, c: &Console<Box<dyn Port>>) -> [EvidenceFile; 2] {
    let t = c.transcript();
    [
        EvidenceFile {
            name: format!("{link}.log"),
            bytes: t.render_text().into_bytes(),
            media_type: "text/plain; charset=utf-8".into(),
            description: format!(
                "transcript of link {link:?}, both directions, timestamped, secrets masked (in \
                 any case)"
            ),
        },
        EvidenceFile {
            name: format!("{link}.jsonl"),
            bytes: t.render_jsonl().into_bytes(),
            media_type: "application/jsonl".into(),
            description: format!("transcript of link {link:?} as JSON lines, secrets masked"),
        },
    ]
}

/// Every check of the case over the evidence gathered, whatever ended the steps: a FAIL a check finds
/// in partial evidence is still the device's FAIL; anything else yields to why the case stopped.
fn run_checks(ctx: &Ctx, case: &Case, flows: Option<&[hilt_cloud::Flow]>) -> Vec<CheckRecord> {
    let scope = ctx.scope();
    let started_unix_ms =
        chrono::Utc::now().timestamp_millis() as u64 - ctx.t0.elapsed().as_millis() as u64;
    let ev = Evidence {
        scope: &scope,
        steps: &ctx.steps,
        secrets: &ctx.secrets,
        started_unix_ms: Some(started_unix_ms),
        memory: &ctx.memory,
        usb: &ctx.usb,
        ble: &ctx.ble,
        cloud: ctx
            .bench
            .cloud()
            .zip(flows)
            .map(|(c, flows)| CloudEvidence {
                flows,
                dut: Dut::of(c),
                windows: &ctx.windows,
                declared: &ctx.bench.profile().flows,
            }),
    };
    case.checks.iter().map(|c| c.evaluate(&ev)).collect()
}

/// A case that stopped early (interrupted, out of time, the bench failing) did not gather what its
/// checks judge: a check that would FAIL on the evidence so far is not the device's FAIL (a notice
/// never sent because the case never reached its trigger), so it becomes INCONCLUSIVE, saying what
/// it saw; the returned notes keep that for the reader. Steps answered wrongly before the stop still
/// FAIL the case.
fn discount_checks(stop: Option<&Stop>, checks: &mut [CheckRecord]) -> Vec<String> {
    let Some(Stop(v, why)) = stop.filter(|Stop(v, _)| *v != Verdict::Fail) else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for c in checks.iter_mut().filter(|c| c.verdict == Verdict::Fail) {
        notes.push(format!(
            "check {} would FAIL on the evidence gathered before the case ended {v} ({why}): {}",
            c.kind, c.detail
        ));
        c.verdict = Verdict::Inconclusive;
        c.detail = format!(
            "not judged: the case ended {v} before its steps were done; on the evidence so far: {}",
            c.detail
        );
    }
    notes
}

/// The verdict: a FAIL seen with evidence first (later trouble becomes a note), then why the case
/// stopped early, then undecided checks, then missing evidence; PASS only when something was judged.
fn decide(ctx: &Ctx, stop: Option<Stop>, checks: &[CheckRecord]) -> (Verdict, String, Vec<String>) {
    let mut failures = ctx.failures.clone();
    failures.extend(
        checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| format!("check {}: {}", c.kind, c.detail)),
    );
    if let Some(first) = failures.first() {
        let more = match failures.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        let notes = stop
            .map(|Stop(v, r)| vec![format!("after the failure the case ended {v}: {r}")])
            .unwrap_or_default();
        return (Verdict::Fail, format!("{first}{more}"), notes);
    }
    if let Some(Stop(v, r)) = stop {
        return (v, r, Vec::new());
    }
    if let Some(c) = checks.iter().find(|c| c.verdict.is_undecided()) {
        return (
            c.verdict,
            format!("check {}: {}", c.kind, c.detail),
            Vec::new(),
        );
    }
    if let Some(first) = ctx.inconclusive.first() {
        return (Verdict::Inconclusive, first.clone(), Vec::new());
    }
    let judged: usize = ctx
        .steps
        .iter()
        .flat_map(|s| &s.attempts)
        .filter(|a| a.conforms.is_some())
        .count();
    if judged == 0 && checks.is_empty() {
        return (
            Verdict::Inconclusive,
            "nothing was judged: no attempt was held to an expected outcome and no check ran"
                .into(),
            Vec::new(),
        );
    }
    let mut why: Vec<String> = Vec::new();
    if judged > 0 {
        why.push(format!("{judged} attempt(s) met the pass criteria"));
    }
    why.extend(checks.iter().map(|c| format!("{}: {}", c.kind, c.detail)));
    (Verdict::Pass, why.join("; "), Vec::new())
}

/// The flows recorded since sequence number `from` (the case's start).
fn cloud_flows(c: &crate::cloud::CloudSession, from: u64) -> Vec<hilt_cloud::Flow> {
    c.log
        .snapshot()
        .into_iter()
        .skip_while(|f| f.seq < from)
        .collect()
}

/// The case's slice of the flow log, and the payloads it refers to, with the secrets the cloud session
/// knows (its device passwords, and the unit secrets and revealing values the case registered with
/// it) masked in every text field and in the payloads, in any ASCII case.
fn cloud_evidence(c: &crate::cloud::CloudSession, flows: &[hilt_cloud::Flow]) -> Vec<EvidenceFile> {
    let mask = |s: &mut Option<String>| {
        if let Some(text) = s.as_mut() {
            *text = c.mask_str(text);
        }
    };
    let mut out = Vec::new();
    let mut lines = String::new();
    for f in flows {
        let mut f = f.clone();
        for field in [
            &mut f.client_id,
            &mut f.identity,
            &mut f.topic,
            &mut f.path,
            &mut f.method,
            &mut f.peer,
            &mut f.detail,
        ] {
            mask(field);
        }
        lines.push_str(&serde_json::to_string(&f).unwrap_or_default());
        lines.push('\n');
    }
    out.push(EvidenceFile {
        name: "cloud-flows.jsonl".into(),
        bytes: lines.into_bytes(),
        media_type: "application/jsonl".into(),
        description: "the mock cloud's flow log during the case: every connection, publish and \
                      request, secrets masked"
            .into(),
    });
    let mut seen = std::collections::BTreeSet::new();
    for f in flows.iter().filter(|f| f.payload_len > 0) {
        if seen.insert(f.payload_sha256.clone())
            && let Some(sent) = c.log.payload(&f.payload_sha256)
        {
            let bytes = c.mask(&sent);
            let about = c.mask_str(f.topic.as_deref().or(f.path.as_deref()).unwrap_or("-"));
            let mut description = format!("payload of flow #{} ({about})", f.seq);
            if bytes != sent {
                description.push_str(
                    ", secrets masked: the file's SHA-256 is no longer the flow log's \
                     payload_sha256 (of the payload as sent); the report's digest covers the file \
                     as stored",
                );
            }
            out.push(EvidenceFile {
                name: format!("payloads/{}", f.payload_sha256),
                bytes,
                media_type: "application/octet-stream".into(),
                description,
            });
        }
    }
    out
}

/// With their mask labels: the passwords of every unit's credentials that can be read now and the
/// case's secret variables (`unit-secret-N`), then the mock cloud's device passwords
/// (`cloud-password-USER`). A missing password is simply not masked here: the case that needs it
/// becomes NOT_TESTED.
fn case_secrets(bench: &dyn Bench, vars: &CaseVars) -> Vec<(String, String)> {
    let units = bench.profile().units.iter().enumerate();
    let passwords = units.flat_map(|(i, u)| {
        u.credentials
            .keys()
            .filter_map(move |surface| bench.credential(i, surface, "password").ok())
    });
    let unit: Vec<String> = passwords
        .chain(vars.values.values().filter(|v| v.secret).cloned())
        .map(|v| v.text)
        .filter(|t| !t.is_empty())
        .collect();
    let cloud = bench.cloud().into_iter().flat_map(|c| {
        c.endpoints
            .clients
            .iter()
            .map(|c| (c.password.clone(), format!("cloud-password-{}", c.username)))
    });
    unit.into_iter()
        .enumerate()
        .map(|(i, s)| (s, format!("unit-secret-{}", i + 1)))
        .chain(cloud)
        .collect()
}

#[cfg(test)]
mod tests;
