//! Running a scenario's steps: each action once, `repeat`ed or per fixture row, through the board's
//! binding; retries on outcomes that mean "not evaluated yet"; every attempt recorded as it is made,
//! so whatever ends the case, the evidence gathered so far stays in the result.

use hilt_model::Verdict;
use hilt_model::scenario::VarTemplate;
use hilt_model::scenario::{Row, Rows, SleepUntil, Step, StepWhat};
use hilt_model::vocabulary::ActionKind;
use hilt_report::model::{Attempt, StepRecord};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::binding::{ActionError, run_binding};
use super::vars::Scope;
use super::{Ctx, Stop, budget, cloud, derive};
use crate::events::RunEvent;

/// A step with its rows and its iteration count resolved.
pub(super) struct Planned {
    rows: Option<Arc<Vec<Row>>>,
    pub count: usize,
}

/// Resolve every step's rows and counts up front (an unresolvable count stops the case before the
/// device is touched), then set the case's time budget from them.
pub(super) fn prepare(ctx: &mut Ctx) -> Result<Vec<Planned>, Stop> {
    let scope = ctx.scope();
    let mut plan = Vec::new();
    for step in &ctx.scenario.steps {
        let rows = match &step.for_each {
            Some(Rows::Fixture { rows, .. }) => Some(rows.clone()),
            Some(Rows::DerivedFromSerial) => {
                Some(Arc::new(derive::from_serial(&ctx.bench.unit().serial)))
            }
            Some(Rows::Units) => Some(Arc::new(unit_rows(ctx.bench.profile()))),
            None => None,
        };
        let count = match (&rows, &step.repeat) {
            (Some(r), _) => r.len(),
            (None, Some(n)) => {
                (scope.number(n).map_err(Stop::not_tested)? + step.repeat_add) as usize
            }
            (None, None) => 1,
        };
        plan.push(Planned { rows, count });
    }
    let budget = budget::of(ctx, &plan)?;
    ctx.deadline = Some((ctx.t0 + budget, budget));
    ctx.ctl.events.event(&RunEvent::BudgetSet {
        id: &ctx.scenario.id,
        budget,
    });
    Ok(plan)
}

/// One row per unit of the profile: `unit` (1-based) and `serial`.
fn unit_rows(profile: &hilt_model::profile::BoardProfile) -> Vec<Row> {
    profile
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| {
            Row::from([
                ("unit".to_string(), (i + 1).to_string()),
                ("serial".to_string(), u.serial.clone()),
            ])
        })
        .collect()
}

pub(super) fn run(ctx: &mut Ctx, plan: &[Planned]) -> Result<(), Stop> {
    let scenario = ctx.scenario;
    for (step, planned) in scenario.steps.iter().zip(plan) {
        ctx.checkpoint()?;
        let flow_from_us = ctx.bench.cloud().map(|c| c.log.now_us());
        ctx.steps.push(StepRecord {
            id: step.id.clone(),
            started_ms: ms(ctx.t0.elapsed()),
            ended_ms: None,
            flow_from_us,
            flow_to_us: None,
            attempts: Vec::new(),
        });
        let result = run_step(ctx, step, planned);
        let (ended, flow_to) = (
            ms(ctx.t0.elapsed()),
            ctx.bench.cloud().map(|c| c.log.now_us()),
        );
        let record = ctx.steps.last_mut().expect("pushed above");
        record.ended_ms = Some(ended);
        record.flow_to_us = flow_to;
        let attempts = record.attempts.len();
        ctx.ctl.events.event(&RunEvent::StepFinished {
            case: &scenario.id,
            step: &step.id,
            attempts,
        });
        if ctx.held.as_ref().is_some_and(|h| h.until == step.id) {
            ctx.end_held_fault();
        }
        result?;
        if matches!(step.what, StepWhat::Action { .. }) && attempts == 0 {
            ctx.inconclusive.push(format!(
                "step {} made no attempt (its fixture or count gave zero iterations), so it evidences nothing",
                step.id
            ));
        }
    }
    Ok(())
}

fn run_step(ctx: &mut Ctx, step: &Step, planned: &Planned) -> Result<(), Stop> {
    for i in 0..planned.count {
        ctx.checkpoint()?;
        let row = planned.rows.as_ref().map(|r| &r[i]);
        let scope = Scope {
            bench: ctx.bench,
            row,
            iteration: i,
            case: ctx.vars.clone(),
        };
        match &step.what {
            StepWhat::Sleep { ms, until } => {
                let ms = scope.number(ms).map_err(Stop::not_tested)?;
                match until {
                    Some(u) => sleep_until(ctx, step, u, Duration::from_millis(ms))?,
                    None => ctx.wait(&step.id, "sleep", Duration::from_millis(ms))?,
                }
            }
            StepWhat::Action { name, with } => {
                run_attempt(ctx, &scope, step, name, with, planned.count)?;
            }
            StepWhat::CloudFaultUntil { until, .. } => hold_fault(ctx, step, until)?,
            StepWhat::CloudFault { for_ms, .. } => {
                ctx.end_held_fault();
                let fault = ctx.scenario.faults[&step.id];
                let ms = scope.number(for_ms).map_err(Stop::not_tested)?;
                let c = ctx
                    .bench
                    .cloud()
                    .ok_or_else(|| Stop::not_tested("no mock cloud"))?;
                ctx.note_all(&format!(
                    "step {}: cloud fault {} for {ms} ms",
                    step.id, fault.name
                ));
                let length = Duration::from_millis(ms);
                ctx.ctl.events.event(&RunEvent::Waiting {
                    case: &ctx.scenario.id,
                    step: &step.id,
                    what: "cloud fault",
                    length,
                });
                let window = cloud::apply_fault(c, fault, length, &ctx.ctl.cancel);
                ctx.windows.push(window);
                ctx.checkpoint()?;
            }
            StepWhat::OfferUpdate(_) => offer_update(ctx, step, planned.count)?,
            StepWhat::AppConsent(a) => app_consent(ctx, step, a)?,
            StepWhat::WaitFlow(w) => {
                let ms = scope.number(&w.timeout_ms).map_err(Stop::not_tested)?;
                let c = ctx
                    .bench
                    .cloud()
                    .ok_or_else(|| Stop::not_tested("no mock cloud"))?;
                let since_us = since_us(ctx, w.since.as_deref().unwrap_or(&step.id), c);
                let seen = cloud::wait_flows_seen(
                    &c.log,
                    &cloud::Dut::of(c),
                    since_us,
                    std::slice::from_ref(&w.pattern),
                    Duration::from_millis(ms),
                    &ctx.ctl.cancel,
                );
                ctx.checkpoint()?;
                if !seen {
                    ctx.inconclusive.push(format!(
                        "step {}: the device made no {} flow{} within {ms} ms",
                        step.id,
                        w.pattern.kind,
                        w.pattern
                            .path
                            .as_ref()
                            .map(|p| format!(" to a path matching {:?}", p.as_str()))
                            .unwrap_or_default()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Flow-log time at the start of step `since` (validated at load as this step or an earlier one).
fn since_us(ctx: &Ctx, since: &str, c: &crate::cloud::CloudSession) -> u64 {
    ctx.steps
        .iter()
        .find(|r| r.id == since)
        .and_then(|r| r.flow_from_us)
        .unwrap_or_else(|| c.log.now_us())
}

/// A sleep that ends once the device has made the flows `until` names (see [`SleepUntil`]), or after
/// `length`. Without a mock cloud it is the plain sleep. Either way the steps after it judge.
fn sleep_until(
    ctx: &mut Ctx,
    step: &Step,
    until: &SleepUntil,
    length: Duration,
) -> Result<(), Stop> {
    let Some(c) = ctx.bench.cloud() else {
        return ctx.wait(&step.id, "sleep", length);
    };
    let since_us = since_us(ctx, until.since.as_deref().unwrap_or(&step.id), c);
    ctx.ctl.events.event(&RunEvent::Waiting {
        case: &ctx.scenario.id,
        step: &step.id,
        what: "sleep (or until the device's flows)",
        length,
    });
    let length = ctx.within_budget(length);
    let t0 = std::time::Instant::now();
    let seen = cloud::wait_flows_seen(
        &c.log,
        &cloud::Dut::of(c),
        since_us,
        &until.seen,
        length,
        &ctx.ctl.cancel,
    );
    let note = if seen {
        format!(
            "step {}: over after {} ms: the device made the flows it waits for",
            step.id,
            t0.elapsed().as_millis()
        )
    } else {
        format!(
            "step {}: waited the whole {} ms",
            step.id,
            length.as_millis()
        )
    };
    ctx.note_all(&note);
    ctx.checkpoint()
}

/// Give or withdraw consent in the companion app as the test account's user (real HTTPS, the account's
/// token): recorded as the step's attempt, outcome the decision the app API then reports. An app or
/// cloud that does not take it is bench trouble (ERROR), never the device's FAIL.
fn app_consent(
    ctx: &mut Ctx,
    step: &Step,
    a: &hilt_model::scenario::AppConsent,
) -> Result<(), Stop> {
    let c = ctx
        .bench
        .cloud()
        .ok_or_else(|| Stop::not_tested("the companion app needs the mock cloud"))?;
    let (id, token) = ctx.vars.accounts.get(&a.account).cloned().ok_or_else(|| {
        Stop(
            Verdict::Error,
            format!("no test account {:?} was made", a.account),
        )
    })?;
    let path = format!("/app/v1/users/{id}/consents/{}", a.purpose);
    let body = serde_json::json!({ "granted": a.granted });
    let stop = |e: String| Stop(Verdict::Error, format!("step {}: {e}", step.id));
    let answer = crate::app::AppClient::new(c)
        .and_then(|app| app.put_json(&path, &token, &body))
        .map_err(|e| stop(e.to_string()))?;
    if answer.status != 200 {
        return Err(stop(format!("the app API answered {}", answer.status)));
    }
    let outcome = if answer.body["granted"] == serde_json::Value::Bool(true) {
        "granted"
    } else {
        "withdrawn"
    };
    ctx.note_all(&format!(
        "step {}: {} {} consent to {} in the companion app",
        step.id,
        a.account,
        if a.granted { "gave" } else { "withdrew" },
        a.purpose
    ));
    let mut attempt = offer_attempt(ctx, &a.purpose, outcome, BTreeMap::new());
    attempt.args = BTreeMap::from([
        ("account".to_string(), a.account.clone()),
        ("purpose".to_string(), a.purpose.clone()),
        ("granted".to_string(), a.granted.to_string()),
    ]);
    record(ctx, step, attempt, 1);
    Ok(())
}

/// Put the step's fault in force until step `until` has run (one held fault at a time).
fn hold_fault(ctx: &mut Ctx, step: &Step, until: &str) -> Result<(), Stop> {
    ctx.end_held_fault();
    let fault = ctx.scenario.faults[&step.id];
    let c = ctx
        .bench
        .cloud()
        .ok_or_else(|| Stop::not_tested("no mock cloud"))?;
    // In force at most until the case's budget runs out; cleared after `until` in any case.
    let length = ctx.deadline.map_or(Duration::from_secs(600), |(at, _)| {
        at.saturating_duration_since(std::time::Instant::now())
    });
    ctx.note_all(&format!(
        "step {}: cloud fault {} until step {until} has run",
        step.id, fault.name
    ));
    ctx.held = Some(cloud::hold_fault(c, fault, length, until));
    Ok(())
}

/// Put the step's update variant on the mock update server and record what was offered as the step's
/// attempt: its captures (version, digests, URL) are evidence and variables for later steps.
fn offer_update(ctx: &mut Ctx, step: &Step, of: usize) -> Result<(), Stop> {
    let profile = ctx.bench.profile();
    let c = ctx
        .bench
        .cloud()
        .ok_or_else(|| Stop::not_tested("no mock cloud to serve the update from"))?;
    let Some(variant) = ctx.scenario.offers[&step.id] else {
        c.state.withdraw_update();
        ctx.note_all(&format!("step {}: update offer withdrawn", step.id));
        let attempt = offer_attempt(ctx, "nothing", "withdrawn", BTreeMap::new());
        record(ctx, step, attempt, of);
        return Ok(());
    };
    let offered =
        crate::updates::offer(c, profile, variant).map_err(|crate::updates::Unmakeable(why)| {
            Stop(Verdict::Error, format!("step {}: {why}", step.id))
        })?;
    ctx.offered = true;
    ctx.note_all(&format!(
        "step {}: update {} offered ({} at {})",
        step.id,
        variant.name(),
        offered.version,
        offered.url
    ));
    if let Some(m) = &offered.manifest {
        ctx.offers.push((step.id.clone(), m.clone()));
    }
    let attempt = offer_attempt(ctx, variant.name(), "offered", offered.captures());
    record(ctx, step, attempt, of);
    Ok(())
}

/// The record of a step the harness carries out itself (an offer, an app request), as an attempt.
fn offer_attempt(
    ctx: &Ctx,
    variant: &str,
    outcome: &str,
    captures: BTreeMap<String, String>,
) -> Attempt {
    Attempt {
        iteration: 0,
        args: BTreeMap::from([("variant".to_string(), variant.to_string())]),
        outcome: Some(outcome.into()),
        captures,
        at_ms: ms(ctx.t0.elapsed()),
        elapsed_ms: 0.0,
        retries: 0,
        conforms: None,
        error: None,
        sends: None,
    }
}

fn run_attempt(
    ctx: &mut Ctx,
    scope: &Scope,
    step: &Step,
    action: &str,
    with: &BTreeMap<String, VarTemplate>,
    of: usize,
) -> Result<(), Stop> {
    let mut args = BTreeMap::new();
    for (k, t) in with {
        let v = scope
            .render(t)
            .map_err(|e| Stop::not_tested(format!("step {}: {e}", step.id)))?;
        args.insert(k.clone(), v);
    }
    // A value rendered from a secret, or giving one away even though it came from elsewhere (a
    // derived or default candidate that is the password, its upper-case form, its first 8
    // characters), is shown as `‹secret›` and masked in every transcript, log and evidence file.
    let masked: Vec<(String, String)> = args
        .iter()
        .filter(|(_, v)| v.secret || reveals(&v.text, &ctx.secrets))
        .map(|(k, v)| (k.clone(), v.text.clone()))
        .collect();
    let shown: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| {
            let text = if masked.iter().any(|(m, _)| m == k) {
                "‹secret›".into()
            } else {
                v.text.clone()
            };
            (k.clone(), text)
        })
        .collect();
    let binding = &ctx.bench.profile().bindings[action];
    let kind = hilt_model::vocabulary::action(action).map(|a| a.kind);
    let link = binding.link.clone();
    match kind {
        Some(ActionKind::ListUsb) => {
            return super::usb_step::list(ctx, step, action, &link, scope.iteration, of);
        }
        Some(ActionKind::SurveyBle) => {
            return super::ble_step::survey(ctx, step, action, &link, scope.iteration, of);
        }
        Some(ActionKind::PowerCycle) => {
            return super::power_step::cycle(ctx, step, action, &link, scope.iteration, of);
        }
        _ => {}
    }
    if binding.script.is_empty() {
        // A memory link's binding: the link reads its regions.
        let unit = scope
            .row
            .and_then(|r| r.get("unit"))
            .and_then(|n| n.parse::<usize>().ok())
            .map_or(0, |n| n.saturating_sub(1));
        return super::memory_step::read(ctx, step, action, (&link, unit), scope.iteration, of);
    }
    open_link(ctx, &binding.link)?;
    mask_everywhere(ctx, &binding.link, &masked);
    let n = scope.iteration + 1;
    let console = ctx.consoles.get_mut(&binding.link).expect("opened above");
    console.note(&format!("step {} #{n}: {action}", step.id));
    let mut attempt = new_attempt(ctx, scope.iteration, shown);
    let describe = |a: &Attempt| {
        let shown: Vec<String> = a.args.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        format!("step {} attempt {n} ({})", step.id, shown.join(", "))
    };
    loop {
        let console = ctx.consoles.get_mut(&binding.link).expect("opened above");
        let obs = match run_binding(console, binding, &args) {
            Ok(obs) => obs,
            Err(e) => {
                let stop = if is_cancelled(&e) {
                    ctx.checkpoint().err().unwrap_or_else(Stop::interrupted)
                } else {
                    Stop(Verdict::Error, format!("{}: {e}", describe(&attempt)))
                };
                attempt.error = Some(e.to_string());
                record(ctx, step, attempt, of);
                return Err(stop);
            }
        };
        attempt.outcome = obs.outcome.clone();
        attempt.captures = obs.captures;
        attempt.sends = Some(obs.sends);
        attempt.elapsed_ms = ms(obs.elapsed);
        let retry_on = step
            .retry
            .as_ref()
            .filter(|r| obs.outcome.as_ref().is_some_and(|o| r.on.contains(o)));
        let Some(r) = retry_on else { break };
        if attempt.retries >= r.max {
            // The device stays in a state that prevents judging (e.g. locked): the rest of the step
            // would meet the same answer, so the case ends here rather than after every row.
            let why = format!(
                "{}: still {:?} after {} retries; {} further attempt(s) of the step were not made",
                describe(&attempt),
                obs.outcome.as_deref().unwrap_or(""),
                attempt.retries,
                of - n
            );
            record(ctx, step, attempt, of);
            return Err(Stop(Verdict::Inconclusive, why));
        }
        let wait = scope.number(&r.wait_ms).map_err(Stop::not_tested)?;
        let outcome = obs.outcome.as_deref().unwrap_or("");
        ctx.note_all(&format!("outcome {outcome:?}: retrying after {wait} ms"));
        attempt.retries += 1;
        if let Err(stop) = ctx.wait(&step.id, "retry wait", Duration::from_millis(wait)) {
            record(ctx, step, attempt, of);
            return Err(stop);
        }
    }
    let what = describe(&attempt);
    judge_expect(ctx, step, &mut attempt, &what);
    record(ctx, step, attempt, of);
    Ok(())
}

/// An attempt about to be made, now, with the arguments as shown.
pub(super) fn new_attempt(ctx: &Ctx, iteration: usize, args: BTreeMap<String, String>) -> Attempt {
    Attempt {
        iteration,
        args,
        outcome: None,
        captures: BTreeMap::new(),
        at_ms: ms(ctx.t0.elapsed()),
        elapsed_ms: 0.0,
        retries: 0,
        conforms: None,
        error: None,
        sends: None,
    }
}

/// Holds the attempt's outcome against the step's `expect`: a different answer is the device's
/// failure, with the attempt as its evidence.
pub(super) fn judge_expect(ctx: &mut Ctx, step: &Step, attempt: &mut Attempt, what: &str) {
    if step.expect.is_empty() {
        return;
    }
    let ok = attempt
        .outcome
        .as_ref()
        .is_some_and(|o| step.expect.contains(o));
    let answered = format!(
        "{what}: answered {:?}, expected {}",
        attempt.outcome.as_deref().unwrap_or("nothing"),
        step.expect.join(" or ")
    );
    if !ok && let Some(late) = too_late(ctx, step, attempt) {
        // Not the device's failure: the window it declares had passed when the harness asked.
        ctx.inconclusive.push(format!("{answered}, but {late}"));
        return;
    }
    if !ok {
        ctx.failures.push(answered);
    }
    attempt.conforms = Some(ok);
}

/// Why an attempt of a step with `judged_within` is no evidence: it began after the declared window
/// from its reference attempt (or that attempt was never made, or the window cannot be resolved).
fn too_late(ctx: &Ctx, step: &Step, attempt: &Attempt) -> Option<String> {
    let j = step.judged_within.as_ref()?;
    let scope = ctx.scope();
    let (n, window) = match (scope.number(&j.attempt), scope.number(&j.ms)) {
        (Ok(n), Ok(ms)) => (n, ms),
        (Err(e), _) | (_, Err(e)) => return Some(format!("its window could not be resolved: {e}")),
    };
    let Some(from) = ctx
        .steps
        .iter()
        .find(|r| r.id == j.step)
        .and_then(|r| r.attempts.get((n as usize).saturating_sub(1)))
        .map(|a| a.at_ms)
    else {
        return Some(format!(
            "step {} has no attempt {n} to time the {window} ms window from",
            j.step
        ));
    };
    let after = attempt.at_ms - from;
    (after > window as f64).then(|| {
        format!(
            "it began {after:.0} ms after attempt {n} of step {}, past the declared {window} ms: \
             the harness asked too late for the answer to count",
            j.step
        )
    })
}

/// Whether showing `candidate` would give away one of `secrets`: it contains one in any ASCII case
/// (so also when it is a case variant of one), or it is a beginning of one at least 4 characters
/// long (a truncated password leaves only the rest to guess).
fn reveals(candidate: &str, secrets: &[(String, String)]) -> bool {
    secrets
        .iter()
        .any(|(s, _)| hilt_link::reveals(candidate.as_bytes(), s.as_bytes()))
}

/// Before anything is sent: mask the values `masked` (argument name, value) in the console's
/// transcript, in the mock cloud's evidence and in the board's logged output. The case's own secrets
/// are registered once, when the case starts and when a link opens; a value masked here joins them, so
/// links opened later mask it too and checks know which marker stands for it.
fn mask_everywhere(ctx: &mut Ctx, link: &str, masked: &[(String, String)]) {
    for (label, secret) in masked {
        if let Some(console) = ctx.consoles.get_mut(link) {
            console.add_secret(secret.as_bytes(), label);
        }
        ctx.bench.mask(secret, label);
        if !ctx.secrets.iter().any(|(s, l)| s == secret && l == label) {
            ctx.secrets.push((secret.clone(), label.clone()));
        }
    }
}

fn open_link(ctx: &mut Ctx, link: &str) -> Result<(), Stop> {
    if ctx.consoles.contains_key(link) {
        return Ok(());
    }
    let mut c = ctx
        .bench
        .open_console(link, ctx.ctl.cancel.clone())
        .map_err(|(verdict, why)| Stop(verdict, why))?;
    for (secret, label) in &ctx.secrets {
        c.add_secret(secret.as_bytes(), label);
    }
    ctx.consoles.insert(link.to_string(), c);
    Ok(())
}

pub(super) fn record(ctx: &mut Ctx, step: &Step, attempt: Attempt, of: usize) {
    // Later steps may use what this attempt captured (`{step.ID.NAME}`).
    if !attempt.captures.is_empty() {
        let vars = Arc::make_mut(&mut ctx.vars);
        for (name, value) in &attempt.captures {
            vars.captures
                .insert((step.id.clone(), name.clone()), value.clone());
        }
    }
    ctx.ctl.events.event(&RunEvent::AttemptRecorded {
        case: &ctx.scenario.id,
        step: &step.id,
        n: attempt.iteration + 1,
        of,
        outcome: attempt.outcome.as_deref(),
    });
    ctx.steps
        .last_mut()
        .expect("the step's record is pushed before its attempts")
        .attempts
        .push(attempt);
}

fn is_cancelled(e: &ActionError) -> bool {
    matches!(
        e,
        ActionError::NoAnswer {
            source: hilt_link::ExpectError::Cancelled { .. },
            ..
        } | ActionError::Link {
            source: hilt_link::LinkError::Cancelled,
            ..
        }
    )
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod reveal_tests {
    use super::reveals;

    #[test]
    fn a_value_reveals_a_secret_it_contains_in_any_case_or_begins() {
        let secrets = [
            ("2a7438eda0cd".to_string(), "unit-secret-1".to_string()),
            ("Zq8hunter2Xy".to_string(), "unit-secret-2".to_string()),
        ];
        for shown_masked in [
            "2a7438eda0cd",
            "2A7438EDA0CD",
            "2a7438eda0cdb42a1f",
            "2A7438EDA0CDB42A",
            "2a7438ed",
            "2A7438EDA0",
            "2a74",
            "zq8HUNTER2xy",
            "user:Zq8hunter2Xy!",
        ] {
            assert!(reveals(shown_masked, &secrets), "{shown_masked}");
        }
        for shown_plain in ["2a7", "7438eda0", "admin", "VRB-00000001", "hunter2", ""] {
            assert!(!reveals(shown_plain, &secrets), "{shown_plain}");
        }
        assert!(!reveals("anything", &[]));
    }

    #[test]
    fn a_number_rendered_from_a_secret_is_not_shown_in_its_error() {
        use crate::exec::{CaseVars, Scope};
        use hilt_model::scenario::Number;
        let profile = crate::exec::tests::profile();
        let bench = crate::fake::FakeBench::new(profile).password("console", "Zq8hunter2Xy");
        let scope = Scope::new(&bench, std::sync::Arc::new(CaseVars::default()));
        let number = |t: &str| Number::Ref(hilt_model::template::Template::parse(t).unwrap());
        let err = scope
            .number(&number("{cred.console.password}"))
            .unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.starts_with("‹secret› is not a whole number"), "{err}");
        let err = scope
            .number(&number("{cred.console.username}"))
            .unwrap_err();
        assert!(err.starts_with("\"admin\" is not a whole number"), "{err}");
    }
}
