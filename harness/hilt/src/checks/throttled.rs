//! `throttled`: after `after` consecutive refusals in a login step, every further attempt is refused as
//! locked, or answered no sooner than `min_delay_ms` (EN 303 645 5.1-5: guessing made impracticable).
//! Which outcomes are refusals and lockouts is the action's vocabulary entry's to say.

use hilt_model::Verdict;
use hilt_model::scenario::Number;
use hilt_model::vocabulary::ActionSpec;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Params};

pub const KIND: Kind = Kind {
    name: "throttled",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Throttled {
    step: String,
    after: Number,
    min_delay_ms: Number,
    #[serde(skip)]
    action: Option<&'static ActionSpec>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let mut c: Throttled = p.get()?;
    let (_, spec) = p.action_step(&c.step)?;
    if spec.refusals.is_empty() || spec.lockouts.is_empty() {
        return Err(format!(
            "step {:?} runs action {}, which reports no refusal and lockout outcomes to judge",
            c.step, spec.name
        ));
    }
    c.action = Some(spec);
    Ok(Box::new(c))
}

impl Check for Throttled {
    fn numbers(&self) -> Vec<&Number> {
        vec![&self.after, &self.min_delay_ms]
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let (record, after, min) = match (
            ev.step(&self.step),
            ev.number(&self.after),
            ev.number(&self.min_delay_ms),
        ) {
            (Ok(r), Ok(a), Ok(m)) => (r, a, m),
            (Err(j), _, _) | (_, Err(j), _) | (_, _, Err(j)) => return j,
        };
        let spec = self.action.expect("set at parse");
        judge(spec, &record.attempts, after, min)
    }
}

fn judge(
    spec: &ActionSpec,
    attempts: &[hilt_report::model::Attempt],
    after: u64,
    min_delay_ms: u64,
) -> Judgement {
    let mut consecutive = 0u64;
    let mut judged = 0usize;
    let mut first_throttle: Option<usize> = None;
    for a in attempts {
        let outcome = a.outcome.as_deref().unwrap_or("");
        if consecutive >= after && a.outcome.is_some() {
            judged += 1;
            let throttled = spec.is_lockout(outcome) || a.elapsed_ms >= min_delay_ms as f64;
            if !throttled {
                return (
                    Verdict::Fail,
                    format!(
                        "attempt {} came after {consecutive} consecutive failures and was answered {outcome:?} in {:.0} ms; expected a lockout ({}) or an answer no sooner than {min_delay_ms} ms",
                        a.iteration + 1,
                        a.elapsed_ms,
                        spec.lockouts.join(", ")
                    ),
                );
            }
            first_throttle.get_or_insert(a.iteration + 1);
        }
        if spec.is_refusal(outcome) || spec.is_lockout(outcome) {
            consecutive += 1;
        } else {
            consecutive = 0;
        }
    }
    match first_throttle {
        Some(first) => (
            Verdict::Pass,
            format!(
                "after {after} consecutive failures, all {judged} further attempt(s) were throttled, from attempt {first} on"
            ),
        ),
        None => (
            Verdict::Inconclusive,
            format!(
                "missing evidence: {} attempt(s) were made, none after {after} consecutive failures",
                attempts.len()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::step;
    use hilt_model::vocabulary;

    fn judged(outcomes: &[(&str, f64)], after: u64, min: u64) -> Judgement {
        let login = vocabulary::action("login").unwrap();
        judge(login, &step(outcomes).attempts, after, min)
    }

    #[test]
    fn lockout_after_threshold_passes() {
        let s = [
            ("rejected", 5.0),
            ("rejected", 5.0),
            ("locked", 1.0),
            ("locked", 1.0),
        ];
        assert_eq!(judged(&s, 2, 1000).0, Verdict::Pass);
    }

    #[test]
    fn delays_count_as_throttling() {
        let s = [
            ("rejected", 5.0),
            ("rejected", 1500.0),
            ("rejected", 2500.0),
        ];
        assert_eq!(judged(&s, 1, 1000).0, Verdict::Pass);
    }

    #[test]
    fn fast_rejection_past_threshold_fails() {
        let (v, why) = judged(&[("rejected", 5.0); 3], 2, 1000);
        assert_eq!(v, Verdict::Fail);
        assert!(why.contains("attempt 3"), "{why}");
    }

    #[test]
    fn too_few_attempts_or_none_is_inconclusive_not_pass() {
        assert_eq!(
            judged(&[("rejected", 5.0)], 2, 1000).0,
            Verdict::Inconclusive
        );
        let (v, why) = judged(&[], 2, 1000);
        assert_eq!(v, Verdict::Inconclusive);
        assert!(why.contains("missing evidence"), "{why}");
    }
}
