//! An action bound to a ble link (`survey-ble`): as anyone in radio range could, unpaired — the
//! advertisement, the GATT table and every readable value — kept for the checks. Outcome `surveyed`;
//! captures `services` (how many) and `readable` (how many characteristics gave a value). No radio
//! or a device not heard in the scan is NOT_TESTED; a connection that breaks is ERROR.

use std::collections::BTreeMap;
use std::time::Instant;

use hilt_link::ble::BleError;
use hilt_model::scenario::Step;

use super::steps::{judge_expect, ms, new_attempt, record};
use super::{Ctx, Stop};
use crate::ble::{BleSurvey, ReadResult};

pub(super) fn survey(
    ctx: &mut Ctx,
    step: &Step,
    action: &str,
    link: &str,
    iteration: usize,
    of: usize,
) -> Result<(), Stop> {
    let plan = ctx
        .bench
        .ble_plan(link)
        .map_err(|e| Stop::not_tested(format!("step {}: {e}", step.id)))?;
    ctx.note_all(&format!(
        "step {}: {action} over ble link {link} (looking for {})",
        step.id, plan.filter
    ));
    let args = BTreeMap::from([("link".to_string(), link.to_string())]);
    let mut attempt = new_attempt(ctx, iteration, args);
    let started = Instant::now();
    let result = plan.survey(&ctx.ctl.cancel);
    attempt.elapsed_ms = ms(started.elapsed());
    let survey = match result {
        Ok(s) => s,
        Err(e) => {
            attempt.error = Some(e.to_string());
            record(ctx, step, attempt, of);
            let stop = match e {
                BleError::Cancelled => ctx.checkpoint().err().unwrap_or_else(Stop::interrupted),
                e => Stop(
                    crate::ble::trouble(&e),
                    format!("step {} ({action} over {link}): {e}", step.id),
                ),
            };
            return Err(stop);
        }
    };
    attempt.outcome = Some("surveyed".into());
    attempt.captures = BTreeMap::from([
        ("services".to_string(), survey.services.len().to_string()),
        ("readable".to_string(), survey.readable().to_string()),
    ]);
    ctx.ble.insert(step.id.clone(), survey);
    let what = format!("step {} ({action} over {link})", step.id);
    judge_expect(ctx, step, &mut attempt, &what);
    record(ctx, step, attempt, of);
    Ok(())
}

/// Each survey as `ble-STEP.json`: the advertisement, the GATT table and each read, its value as hex
/// (and as text when printable) — a value giving away one of the case's secrets is withheld.
pub(super) fn evidence(ctx: &Ctx) -> Vec<super::EvidenceFile> {
    ctx.ble
        .iter()
        .map(|(step, survey)| super::EvidenceFile {
            name: format!("ble-{step}.json"),
            bytes: serde_json::to_vec_pretty(&shown(survey, &ctx.secrets)).unwrap_or_default(),
            media_type: "application/json".into(),
            description: format!(
                "what an unpaired central learnt over BLE: advertisement, GATT table, readable values (step {step:?})"
            ),
        })
        .collect()
}

fn shown(survey: &BleSurvey, secrets: &[(String, String)]) -> serde_json::Value {
    let reveals = |bytes: &[u8]| {
        secrets
            .iter()
            .any(|(s, _)| hilt_link::reveals(bytes, s.as_bytes()))
    };
    let reads: Vec<serde_json::Value> = survey
        .reads
        .iter()
        .map(|r| {
            let result = match &r.result {
                ReadResult::Value(v) if reveals(v) => {
                    serde_json::json!({ "value": "‹secret›", "withheld": "it gives away a secret of the case" })
                }
                ReadResult::Value(v) => {
                    let text = std::str::from_utf8(v)
                        .ok()
                        .filter(|t| t.chars().all(|c| !c.is_control()));
                    serde_json::json!({ "hex": hex::encode(v), "text": text })
                }
                ReadResult::Refused(att) => serde_json::json!({ "refused": att }),
                ReadResult::Failed(why) => serde_json::json!({ "failed": why }),
            };
            serde_json::json!({ "service": r.service, "char": r.char, "result": result })
        })
        .collect();
    let mut advert = serde_json::to_value(&survey.advert).unwrap_or_default();
    if survey.advert.payloads().iter().any(|p| reveals(p)) {
        advert =
            serde_json::json!({ "withheld": "the advertisement gives away a secret of the case" });
    }
    serde_json::json!({
        "link": survey.link,
        "advert": advert,
        "services": survey.services,
        "reads": reads,
    })
}
