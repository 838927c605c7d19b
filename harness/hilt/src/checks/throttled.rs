//! `throttled`: after `after` consecutive refusals in a login step, every further attempt is refused as
//! locked inside the declared lockout, or answered no sooner than `min_delay_ms` (EN 303 645 5.1-5:
//! guessing made impracticable). Which outcomes are refusals and lockouts is the action's vocabulary
//! entry's to say.
//!
//! A lockout answer proves throttling only inside the lockout the IXIT declares (`lockout_ms`): a run of
//! lockout answers began no later than the end of its first answer, so one given to an attempt that
//! started more than `lockout_ms` after that is the device still refusing when its declared lockout had
//! ended, which is no evidence of the declared protection (INCONCLUSIVE unless something FAILs). Bench
//! slowness cannot put an attempt of a conformant device outside the window: a device locked for
//! `lockout_ms` from the moment it locked answers "locked" only to attempts that start before then.

use hilt_model::Verdict;
use hilt_model::scenario::Number;
use hilt_model::vocabulary::ActionSpec;
use hilt_report::model::Attempt;
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
    /// The declared lockout: a lockout answer proves throttling only inside it.
    lockout_ms: Number,
    #[serde(skip)]
    action: Option<&'static ActionSpec>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let mut c: Throttled = p.get()?;
    let (_, spec) = p.lockout_step(&c.step)?;
    c.action = Some(spec);
    Ok(Box::new(c))
}

impl Check for Throttled {
    fn numbers(&self) -> Vec<&Number> {
        vec![&self.after, &self.min_delay_ms, &self.lockout_ms]
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let (record, after, min, lockout) = match (
            ev.step(&self.step),
            ev.number(&self.after),
            ev.number(&self.min_delay_ms),
            ev.number(&self.lockout_ms),
        ) {
            (Ok(r), Ok(a), Ok(m), Ok(l)) => (r, a, m, l),
            (Err(j), ..) | (_, Err(j), ..) | (_, _, Err(j), _) | (.., Err(j)) => return j,
        };
        let spec = self.action.expect("set at parse");
        judge(
            spec,
            &record.attempts,
            Limits {
                after,
                min_delay_ms: min,
                lockout_ms: lockout,
            },
        )
    }
}

/// The check's numbers, resolved.
#[derive(Debug, Clone, Copy)]
struct Limits {
    after: u64,
    min_delay_ms: u64,
    lockout_ms: u64,
}

fn judge(spec: &ActionSpec, attempts: &[Attempt], limits: Limits) -> Judgement {
    let Limits {
        after,
        min_delay_ms,
        lockout_ms,
    } = limits;
    let mut consecutive = 0u64;
    let mut judged = 0usize;
    let mut first_throttle: Option<usize> = None;
    // The first answer of the current run of lockout answers: its number and when it ended.
    let mut lock_seen: Option<(usize, f64)> = None;
    // The first lockout answer given after the declared lockout had ended.
    let mut unproven: Option<String> = None;
    for a in attempts {
        let outcome = a.outcome.as_deref().unwrap_or("");
        let locked = spec.is_lockout(outcome);
        if locked {
            lock_seen.get_or_insert((a.iteration + 1, a.at_ms + a.elapsed_ms));
        } else if a.outcome.is_some() {
            lock_seen = None;
        }
        if consecutive >= after && a.outcome.is_some() {
            judged += 1;
            let in_window = lock_seen.filter(|(_, end)| a.at_ms <= end + lockout_ms as f64);
            match (locked, in_window) {
                (true, Some(_)) => {
                    first_throttle.get_or_insert(a.iteration + 1);
                }
                (true, None) => {
                    let (first, end) = lock_seen.expect("set above for a lockout answer");
                    unproven.get_or_insert_with(|| {
                        format!(
                            "attempt {} was answered {outcome:?} though it started {:.0} ms after the lockout had begun (at the latest by the end of attempt {first}), when the declared lockout of {lockout_ms} ms had ended: a lockout that outlasts its declaration is no evidence of the declared throttling",
                            a.iteration + 1,
                            a.at_ms - end
                        )
                    });
                }
                (false, _) if a.elapsed_ms >= min_delay_ms as f64 => {
                    first_throttle.get_or_insert(a.iteration + 1);
                }
                (false, _) => {
                    return (
                        Verdict::Fail,
                        format!(
                            "attempt {} came after {consecutive} consecutive failures and was answered {outcome:?} in {:.0} ms; expected a lockout ({}) within the declared {lockout_ms} ms or an answer no sooner than {min_delay_ms} ms",
                            a.iteration + 1,
                            a.elapsed_ms,
                            spec.lockouts.join(", ")
                        ),
                    );
                }
            }
        }
        if spec.is_refusal(outcome) || locked {
            consecutive += 1;
        } else {
            consecutive = 0;
        }
    }
    if let Some(why) = unproven {
        return (Verdict::Inconclusive, why);
    }
    match first_throttle {
        Some(first) => (
            Verdict::Pass,
            format!(
                "after {after} consecutive failures, all {judged} further attempt(s) were throttled (locked within the declared {lockout_ms} ms, or slow), from attempt {first} on"
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

    const LIMITS: Limits = Limits {
        after: 2,
        min_delay_ms: 1000,
        lockout_ms: 500,
    };

    /// Attempts with these outcomes, each started at `at_ms` and answered in `elapsed_ms`.
    fn timed(outcomes: &[(&str, f64, f64)]) -> Vec<Attempt> {
        let untimed: Vec<(&str, f64)> = outcomes.iter().map(|(o, _, ms)| (*o, *ms)).collect();
        let mut attempts = step(&untimed).attempts;
        for (a, (_, at, _)) in attempts.iter_mut().zip(outcomes) {
            a.at_ms = *at;
        }
        attempts
    }

    fn judged_timed(outcomes: &[(&str, f64, f64)], limits: Limits) -> Judgement {
        let login = vocabulary::action("login").unwrap();
        judge(login, &timed(outcomes), limits)
    }

    /// Back-to-back attempts from time 0, each answered in the given milliseconds.
    fn judged(outcomes: &[(&str, f64)], after: u64, min: u64) -> Judgement {
        let mut at = 0.0;
        let timed: Vec<(&str, f64, f64)> = outcomes
            .iter()
            .map(|(o, ms)| {
                let t = (*o, at, *ms);
                at += ms;
                t
            })
            .collect();
        let limits = Limits {
            after,
            min_delay_ms: min,
            ..LIMITS
        };
        judged_timed(&timed, limits)
    }

    #[test]
    fn lockout_after_threshold_passes() {
        let s = [
            ("rejected", 5.0),
            ("rejected", 5.0),
            ("locked", 1.0),
            ("locked", 1.0),
        ];
        let (v, why) = judged(&s, 2, 1000);
        assert_eq!(v, Verdict::Pass, "{why}");
        assert!(why.contains("from attempt 3"), "{why}");
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

    #[test]
    fn locked_counts_only_inside_the_declared_lockout() {
        // The lockout is first answered at 20 ms (ending at 21 ms); 500 ms are declared.
        let inside = [
            ("rejected", 0.0, 10.0),
            ("rejected", 10.0, 10.0),
            ("locked", 20.0, 1.0),
            ("locked", 400.0, 1.0),
            ("locked", 521.0, 1.0),
        ];
        let (v, why) = judged_timed(&inside, LIMITS);
        assert_eq!(v, Verdict::Pass, "{why}");
        // Still "locked" to an attempt that began 1.5 s after the lockout began: not proof.
        let mut outside = inside.to_vec();
        outside.push(("locked", 1521.0, 1.0));
        let (v, why) = judged_timed(&outside, LIMITS);
        assert_eq!(v, Verdict::Inconclusive, "{why}");
        assert!(
            why.contains("attempt 6") && why.contains("1500 ms after") && why.contains("of 500 ms"),
            "{why}"
        );
    }

    #[test]
    fn a_fast_refusal_fails_even_beside_an_unproven_lockout() {
        let s = [
            ("rejected", 0.0, 10.0),
            ("rejected", 10.0, 10.0),
            ("locked", 20.0, 1.0),
            ("locked", 900.0, 1.0),
            ("rejected", 950.0, 10.0),
        ];
        let (v, why) = judged_timed(&s, LIMITS);
        assert_eq!(v, Verdict::Fail, "{why}");
        assert!(why.contains("attempt 5"), "{why}");
    }

    #[test]
    fn each_run_of_lockout_answers_has_its_own_window() {
        // Locked, then a slow refusal after the lockout ended, then locked again: a new lockout.
        let s = [
            ("rejected", 0.0, 10.0),
            ("rejected", 10.0, 10.0),
            ("locked", 20.0, 1.0),
            ("rejected", 600.0, 1200.0),
            ("locked", 1800.0, 1.0),
            ("locked", 2200.0, 1.0),
        ];
        let (v, why) = judged_timed(&s, LIMITS);
        assert_eq!(v, Verdict::Pass, "{why}");
    }
}
