//! `lockout-duration`: the lockout a login step ran into ends about when the IXIT declares
//! (`lockout_ms`), so the owner gets back in (EN 303 645 5.1-5 makes guessing impracticable; it does
//! not let the protection lock the legitimate user out for good).
//!
//! Timed from the case's own attempts, with bounds no bench slowness can stretch against the device:
//!
//! - the lockout began no later than the end of the first attempt of step `guesses` answered with a
//!   lockout outcome;
//! - it was still on when every later attempt answered with a lockout outcome started (the device
//!   decides after the attempt starts). In step `owner`, which retries the owner's credential on
//!   lockout outcomes only, the retried tries were all answered so, and its k-th try started no sooner
//!   than k retry waits after the attempt began.
//!
//! The device is FAIL when it was provably still locked out more than twice the declared lockout after
//! it began: it keeps the owner out far longer than it declares. A slow bench only makes these bounds
//! smaller, so it can never produce that FAIL; the owner refused or still locked out without such proof
//! is INCONCLUSIVE. Otherwise the owner's acceptance is a PASS, and the reason states the bounds.

use hilt_model::Verdict;
use hilt_model::scenario::Number;
use hilt_model::vocabulary::ActionSpec;
use hilt_report::model::{Attempt, StepRecord};
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Params};

pub const KIND: Kind = Kind {
    name: "lockout-duration",
    parse,
};

/// How much longer than declared a lockout may provably last before it is the device's FAIL.
const FAR_LONGER: u64 = 2;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockoutDuration {
    /// The step whose failures trip the lockout: its first lockout answer dates the lockout.
    guesses: String,
    /// The later step that retries the owner's credential until the lockout is over.
    owner: String,
    /// The declared lockout.
    lockout_ms: Number,
    #[serde(skip)]
    action: Option<&'static ActionSpec>,
    /// The owner step's wait between retries.
    #[serde(skip)]
    retry_wait_ms: Option<Number>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let mut c: LockoutDuration = p.get()?;
    p.lockout_step(&c.guesses)?;
    let (owner, spec) = p.lockout_step(&c.owner)?;
    let at = |id: &str| p.scenario.steps.iter().position(|s| s.id == id);
    if at(&c.owner) <= at(&c.guesses) {
        return Err(format!(
            "step {:?} must come after step {:?}, whose failures start the lockout",
            c.owner, c.guesses
        ));
    }
    let retry = owner
        .retry
        .as_ref()
        .filter(|r| !r.on.is_empty() && r.on.iter().all(|o| spec.is_lockout(o)));
    let Some(retry) = retry else {
        return Err(format!(
            "step {:?} must retry on lockout outcomes only (retry = {{ on = [\"{}\"], wait_ms = …, max = … }}), so the end of the lockout can be timed",
            c.owner,
            spec.lockouts.join("\", \"")
        ));
    };
    c.retry_wait_ms = Some(retry.wait_ms.clone());
    c.action = Some(spec);
    Ok(Box::new(c))
}

impl Check for LockoutDuration {
    fn numbers(&self) -> Vec<&Number> {
        let mut n = vec![&self.lockout_ms];
        n.extend(&self.retry_wait_ms);
        n
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let declared = match ev.number(&self.lockout_ms) {
            Ok(n) => n,
            Err(j) => return j,
        };
        let wait = match self.retry_wait_ms.as_ref().map(|n| ev.number(n)) {
            Some(Ok(n)) => n,
            Some(Err(j)) => return j,
            None => 0,
        };
        for id in [&self.guesses, &self.owner] {
            if let Err(j) = ev.step(id) {
                return j;
            }
        }
        let spec = self.action.expect("set at parse");
        judge(
            spec,
            ev.steps,
            Steps {
                guesses: &self.guesses,
                owner: &self.owner,
            },
            declared,
            wait,
        )
    }
}

/// The ids of the two steps the check reads.
#[derive(Debug, Clone, Copy)]
struct Steps<'a> {
    guesses: &'a str,
    owner: &'a str,
}

fn judge(
    spec: &ActionSpec,
    steps: &[StepRecord],
    ids: Steps,
    declared: u64,
    wait_ms: u64,
) -> Judgement {
    let inconclusive = |why: String| (Verdict::Inconclusive, why);
    let (Some(g), Some(o)) = (
        steps.iter().position(|s| s.id == ids.guesses),
        steps.iter().position(|s| s.id == ids.owner),
    ) else {
        return inconclusive(format!(
            "missing evidence: step {:?} or {:?} did not run",
            ids.guesses, ids.owner
        ));
    };
    let is_locked = |a: &Attempt| a.outcome.as_deref().is_some_and(|x| spec.is_lockout(x));
    let guessed = &steps[g].attempts;
    let Some(i) = guessed.iter().position(is_locked) else {
        return inconclusive(format!(
            "missing evidence: no attempt of step {:?} was answered with a lockout ({}), so there is no lockout to time",
            ids.guesses,
            spec.lockouts.join(", ")
        ));
    };
    let first = &guessed[i];
    let began_by = first.at_ms + first.elapsed_ms;
    let Some(owner) = steps[o].attempts.last() else {
        return inconclusive(format!(
            "missing evidence: step {:?} made no attempt",
            ids.owner
        ));
    };
    // The latest moment the device was seen locked out, from the first lockout answer to the owner's
    // last try.
    let mut locked_at = steps[g..o]
        .iter()
        .flat_map(|s| &s.attempts)
        .chain(&steps[o].attempts[..steps[o].attempts.len() - 1])
        .filter(|a| is_locked(a))
        .map(|a| a.at_ms)
        .fold(first.at_ms, f64::max);
    if owner.retries > 0 || is_locked(owner) {
        // Every retried try was answered with a lockout, and try k began k waits or more after at_ms.
        // Let in after r retries: tries 0..r-1 were locked. Still locked after r retries: a wait cut
        // short (budget, interruption) counts a retry without its try, so only tries 0..r-1 are sure.
        let last_locked_try = u64::from(owner.retries.saturating_sub(1));
        locked_at = locked_at.max(owner.at_ms + (last_locked_try * wait_ms) as f64);
    }
    let held_at_least = (locked_at - began_by).max(0.0);
    let limit = declared.saturating_mul(FAR_LONGER);
    if held_at_least > limit as f64 {
        return (
            Verdict::Fail,
            format!(
                "the device was still locked out at least {held_at_least:.0} ms after the lockout began, more than {FAR_LONGER}× the {declared} ms the IXIT declares: the owner is kept out far longer than declared"
            ),
        );
    }
    let outcome = owner.outcome.as_deref();
    match outcome {
        Some(x) if spec.is_lockout(x) => inconclusive(format!(
            "the owner was still locked out after {} retries, {held_at_least:.0} ms or more after the lockout began (declared: {declared} ms); the end of the lockout could not be timed",
            owner.retries
        )),
        Some(x) if spec.is_refusal(x) => inconclusive(format!(
            "the owner's login was answered {x:?}, so the end of the lockout could not be timed"
        )),
        None => inconclusive(format!(
            "the owner's login got no answer ({}), so the end of the lockout could not be timed",
            owner.error.as_deref().unwrap_or("no outcome")
        )),
        Some(x) => {
            let ended_by = steps[o].ended_ms.unwrap_or(owner.at_ms + owner.elapsed_ms);
            // The device answered the attempt before the first lockout answer without one, so the
            // lockout began after that attempt started.
            let began_after = guessed[..i].last().map_or(first.at_ms, |a| a.at_ms);
            (
                Verdict::Pass,
                format!(
                    "the owner was let in ({x:?}) at most {:.0} ms after the lockout began (declared: {declared} ms), after {} retries; the device was last seen locked out {held_at_least:.0} ms in",
                    (ended_by - began_after).max(0.0),
                    owner.retries
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::step;
    use hilt_model::vocabulary;

    const IDS: Steps = Steps {
        guesses: "guesses",
        owner: "owner",
    };

    /// A step `id` whose attempts had these outcomes, started at `at_ms`, answered in `elapsed_ms`,
    /// after `retries` retries.
    fn record(id: &str, attempts: &[(&str, f64, f64, u32)]) -> StepRecord {
        let untimed: Vec<(&str, f64)> = attempts.iter().map(|(o, _, ms, _)| (*o, *ms)).collect();
        let mut s = step(&untimed);
        s.id = id.into();
        for (a, (_, at, _, r)) in s.attempts.iter_mut().zip(attempts) {
            a.at_ms = *at;
            a.retries = *r;
        }
        s.started_ms = attempts.first().map_or(0.0, |a| a.1);
        s.ended_ms = attempts.last().map(|a| a.1 + a.2);
        s
    }

    /// Two failures trip a lockout first answered at 20 ms; the owner is retried from `owner_at` with
    /// 1000 ms waits; 1000 ms are declared.
    fn case(owner: (&str, f64, f64, u32)) -> Vec<StepRecord> {
        vec![
            record(
                "guesses",
                &[
                    ("rejected", 0.0, 10.0, 0),
                    ("rejected", 10.0, 10.0, 0),
                    ("locked", 20.0, 1.0, 0),
                ],
            ),
            record("probe", &[("locked", 25.0, 1.0, 0)]),
            record("owner", &[owner]),
        ]
    }

    fn judged(steps: &[StepRecord]) -> Judgement {
        let login = vocabulary::action("login").unwrap();
        judge(login, steps, IDS, 1000, 1000)
    }

    #[test]
    fn parameters_are_checked_against_the_scenario() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let path = root.join("test-cases/brute-force/console-lockout.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let typed = |t: &str| {
            let s = hilt_model::scenario::Scenario::parse(
                std::path::Path::new("s.toml"),
                t,
                &root.join("fixtures"),
            )
            .map_err(|e| e.to_string())?;
            crate::checks::type_checks(&s)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        typed(&text).unwrap();
        let owner = "owner = \"owner-can-log-in\"";
        let err = typed(&text.replace(owner, "owner = \"owner-locked-out\"")).unwrap_err();
        assert!(
            err.starts_with("s.toml:") && err.contains("must retry on lockout outcomes only"),
            "{err}"
        );
        let err = typed(&text.replace("on = [\"locked\"]", "on = [\"locked\", \"rejected\"]"))
            .unwrap_err();
        assert!(err.contains("must retry on lockout outcomes only"), "{err}");
        let err = typed(&text.replace(owner, "owner = \"logout\"")).unwrap_err();
        assert!(err.contains("no refusal and lockout"), "{err}");
        let err = typed(&text.replace("guesses = \"guesses\"", "guesses = \"owner-can-log-in\""))
            .unwrap_err();
        assert!(
            err.contains("must come after step \"owner-can-log-in\""),
            "{err}"
        );
        let err = typed(&text.replace(owner, "owner = \"nowhere\"")).unwrap_err();
        assert!(err.contains("\"nowhere\" is no step"), "{err}");
    }

    #[test]
    fn owner_let_in_after_the_declared_lockout_passes() {
        let (v, why) = judged(&case(("accepted", 1030.0, 5.0, 0)));
        assert_eq!(v, Verdict::Pass, "{why}");
        // From the start of the last attempt answered before the lockout (10 ms) to the owner's answer.
        assert!(why.contains("at most 1025 ms"), "{why}");
        assert!(why.contains("last seen locked out 4 ms in"), "{why}");
    }

    #[test]
    fn a_little_longer_than_declared_is_no_fail() {
        // Locked at the try at 1030 ms, let in at the retry 1000 ms later.
        let (v, why) = judged(&case(("accepted", 1030.0, 5.0, 1)));
        assert_eq!(v, Verdict::Pass, "{why}");
        assert!(why.contains("last seen locked out 1009 ms in"), "{why}");
    }

    #[test]
    fn locked_out_far_longer_than_declared_fails() {
        // Still locked at the tries at 1030 and 2030 ms, let in only at the third: locked at least
        // 2009 ms after the lockout began, over twice the declared 1000 ms.
        let (v, why) = judged(&case(("accepted", 1030.0, 5.0, 2)));
        assert_eq!(v, Verdict::Fail, "{why}");
        assert!(why.contains("at least 2009 ms"), "{why}");
        // The owner never let in: still FAIL when the proof is there, INCONCLUSIVE when it is not.
        // Retries exhausted: 3 retries counted, only the first 3 tries are sure (the last wait may
        // have been cut short), the latest at 3030 ms.
        let (v, why) = judged(&case(("locked", 1030.0, 1.0, 3)));
        assert_eq!(v, Verdict::Fail, "{why}");
        assert!(why.contains("at least 3009 ms"), "{why}");
        let (v, why) = judged(&case(("locked", 1030.0, 1.0, 1)));
        assert_eq!(v, Verdict::Inconclusive, "{why}");
        assert!(why.contains("could not be timed"), "{why}");
    }

    #[test]
    fn refused_owner_or_missing_evidence_is_inconclusive() {
        let (v, why) = judged(&case(("rejected", 1030.0, 5.0, 0)));
        assert_eq!(v, Verdict::Inconclusive, "{why}");
        let (v, why) = judged(&[]);
        assert_eq!(v, Verdict::Inconclusive);
        assert!(why.contains("missing evidence"), "{why}");
        // No lockout at all (the throttled check judges such a device).
        let mut steps = case(("accepted", 1030.0, 5.0, 0));
        steps[0] = record("guesses", &[("rejected", 0.0, 1.0, 0); 3]);
        let (v, why) = judged(&steps);
        assert_eq!(v, Verdict::Inconclusive);
        assert!(why.contains("no lockout to time"), "{why}");
        // The owner step made no attempt.
        let mut steps = case(("accepted", 1030.0, 5.0, 0));
        steps[2].attempts.clear();
        let (v, why) = judged(&steps);
        assert_eq!(v, Verdict::Inconclusive);
        assert!(why.contains("made no attempt"), "{why}");
    }
}
