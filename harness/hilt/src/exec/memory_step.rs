//! An action bound to a memory link (`read-storage`, `read-debug-port`): the link's regions read into
//! a snapshot, kept for the checks. The outcome is `read` or `refused` (the device denied access: a
//! locked debug port, readout protection). A source that cannot be reached is the bench's trouble
//! (NOT_TESTED: the probe or dump is absent), anything else on the way is ERROR; neither is the
//! device's FAIL.

use std::collections::BTreeMap;
use std::time::Instant;

use hilt_link::memory::MemoryError;
use hilt_model::Verdict;
use hilt_model::scenario::Step;

use super::steps::{judge_expect, ms, new_attempt, record};
use super::{Ctx, Stop};

/// Reads memory link `link` of unit `unit` (0 = the unit under test) as attempt `iteration`.
pub(super) fn read(
    ctx: &mut Ctx,
    step: &Step,
    action: &str,
    (link, unit): (&str, usize),
    iteration: usize,
    of: usize,
) -> Result<(), Stop> {
    let plan = ctx
        .bench
        .memory_plan(link, unit)
        .map_err(|e| Stop::not_tested(format!("step {}: {e}", step.id)))?;
    ctx.note_all(&format!(
        "step {}: {action} over memory link {link} of unit {}",
        step.id,
        unit + 1
    ));
    let args = BTreeMap::from([
        ("link".to_string(), link.to_string()),
        ("unit".to_string(), (unit + 1).to_string()),
    ]);
    let mut attempt = new_attempt(ctx, iteration, args);
    let started = Instant::now();
    let result = plan.read(ctx.ctl.cancel.clone());
    attempt.elapsed_ms = ms(started.elapsed());
    let what = format!(
        "step {} ({action} over {link} of unit {})",
        step.id,
        unit + 1
    );
    match result {
        Ok(snapshot) => {
            let bytes: usize = snapshot.regions.iter().map(|r| r.bytes.len()).sum();
            attempt.outcome = Some("read".into());
            attempt.captures = BTreeMap::from([
                ("sha256".to_string(), crate::memory::digest(&snapshot)),
                ("bytes".to_string(), bytes.to_string()),
            ]);
            ctx.memory
                .entry(step.id.clone())
                .or_default()
                .push(crate::memory::MemoryRead {
                    unit,
                    plan,
                    snapshot,
                });
        }
        Err(e) if e.is_refusal() => {
            attempt.outcome = Some("refused".into());
            ctx.refusals.push((step.id.clone(), unit, e.to_string()));
        }
        Err(e) => {
            attempt.error = Some(e.to_string());
            let stop = match &e {
                MemoryError::Cancelled => ctx.checkpoint().err().unwrap_or_else(Stop::interrupted),
                MemoryError::Unreachable { .. } => Stop::not_tested(format!("{what}: {e}")),
                _ => Stop(Verdict::Error, format!("{what}: {e}")),
            };
            record(ctx, step, attempt, of);
            return Err(stop);
        }
    }
    judge_expect(ctx, step, &mut attempt, &what);
    record(ctx, step, attempt, of);
    Ok(())
}

/// Each memory read as evidence: `memory-STEP.json` with the source, each region's digest and entropy
/// map (or why the device refused); with the link's `keep_bytes`, `memory-STEP-REGION.bin` too, but
/// only for a region that holds none of the case's secrets in any encoding (else it says so).
pub(super) fn evidence(ctx: &Ctx) -> Vec<super::EvidenceFile> {
    let mut out = Vec::new();
    for (step, unit, reason) in &ctx.refusals {
        let body = serde_json::json!({
            "step": step, "unit": unit + 1, "outcome": "refused", "reason": reason,
        });
        out.push(json_file(
            step,
            *unit,
            &body,
            "the device refused the memory read",
        ));
    }
    // Built only when some link keeps bytes: every other read shows digests alone.
    let keeping = ctx.memory.values().flatten().any(|r| r.plan.keep_bytes);
    let scanner = if keeping { secrets_scanner(ctx) } else { None };
    let reads = ctx
        .memory
        .iter()
        .flat_map(|(s, r)| r.iter().map(move |r| (s, r)));
    for (step, read) in reads {
        let (plan, snapshot, unit) = (&read.plan, &read.snapshot, read.unit);
        let mut summary = crate::memory::SnapshotEvidence::of(step, read);
        let mut withheld = Vec::new();
        if plan.keep_bytes {
            for r in &snapshot.regions {
                if scanner
                    .as_ref()
                    .is_some_and(|s| !s.scan(&r.bytes).is_empty())
                {
                    withheld.push(r.region.name.clone());
                    continue;
                }
                out.push(super::EvidenceFile {
                    name: format!("{}-{}.bin", file_stem(step, unit), r.region.name),
                    bytes: r.bytes.clone(),
                    media_type: "application/octet-stream".into(),
                    description: format!(
                        "region {} ({:#x}, {} bytes) as read in step {step:?}",
                        r.region.name,
                        r.region.start,
                        r.bytes.len()
                    ),
                });
            }
        }
        summary.bytes_kept = plan.keep_bytes && withheld.len() < snapshot.regions.len();
        let mut body = serde_json::to_value(&summary).unwrap_or_default();
        if !withheld.is_empty() {
            body["bytes_withheld"] = serde_json::json!({
                "regions": withheld,
                "why": "they hold a secret of the case (a planted value or a credential) in some encoding",
            });
        }
        out.push(json_file(
            step,
            unit,
            &body,
            "what the memory read got: source, regions with SHA-256 and entropy map",
        ));
    }
    out
}

/// `memory-STEP` for the unit under test, `memory-STEP-unitN` for the others.
fn file_stem(step: &str, unit: usize) -> String {
    match unit {
        0 => format!("memory-{step}"),
        n => format!("memory-{step}-unit{}", n + 1),
    }
}

fn json_file(step: &str, unit: usize, body: &serde_json::Value, what: &str) -> super::EvidenceFile {
    super::EvidenceFile {
        name: format!("{}.json", file_stem(step, unit)),
        bytes: serde_json::to_vec_pretty(body).unwrap_or_default(),
        media_type: "application/json".into(),
        description: format!("{what} (step {step:?})"),
    }
}

/// One scanner over every secret of the case long enough to search for; `None` when there is none.
fn secrets_scanner(ctx: &Ctx) -> Option<hilt_canary::Scanner> {
    let canaries: Vec<hilt_canary::Canary> = ctx
        .secrets
        .iter()
        .filter_map(|(value, label)| hilt_canary::Canary::new(label.clone(), value.clone()).ok())
        .collect();
    if canaries.is_empty() {
        return None;
    }
    hilt_canary::Scanner::new(&canaries).ok()
}
