//! A case's time budget: the longest the case can take on a device that answers every step as slowly
//! as its profile and the IXIT allow (every expect to its timeout, every retry and wait in full), plus a
//! margin. A case still running past it ends INCONCLUSIVE with the evidence so far, so a device that
//! misbehaves in a way no timeout catches cannot hold a run forever. The budget is stated in the report.

use hilt_model::profile::{Binding, Script, StepKind};
use hilt_model::scenario::StepWhat;
use std::time::Duration;

use super::binding::drain_bound;
use super::steps::Planned;
use super::{Ctx, Stop};

/// Added to every budget: launching links, scheduling, a loaded machine.
const MARGIN: Duration = Duration::from_secs(30);

pub(super) fn of(ctx: &Ctx, plan: &[Planned]) -> Result<Duration, Stop> {
    let scope = ctx.scope();
    let mut total_ms: u64 = 0;
    for (step, planned) in ctx.scenario.steps.iter().zip(plan) {
        let once = match &step.what {
            StepWhat::Action { name, .. } => ctx
                .bench
                .profile()
                .bindings
                .get(name)
                .map_or(0, worst_case_ms),
            StepWhat::Sleep { ms: n, .. } | StepWhat::CloudFault { for_ms: n, .. } => {
                scope.number(n).map_err(Stop::not_tested)?
            }
            StepWhat::WaitFlow(w) => scope.number(&w.timeout_ms).map_err(Stop::not_tested)?,
            // A held fault lasts through the steps it surrounds, which are counted themselves.
            StepWhat::OfferUpdate(_) | StepWhat::CloudFaultUntil { .. } => 0,
            // One bounded request.
            StepWhat::AppConsent(_) => 10_000,
        };
        let retries = match &step.retry {
            Some(r) => {
                let wait = scope.number(&r.wait_ms).map_err(Stop::not_tested)?;
                u64::from(r.max).saturating_mul(once.saturating_add(wait))
            }
            None => 0,
        };
        let per_iteration = once.saturating_add(retries);
        total_ms = total_ms.saturating_add(per_iteration.saturating_mul(planned.count as u64));
    }
    Ok(Duration::from_millis(total_ms).saturating_add(MARGIN))
}

/// The longest one run of a binding can take: every expect to its timeout, every sleep, every drain
/// to its bound.
fn worst_case_ms(b: &Binding) -> u64 {
    script_ms(&b.script, b.timeout_ms)
}

fn script_ms(script: &Script, default_timeout_ms: u64) -> u64 {
    script
        .iter()
        .map(|s| match &s.kind {
            StepKind::Expect(e) => e.timeout_ms.unwrap_or(default_timeout_ms),
            StepKind::SleepMs(ms) => *ms,
            StepKind::DrainMs(quiet) => {
                drain_bound(Duration::from_millis(*quiet)).as_millis() as u64
            }
            StepKind::Send(_) => 0,
            StepKind::Block(inner) => script_ms(inner, default_timeout_ms),
        })
        .fold(0, u64::saturating_add)
}
