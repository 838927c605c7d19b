//! An action bound to a usb link (`list-usb`): the unit's device found on the bus by its identity
//! and its descriptors kept for the checks. Outcome `present`; its capture `interfaces` lists each
//! interface's number and kind. A machine without a USB bus or a device not attached is NOT_TESTED;
//! a bus that cannot be listed is ERROR; neither is the device's FAIL.

use std::collections::BTreeMap;
use std::time::Instant;

use hilt_model::scenario::Step;

use super::steps::{judge_expect, ms, new_attempt, record};
use super::{Ctx, Stop};
use crate::usb::UsbListing;

pub(super) fn list(
    ctx: &mut Ctx,
    step: &Step,
    action: &str,
    link: &str,
    iteration: usize,
    of: usize,
) -> Result<(), Stop> {
    let plan = ctx
        .bench
        .usb_plan(link)
        .map_err(|e| Stop::not_tested(format!("step {}: {e}", step.id)))?;
    ctx.note_all(&format!(
        "step {}: {action} over usb link {link} ({})",
        step.id, plan.identity
    ));
    let args = BTreeMap::from([("link".to_string(), link.to_string())]);
    let mut attempt = new_attempt(ctx, iteration, args);
    let started = Instant::now();
    let found = plan.find();
    attempt.elapsed_ms = ms(started.elapsed());
    let device = match found {
        Ok(d) => d,
        Err((verdict, why)) => {
            attempt.error = Some(why.clone());
            record(ctx, step, attempt, of);
            return Err(Stop(verdict, format!("step {}: {why}", step.id)));
        }
    };
    let listing = UsbListing::new(link, device);
    let shown: Vec<String> = listing
        .kinds
        .iter()
        .map(|(n, k)| format!("{n}:{}", crate::usb::kind_name(*k)))
        .collect();
    attempt.outcome = Some("present".into());
    attempt.captures = BTreeMap::from([("interfaces".to_string(), shown.join(" "))]);
    ctx.usb.insert(step.id.clone(), listing);
    let what = format!("step {} ({action} over {link})", step.id);
    judge_expect(ctx, step, &mut attempt, &what);
    record(ctx, step, attempt, of);
    Ok(())
}

/// Each listing as `usb-STEP.json`: the device's descriptors and each interface's kind.
pub(super) fn evidence(ctx: &Ctx) -> Vec<super::EvidenceFile> {
    ctx.usb
        .iter()
        .map(|(step, listing)| super::EvidenceFile {
            name: format!("usb-{step}.json"),
            bytes: serde_json::to_vec_pretty(listing).unwrap_or_default(),
            media_type: "application/json".into(),
            description: format!(
                "the device's USB descriptors as the host listed them, with each interface's kind (step {step:?})"
            ),
        })
        .collect()
}
