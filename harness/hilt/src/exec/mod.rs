//! Executing one scenario against one board session: applicability from the ICS (fail closed), then
//! the steps through the board's bindings, then the checks, giving a verdict with its evidence.

mod binding;
mod check;
mod cloud;
mod derive;
mod vars;

pub use binding::{ActionError, Observation, run_binding};

use hilt_link::{Console, SerialPort};
use hilt_model::Verdict;
use hilt_model::ics::Decision;
use hilt_model::scenario::{Check, Rows, Scenario, Step, StepWhat, read_fixture};
use hilt_report::model::{Attempt, CaseResult, CheckRecord, StepRecord};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::board::BoardSession;
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

/// Where a case stopped early, and with which verdict.
struct Stop(Verdict, String);

struct Ctx<'a> {
    session: &'a BoardSession,
    consoles: BTreeMap<String, Console<SerialPort>>,
    t0: Instant,
    steps: Vec<StepRecord>,
    failures: Vec<String>,
    inconclusive: Vec<String>,
    /// The unit's secrets (its credentials' passwords), masked wherever they show up.
    secrets: Vec<String>,
    /// First flow-log sequence number of this case, when the board has a mock cloud.
    cloud_from: Option<u64>,
    windows: Vec<cloud::FaultWindow>,
}

pub fn run_case(session: &BoardSession, scenario: &Scenario) -> CaseRun {
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut ctx = Ctx {
        session,
        consoles: BTreeMap::new(),
        t0: Instant::now(),
        steps: Vec::new(),
        failures: Vec::new(),
        inconclusive: Vec::new(),
        secrets: unit_secrets(session),
        cloud_from: session.cloud().map(|c| c.log.next_seq()),
        windows: Vec::new(),
    };
    let mut checks = Vec::new();
    let (verdict, reason) =
        match applicability(session, scenario).and_then(|()| run_steps(&mut ctx, scenario)) {
            Err(Stop(v, r)) => (v, r),
            Ok(()) => {
                checks = run_checks(&ctx, scenario);
                decide(&ctx, &checks)
            }
        };
    tracing::info!(case = %scenario.id, %verdict, %reason, "case finished");
    let mut evidence: Vec<EvidenceFile> = ctx
        .consoles
        .iter()
        .flat_map(|(link, c)| {
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
        })
        .collect();
    if let (Some(c), Some(from)) = (session.cloud(), ctx.cloud_from) {
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
            started,
            duration_ms: ctx.t0.elapsed().as_millis() as u64,
            provisions: scenario.provisions.clone(),
            steps: ctx.steps,
            checks,
            evidence: Vec::new(),
        },
        evidence,
    }
}

/// Applicability and preconditions, failing closed: anything the profile cannot decide is NOT_TESTED.
fn applicability(session: &BoardSession, s: &Scenario) -> Result<(), Stop> {
    let ics = &session.profile.ics;
    match ics.decide(
        &s.applicability.features,
        &s.applicability.conditions,
        &s.provisions.en303645,
    ) {
        Decision::Applies => {}
        Decision::NotApplicable(r) => return Err(Stop(Verdict::NotApplicable, r)),
        Decision::Undecided(r) => {
            return Err(Stop(
                Verdict::NotTested,
                format!("applicability undecided: {r}"),
            ));
        }
    }
    let not_tested = |r: String| Stop(Verdict::NotTested, r);
    if s.needs_cloud() && session.cloud().is_none() {
        return Err(not_tested(
            "the scenario needs the mock cloud, and the board profile declares no cloud link"
                .into(),
        ));
    }
    let scope = Scope {
        session,
        row: None,
        iteration: 0,
    };
    for step in &s.steps {
        if let StepWhat::Action { name, with } = &step.what {
            if !session.profile.bindings.contains_key(name) {
                return Err(not_tested(format!(
                    "the board profile has no binding for action {name:?}"
                )));
            }
            for t in with.values() {
                for v in t.vars().filter(|v| !v.starts_with("row.")) {
                    scope
                        .resolve(v)
                        .map_err(|e| not_tested(format!("step {}: {e}", step.id)))?;
                }
            }
        }
        let numbers = step
            .repeat
            .iter()
            .chain(step.retry.iter().map(|r| &r.wait_ms));
        let sleep = match &step.what {
            StepWhat::Sleep(n) | StepWhat::CloudFault { for_ms: n, .. } => Some(n),
            StepWhat::WaitFlow(w) => Some(&w.timeout_ms),
            StepWhat::Action { .. } => None,
        };
        for n in numbers.chain(sleep) {
            scope
                .number(n)
                .map_err(|e| not_tested(format!("step {}: {e}", step.id)))?;
        }
    }
    for c in &s.checks {
        let numbers: Vec<&hilt_model::scenario::Number> = match c {
            Check::Throttled {
                after,
                min_delay_ms,
                ..
            } => vec![after, min_delay_ms],
            Check::OrderlyReconnect { max_attempts_per_s } => vec![max_attempts_per_s],
            Check::CaptureEquals { expected, .. } => {
                scope
                    .render(expected)
                    .map_err(|e| not_tested(format!("check capture-equals: {e}")))?;
                vec![]
            }
            Check::TlsOnly | Check::RefusesUntrustedCert | Check::FlowsDeclared => vec![],
        };
        for n in numbers {
            scope
                .number(n)
                .map_err(|e| not_tested(format!("check: {e}")))?;
        }
    }
    Ok(())
}

fn run_steps(ctx: &mut Ctx, s: &Scenario) -> Result<(), Stop> {
    for step in &s.steps {
        let rows = match &step.for_each {
            Some(Rows::Fixture(path)) => {
                Some(read_fixture(path).map_err(|e| Stop(Verdict::Error, e.to_string()))?)
            }
            Some(Rows::DerivedFromSerial) => Some(derive::from_serial(&ctx.session.unit.serial)),
            None => None,
        };
        let scope = Scope {
            session: ctx.session,
            row: None,
            iteration: 0,
        };
        let count = match (&rows, &step.repeat) {
            (Some(r), _) => r.len(),
            (None, Some(n)) => {
                (scope.number(n).map_err(|e| Stop(Verdict::NotTested, e))? + step.repeat_add)
                    as usize
            }
            (None, None) => 1,
        };
        let mut record = StepRecord {
            id: step.id.clone(),
            attempts: Vec::new(),
        };
        for i in 0..count {
            let scope = Scope {
                session: ctx.session,
                row: rows.as_ref().map(|r| &r[i]),
                iteration: i,
            };
            match &step.what {
                StepWhat::Sleep(n) => {
                    let ms = scope.number(n).map_err(|e| Stop(Verdict::NotTested, e))?;
                    std::thread::sleep(Duration::from_millis(ms));
                }
                StepWhat::Action { name, with } => {
                    let attempt = run_attempt(ctx, &scope, step, name, with)?;
                    record.attempts.push(attempt);
                }
                StepWhat::CloudFault { fault, for_ms } => {
                    let ms = scope
                        .number(for_ms)
                        .map_err(|e| Stop(Verdict::NotTested, e))?;
                    let c = ctx
                        .session
                        .cloud()
                        .ok_or_else(|| Stop(Verdict::NotTested, "no mock cloud".into()))?;
                    for console in ctx.consoles.values_mut() {
                        console.note(&format!(
                            "step {}: cloud fault {fault:?} for {ms} ms",
                            step.id
                        ));
                    }
                    ctx.windows
                        .push(cloud::apply_fault(c, *fault, Duration::from_millis(ms)));
                }
                StepWhat::WaitFlow(w) => {
                    let ms = scope
                        .number(&w.timeout_ms)
                        .map_err(|e| Stop(Verdict::NotTested, e))?;
                    let c = ctx
                        .session
                        .cloud()
                        .ok_or_else(|| Stop(Verdict::NotTested, "no mock cloud".into()))?;
                    let from = c.log.next_seq();
                    let seen = c.log.wait_for(from, Duration::from_millis(ms), |f| {
                        f.kind == w.kind && cloud::Dut::of(c).owns(f)
                    });
                    if seen.is_none() {
                        ctx.inconclusive.push(format!(
                            "step {}: the device made no {} flow within {ms} ms",
                            step.id, w.kind
                        ));
                    }
                }
            }
        }
        ctx.steps.push(record);
    }
    Ok(())
}

fn run_attempt(
    ctx: &mut Ctx,
    scope: &Scope,
    step: &Step,
    action: &str,
    with: &BTreeMap<String, hilt_model::template::Template>,
) -> Result<Attempt, Stop> {
    let mut args = BTreeMap::new();
    for (k, t) in with {
        let v = scope
            .render(t)
            .map_err(|e| Stop(Verdict::NotTested, format!("step {}: {e}", step.id)))?;
        args.insert(k.clone(), v);
    }
    let shown: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                // A value holding one of the unit's secrets is masked even when it came from
                // elsewhere (a derived or default candidate that turned out to be the password).
                if v.secret || ctx.secrets.iter().any(|sec| v.text.contains(sec.as_str())) {
                    "‹secret›".to_string()
                } else {
                    v.text.clone()
                },
            )
        })
        .collect();
    let binding = &ctx.session.profile.bindings[action];
    if !ctx.consoles.contains_key(&binding.link) {
        let c = ctx
            .session
            .open_console(&binding.link)
            .map_err(|e| Stop(Verdict::Error, e.to_string()))?;
        let mut c = c;
        for (i, secret) in ctx.secrets.iter().enumerate() {
            c.add_secret(secret.as_bytes(), &format!("unit-secret-{}", i + 1));
        }
        ctx.consoles.insert(binding.link.clone(), c);
    }
    let console = ctx.consoles.get_mut(&binding.link).expect("opened above");
    console.note(&format!(
        "step {} #{}: {action}",
        step.id,
        scope.iteration + 1
    ));
    let at_ms = ctx.t0.elapsed().as_secs_f64() * 1e3;
    let mut retries = 0;
    let obs = loop {
        let obs = run_binding(console, binding, &args)
            .map_err(|e| Stop(Verdict::Error, format!("step {}: {e}", step.id)))?;
        let retry = step
            .retry
            .as_ref()
            .filter(|r| obs.outcome.as_ref().is_some_and(|o| r.on.contains(o)));
        match retry {
            Some(r) if retries < r.max => {
                let wait = scope
                    .number(&r.wait_ms)
                    .map_err(|e| Stop(Verdict::NotTested, e))?;
                console.note(&format!(
                    "outcome {:?}: retrying after {wait} ms",
                    obs.outcome.as_deref().unwrap_or("")
                ));
                std::thread::sleep(Duration::from_millis(wait));
                retries += 1;
            }
            _ => break obs,
        }
    };
    let outcome = obs.outcome.clone();
    let describe = || {
        let a: Vec<String> = shown.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        format!(
            "step {} attempt {} ({})",
            step.id,
            scope.iteration + 1,
            a.join(", ")
        )
    };
    let still_retrying = step
        .retry
        .as_ref()
        .is_some_and(|r| outcome.as_ref().is_some_and(|o| r.on.contains(o)));
    let conforms = if still_retrying {
        ctx.inconclusive.push(format!(
            "{}: still {:?} after {retries} retries",
            describe(),
            outcome.as_deref().unwrap_or("")
        ));
        None
    } else if step.expect.is_empty() {
        None
    } else {
        let ok = outcome.as_ref().is_some_and(|o| step.expect.contains(o));
        if !ok {
            ctx.failures.push(format!(
                "{}: answered {:?}, expected {}",
                describe(),
                outcome.as_deref().unwrap_or("nothing"),
                step.expect.join(" or ")
            ));
        }
        Some(ok)
    };
    Ok(Attempt {
        iteration: scope.iteration,
        args: shown,
        outcome,
        captures: obs.captures,
        at_ms,
        elapsed_ms: obs.elapsed.as_secs_f64() * 1e3,
        retries,
        conforms,
    })
}

fn run_checks(ctx: &Ctx, s: &Scenario) -> Vec<CheckRecord> {
    let scope = Scope {
        session: ctx.session,
        row: None,
        iteration: 0,
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
                    (Some(record), Ok((after, min))) => check::throttled(record, after, min),
                    (_, Err(e)) => CheckRecord {
                        kind: "throttled".into(),
                        verdict: Verdict::NotTested,
                        detail: e,
                    },
                    (None, _) => CheckRecord {
                        kind: "throttled".into(),
                        verdict: Verdict::Error,
                        detail: format!("step {step:?} did not run"),
                    },
                }
            }
            Check::CaptureEquals {
                step,
                capture,
                expected,
            } => match scope.render(expected) {
                Ok(want) => match ctx.steps.iter().find(|r| &r.id == step) {
                    Some(record) => check::capture_equals(record, capture, &want.text),
                    None => CheckRecord {
                        kind: c.name().into(),
                        verdict: Verdict::Error,
                        detail: format!("step {step:?} did not run"),
                    },
                },
                Err(e) => CheckRecord {
                    kind: c.name().into(),
                    verdict: Verdict::NotTested,
                    detail: e,
                },
            },
            flow_check => match (ctx.session.cloud(), ctx.cloud_from) {
                (Some(c), Some(from)) => {
                    let flows = cloud_flows(c, from);
                    match flow_check {
                        Check::TlsOnly => cloud::tls_only(&cloud::Dut::of(c), &flows),
                        Check::OrderlyReconnect { max_attempts_per_s } => {
                            match scope.number(max_attempts_per_s) {
                                Ok(max) => cloud::orderly_reconnect(&flows, &ctx.windows, max),
                                Err(e) => CheckRecord {
                                    kind: flow_check.name().into(),
                                    verdict: Verdict::NotTested,
                                    detail: e,
                                },
                            }
                        }
                        Check::RefusesUntrustedCert => {
                            cloud::refuses_untrusted_cert(&cloud::Dut::of(c), &flows, &ctx.windows)
                        }
                        Check::FlowsDeclared => cloud::flows_declared(
                            &cloud::Dut::of(c),
                            &flows,
                            &ctx.session.profile.flows,
                        ),
                        Check::Throttled { .. } | Check::CaptureEquals { .. } => CheckRecord {
                            kind: flow_check.name().into(),
                            verdict: Verdict::Error,
                            detail: "not a flow-log check".into(),
                        },
                    }
                }
                _ => CheckRecord {
                    kind: flow_check.name().into(),
                    verdict: Verdict::NotTested,
                    detail: "no mock cloud".into(),
                },
            },
        })
        .collect()
}

fn decide(ctx: &Ctx, checks: &[CheckRecord]) -> (Verdict, String) {
    let failed_checks: Vec<String> = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| format!("check {}: {}", c.kind, c.detail))
        .collect();
    let mut failures = ctx.failures.clone();
    failures.extend(failed_checks);
    if let Some(first) = failures.first() {
        let more = if failures.len() > 1 {
            format!(" (and {} more)", failures.len() - 1)
        } else {
            String::new()
        };
        return (Verdict::Fail, format!("{first}{more}"));
    }
    if let Some(c) = checks.iter().find(|c| c.verdict.is_undecided()) {
        return (c.verdict, format!("check {}: {}", c.kind, c.detail));
    }
    if let Some(first) = ctx.inconclusive.first() {
        return (Verdict::Inconclusive, first.clone());
    }
    let attempts: usize = ctx.steps.iter().map(|s| s.attempts.len()).sum();
    let mut why: Vec<String> = Vec::new();
    if attempts > 0 {
        why.push(format!("{attempts} attempt(s) met the pass criteria"));
    }
    why.extend(checks.iter().map(|c| format!("{}: {}", c.kind, c.detail)));
    (Verdict::Pass, why.join("; "))
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
fn unit_secrets(session: &BoardSession) -> Vec<String> {
    session
        .unit
        .credentials
        .keys()
        .filter_map(|surface| session.credential(surface, "password").ok())
        .map(|v| v.text)
        .filter(|t| !t.is_empty())
        .collect()
}
