//! Applicability and preconditions, failing closed: anything the profile cannot decide (an undeclared
//! feature, a missing binding, an IXIT value or credential it does not supply) is NOT_TESTED, and only
//! the ICS can make a case NOT_APPLICABLE.

use hilt_model::Verdict;
use hilt_model::ics::Decision;
use hilt_model::scenario::{Number, StepWhat};

use super::vars::Scope;
use super::{Bench, Stop};
use crate::suite::Case;

pub(super) fn check(bench: &dyn Bench, s: &Case, scope: &Scope) -> Result<(), Stop> {
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
    // Said before the cloud is asked for: a variant the board cannot be offered is the reason to give.
    for (step, variant) in s.offers.iter().filter_map(|(s, v)| Some((s, (*v)?))) {
        crate::updates::makeable(bench.profile(), variant)
            .map_err(|u| Stop::not_tested(format!("step {step}: {}", u.0)))?;
    }
    if s.needs_cloud() && bench.cloud().is_none() {
        return Err(Stop::not_tested(
            "the scenario needs the mock cloud, and the board profile declares no cloud link",
        ));
    }
    for step in &s.steps {
        let at = |e: String| Stop::not_tested(format!("step {}: {e}", step.id));
        if let StepWhat::Action { name, with } = &step.what {
            if !bench.profile().bindings.contains_key(name) {
                return Err(Stop::not_tested(format!(
                    "the board profile has no binding for action {name:?}"
                )));
            }
            for t in with.values() {
                for v in t.vars() {
                    scope.preflight(v).map_err(at)?;
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
        c.preflight(scope)
            .map_err(|e| Stop::not_tested(format!("check {}: {e}", c.kind)))?;
    }
    Ok(())
}

fn step_numbers(what: &StepWhat) -> impl Iterator<Item = &Number> {
    let n = match what {
        StepWhat::Sleep { ms: n, .. } | StepWhat::CloudFault { for_ms: n, .. } => Some(n),
        StepWhat::WaitFlow(w) => Some(&w.timeout_ms),
        StepWhat::Action { .. }
        | StepWhat::OfferUpdate(_)
        | StepWhat::CloudFaultUntil { .. }
        | StepWhat::AppConsent(_) => None,
    };
    n.into_iter()
}
