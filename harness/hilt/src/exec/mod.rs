//! Executing one scenario against one bench: applicability from the ICS (fail closed), then the steps
//! through the board's bindings, then the checks, giving a verdict with its evidence.
//!
//! Integrity rules: a FAIL established with evidence stands whatever happens later in the case (later
//! trouble is noted beside it); every step and attempt made is kept in the result whatever the verdict;
//! a case ends INCONCLUSIVE, with its evidence so far, when it is interrupted or its time budget runs out.

mod applicability;
mod bench;
mod binding;
mod budget;
mod check;
mod cloud;
mod derive;
mod steps;
mod vars;

pub use bench::Bench;
pub use binding::{ActionError, Observation, run_binding};
pub use cloud::Dut;

use hilt_link::{Cancel, Console, Port};
use hilt_model::Verdict;
use hilt_model::scenario::{Check, Scenario};
use hilt_report::model::{CaseResult, CheckRecord, StepRecord};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::events::{EventSink, RunEvent};
use vars::Scope;

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
    pub scenario: &'a Scenario,
    pub ctl: &'a CaseControl<'a>,
    pub consoles: BTreeMap<String, Console<Box<dyn Port>>>,
    pub t0: Instant,
    /// When the case's time budget runs out.
    pub deadline: Option<(Instant, Duration)>,
    pub steps: Vec<StepRecord>,
    /// Failures observed with evidence: they decide the verdict whatever happens later.
    pub failures: Vec<String>,
    pub inconclusive: Vec<String>,
    /// The unit's secrets (its credentials' passwords), masked wherever they show up.
    pub secrets: Vec<String>,
    /// First flow-log sequence number of this case, when the board has a mock cloud.
    pub cloud_from: Option<u64>,
    pub windows: Vec<cloud::FaultWindow>,
}

impl Ctx<'_> {
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            bench: self.bench,
            row: None,
            iteration: 0,
        }
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
        let length = match self.deadline {
            Some((at, _)) => length.min(at.saturating_duration_since(Instant::now())),
            None => length,
        };
        self.ctl.cancel.sleep(length);
        self.checkpoint()
    }

    /// Annotate every open transcript (so a reader sees what the harness did between exchanges).
    pub fn note_all(&mut self, text: &str) {
        for console in self.consoles.values_mut() {
            console.note(text);
        }
    }
}

pub fn run_case(bench: &dyn Bench, scenario: &Scenario, ctl: &CaseControl) -> CaseRun {
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
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
        secrets: unit_secrets(bench),
        cloud_from: bench.cloud().map(|c| c.log.next_seq()),
        windows: Vec::new(),
    };
    let mut checks = Vec::new();
    let mut budget_ms = None;
    let (verdict, reason, notes) = match applicability::check(bench, scenario) {
        Err(Stop(v, r)) => (v, r, Vec::new()),
        Ok(()) => {
            let stop = steps::prepare(&mut ctx).and_then(|plan| {
                budget_ms = ctx.deadline.map(|(_, b)| b.as_millis() as u64);
                steps::run(&mut ctx, &plan)
            });
            checks = run_checks(&ctx, scenario);
            decide(&ctx, stop.err(), &checks)
        }
    };
    tracing::info!(case = %scenario.id, %verdict, %reason, "case finished");
    let mut evidence: Vec<EvidenceFile> = ctx
        .consoles
        .iter()
        .flat_map(|(link, c)| transcript_evidence(link, c))
        .collect();
    if let (Some(c), Some(from)) = (bench.cloud(), ctx.cloud_from) {
        evidence.extend(cloud_evidence(c, &cloud_flows(c, from)));
    }
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
            steps: ctx.steps,
            checks,
            evidence: Vec::new(),
        },
        evidence,
    }
}

fn transcript_evidence(link: &str, c: &Console<Box<dyn Port>>) -> [EvidenceFile; 2] {
    let t = c.transcript();
    [
        EvidenceFile {
            name: format!("{link}.log"),
            bytes: t.render_text().into_bytes(),
            media_type: "text/plain; charset=utf-8".into(),
            description: format!(
                "transcript of link {link:?}, both directions, timestamped, secrets masked"
            ),
        },
        EvidenceFile {
            name: format!("{link}.jsonl"),
            bytes: t.render_jsonl().into_bytes(),
            media_type: "application/jsonl".into(),
            description: format!("transcript of link {link:?} as JSON lines"),
        },
    ]
}

fn run_checks(ctx: &Ctx, s: &Scenario) -> Vec<CheckRecord> {
    let scope = ctx.scope();
    let not_tested = |kind: &str, detail: String| CheckRecord {
        kind: kind.into(),
        verdict: Verdict::NotTested,
        detail,
    };
    let no_step = |kind: &str, step: &str| CheckRecord {
        kind: kind.into(),
        verdict: Verdict::Inconclusive,
        detail: format!("step {step:?} did not run, so there is no evidence to judge"),
    };
    s.checks
        .iter()
        .map(|c| match c {
            Check::Throttled {
                step,
                after,
                min_delay_ms,
            } => {
                let numbers = scope
                    .number(after)
                    .and_then(|a| Ok((a, scope.number(min_delay_ms)?)));
                match (ctx.steps.iter().find(|r| &r.id == step), numbers) {
                    (_, Err(e)) => not_tested(c.name(), e),
                    (Some(record), Ok((after, min))) => check::throttled(record, after, min),
                    (None, _) => no_step(c.name(), step),
                }
            }
            Check::CaptureEquals {
                step,
                capture,
                expected,
            } => match (
                scope.render(expected),
                ctx.steps.iter().find(|r| &r.id == step),
            ) {
                (Err(e), _) => not_tested(c.name(), e),
                (Ok(want), Some(record)) => check::capture_equals(record, capture, &want.text),
                (Ok(_), None) => no_step(c.name(), step),
            },
            flow_check => match (ctx.bench.cloud(), ctx.cloud_from) {
                (Some(cl), Some(from)) => {
                    let flows = cloud_flows(cl, from);
                    let dut = cloud::Dut::of(cl);
                    match flow_check {
                        Check::TlsOnly => cloud::tls_only(&dut, &flows),
                        Check::OrderlyReconnect { max_attempts_per_s } => {
                            match scope.number(max_attempts_per_s) {
                                Ok(max) => cloud::orderly_reconnect(&flows, &ctx.windows, max),
                                Err(e) => not_tested(flow_check.name(), e),
                            }
                        }
                        Check::RefusesUntrustedCert => {
                            cloud::refuses_untrusted_cert(&dut, &flows, &ctx.windows)
                        }
                        Check::FlowsDeclared => {
                            cloud::flows_declared(&dut, &flows, &ctx.bench.profile().flows)
                        }
                        Check::Throttled { .. } | Check::CaptureEquals { .. } => CheckRecord {
                            kind: flow_check.name().into(),
                            verdict: Verdict::Error,
                            detail: "not a flow-log check".into(),
                        },
                    }
                }
                _ => not_tested(flow_check.name(), "no mock cloud".into()),
            },
        })
        .collect()
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

fn cloud_flows(c: &crate::cloud::CloudSession, from: u64) -> Vec<hilt_cloud::Flow> {
    c.log
        .snapshot()
        .into_iter()
        .filter(|f| f.seq >= from)
        .collect()
}

/// The case's slice of the flow log, and the payloads it refers to.
fn cloud_evidence(c: &crate::cloud::CloudSession, flows: &[hilt_cloud::Flow]) -> Vec<EvidenceFile> {
    let mut out = Vec::new();
    let mut lines = String::new();
    for f in flows {
        lines.push_str(&serde_json::to_string(f).unwrap_or_default());
        lines.push('\n');
    }
    out.push(EvidenceFile {
        name: "cloud-flows.jsonl".into(),
        bytes: lines.into_bytes(),
        media_type: "application/jsonl".into(),
        description:
            "the mock cloud's flow log during the case: every connection, publish and request"
                .into(),
    });
    let mut seen = std::collections::BTreeSet::new();
    for f in flows.iter().filter(|f| f.payload_len > 0) {
        if seen.insert(f.payload_sha256.clone())
            && let Some(bytes) = c.log.payload(&f.payload_sha256)
        {
            out.push(EvidenceFile {
                name: format!("payloads/{}", f.payload_sha256),
                bytes,
                media_type: "application/octet-stream".into(),
                description: format!(
                    "payload of flow #{} ({})",
                    f.seq,
                    f.topic.as_deref().or(f.path.as_deref()).unwrap_or("-")
                ),
            });
        }
    }
    out
}

/// The passwords of the unit's credentials that can be read now (a missing one is simply not masked
/// here: the case that needs it becomes NOT_TESTED).
fn unit_secrets(bench: &dyn Bench) -> Vec<String> {
    bench
        .unit()
        .credentials
        .keys()
        .filter_map(|surface| bench.credential(surface, "password").ok())
        .map(|v| v.text)
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests;
