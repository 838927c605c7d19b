//! Applicability and preconditions, failing closed: anything the profile cannot decide (an undeclared
//! feature, a missing binding, an IXIT value or credential it does not supply) is NOT_TESTED, and only
//! the ICS can make a case NOT_APPLICABLE.

use hilt_model::Verdict;
use hilt_model::ics::Decision;
use hilt_model::scenario::{Check, Number, Scenario, StepWhat};

use super::vars::Scope;
use super::{Bench, Stop};

pub(super) fn check(bench: &dyn Bench, s: &Scenario) -> Result<(), Stop> {
    let ics = &bench.profile().ics;
    match ics.decide(
        &s.applicability.features,
        &s.applicability.conditions,
        &s.provisions.en303645,
    ) {
        Decision::Applies => {}
        Decision::NotApplicable(r) => return Err(Stop(Verdict::NotApplicable, r)),
        Decision::Undecided(r) => {
            return Err(Stop::not_tested(format!("applicability undecided: {r}")));
        }
    }
    if s.needs_cloud() && bench.cloud().is_none() {
        return Err(Stop::not_tested(
            "the scenario needs the mock cloud, and the board profile declares no cloud link",
        ));
    }
    let scope = Scope {
        bench,
        row: None,
        iteration: 0,
    };
    for step in &s.steps {
        let at = |e: String| Stop::not_tested(format!("step {}: {e}", step.id));
        if let StepWhat::Action { name, with } = &step.what {
            if !bench.profile().bindings.contains_key(name) {
                return Err(Stop::not_tested(format!(
                    "the board profile has no binding for action {name:?}"
                )));
            }
            for t in with.values() {
                for v in t.vars().filter(|v| !v.starts_with("row.")) {
                    scope.resolve(v).map_err(at)?;
                }
            }
        }
        for n in step_numbers(&step.what)
            .chain(step.repeat.iter())
            .chain(step.retry.iter().map(|r| &r.wait_ms))
        {
            scope.number(n).map_err(at)?;
        }
    }
    for c in &s.checks {
        let at = |e: String| Stop::not_tested(format!("check {}: {e}", c.name()));
        if let Check::CaptureEquals { expected, .. } = c {
            scope.render(expected).map_err(at)?;
        }
        for n in check_numbers(c) {
            scope.number(n).map_err(at)?;
        }
    }
    Ok(())
}

fn step_numbers(what: &StepWhat) -> impl Iterator<Item = &Number> {
    let n = match what {
        StepWhat::Sleep(n) | StepWhat::CloudFault { for_ms: n, .. } => Some(n),
        StepWhat::WaitFlow(w) => Some(&w.timeout_ms),
        StepWhat::Action { .. } => None,
    };
    n.into_iter()
}

fn check_numbers(c: &Check) -> Vec<&Number> {
    match c {
        Check::Throttled {
            after,
            min_delay_ms,
            ..
        } => vec![after, min_delay_ms],
        Check::OrderlyReconnect { max_attempts_per_s } => vec![max_attempts_per_s],
        Check::CaptureEquals { .. }
        | Check::TlsOnly
        | Check::RefusesUntrustedCert
        | Check::FlowsDeclared => vec![],
    }
}
