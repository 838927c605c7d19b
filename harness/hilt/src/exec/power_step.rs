//! An action bound to a power link (`power-cycle`): the device's supply switched off and on. Outcome
//! `cycled`. A bench without the switch is NOT_TESTED; a switch that cannot be worked is ERROR;
//! neither is the device's FAIL. What the device does after it is for the steps that follow.

use std::collections::BTreeMap;
use std::time::Instant;

use hilt_model::Verdict;
use hilt_model::scenario::Step;

use super::steps::{judge_expect, ms, new_attempt, record};
use super::{Ctx, Stop};

pub(super) fn cycle(
    ctx: &mut Ctx,
    step: &Step,
    action: &str,
    link: &str,
    iteration: usize,
    of: usize,
) -> Result<(), Stop> {
    let switch = ctx
        .bench
        .power_switch(link)
        .map_err(|e| Stop::not_tested(format!("step {}: {e}", step.id)))?;
    ctx.note_all(&format!(
        "step {}: {action} over power link {link} ({})",
        step.id,
        switch.describe()
    ));
    let args = BTreeMap::from([("link".to_string(), link.to_string())]);
    let mut attempt = new_attempt(ctx, iteration, args);
    let started = Instant::now();
    let done = switch.cycle();
    attempt.elapsed_ms = ms(started.elapsed());
    if let Err(why) = done {
        attempt.error = Some(why.clone());
        record(ctx, step, attempt, of);
        return Err(Stop(
            Verdict::Error,
            format!(
                "step {}: the power switch could not be worked: {why}",
                step.id
            ),
        ));
    }
    attempt.outcome = Some("cycled".into());
    ctx.note_all(&format!("step {}: power cycled", step.id));
    let what = format!("step {} ({action} over {link})", step.id);
    judge_expect(ctx, step, &mut attempt, &what);
    record(ctx, step, attempt, of);
    Ok(())
}
