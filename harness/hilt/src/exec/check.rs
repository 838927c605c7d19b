//! Checks over a case's recorded attempts (pass criteria that span several attempts).

use hilt_model::Verdict;
use hilt_report::model::{CheckRecord, StepRecord};

/// After `after` consecutive rejections, every later attempt must be `locked` or slower than `min_delay_ms`.
pub fn throttled(step: &StepRecord, after: u64, min_delay_ms: u64) -> CheckRecord {
    let mut consecutive = 0u64;
    let mut judged = 0usize;
    let mut first_throttle: Option<usize> = None;
    for a in &step.attempts {
        let outcome = a.outcome.as_deref().unwrap_or("");
        if consecutive >= after {
            judged += 1;
            let throttled = outcome == "locked" || a.elapsed_ms >= min_delay_ms as f64;
            if !throttled {
                return CheckRecord {
                    kind: "throttled".into(),
                    verdict: Verdict::Fail,
                    detail: format!(
                        "attempt {} came after {consecutive} consecutive failures and was answered {outcome:?} in {:.0} ms; expected `locked` or an answer no sooner than {min_delay_ms} ms",
                        a.iteration + 1,
                        a.elapsed_ms
                    ),
                };
            }
            first_throttle.get_or_insert(a.iteration + 1);
        }
        match outcome {
            "rejected" | "locked" => consecutive += 1,
            _ => consecutive = 0,
        }
    }
    match first_throttle {
        Some(first) => CheckRecord {
            kind: "throttled".into(),
            verdict: Verdict::Pass,
            detail: format!(
                "after {after} consecutive failures, all {judged} further attempt(s) were throttled, from attempt {first} on"
            ),
        },
        None => CheckRecord {
            kind: "throttled".into(),
            verdict: Verdict::Inconclusive,
            detail: format!(
                "only {} attempt(s) were made; none came after {after} consecutive failures",
                step.attempts.len()
            ),
        },
    }
}

/// Every attempt of a step captured `capture` with exactly the expected value.
pub fn capture_equals(step: &StepRecord, capture: &str, expected: &str) -> CheckRecord {
    let kind = "capture-equals".to_string();
    if step.attempts.is_empty() {
        return CheckRecord {
            kind,
            verdict: Verdict::Error,
            detail: format!("step {} made no attempt", step.id),
        };
    }
    for a in &step.attempts {
        match a.captures.get(capture) {
            Some(v) if v == expected => {}
            Some(v) => {
                return CheckRecord {
                    kind,
                    verdict: Verdict::Fail,
                    detail: format!(
                        "step {} attempt {}: {capture} is {v:?}, declared {expected:?}",
                        step.id,
                        a.iteration + 1
                    ),
                };
            }
            None => {
                return CheckRecord {
                    kind,
                    verdict: Verdict::Fail,
                    detail: format!(
                        "step {} attempt {}: the device showed no {capture}",
                        step.id,
                        a.iteration + 1
                    ),
                };
            }
        }
    }
    CheckRecord {
        kind,
        verdict: Verdict::Pass,
        detail: format!("{capture} is {expected:?} as declared"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_report::model::Attempt;

    fn step(outcomes: &[(&str, f64)]) -> StepRecord {
        StepRecord {
            id: "guesses".into(),
            started_ms: 0.0,
            ended_ms: None,
            flow_from_us: None,
            flow_to_us: None,
            attempts: outcomes
                .iter()
                .enumerate()
                .map(|(i, (o, ms))| Attempt {
                    iteration: i,
                    args: Default::default(),
                    outcome: Some(o.to_string()),
                    captures: Default::default(),
                    at_ms: 0.0,
                    elapsed_ms: *ms,
                    retries: 0,
                    conforms: None,
                    error: None,
                })
                .collect(),
        }
    }

    #[test]
    fn lockout_after_threshold_passes() {
        let s = step(&[
            ("rejected", 5.0),
            ("rejected", 5.0),
            ("locked", 1.0),
            ("locked", 1.0),
        ]);
        assert_eq!(throttled(&s, 2, 1000).verdict, Verdict::Pass);
    }

    #[test]
    fn delays_count_as_throttling() {
        let s = step(&[
            ("rejected", 5.0),
            ("rejected", 1500.0),
            ("rejected", 2500.0),
        ]);
        assert_eq!(throttled(&s, 1, 1000).verdict, Verdict::Pass);
    }

    #[test]
    fn fast_rejection_past_threshold_fails() {
        let s = step(&[("rejected", 5.0), ("rejected", 5.0), ("rejected", 5.0)]);
        let c = throttled(&s, 2, 1000);
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.detail.contains("attempt 3"), "{}", c.detail);
    }

    #[test]
    fn too_few_attempts_is_inconclusive_not_pass() {
        let s = step(&[("rejected", 5.0)]);
        assert_eq!(throttled(&s, 2, 1000).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn captured_values_must_equal_the_declaration() {
        let mut s = step(&[("", 1.0)]);
        s.attempts[0]
            .captures
            .insert("model".into(), "VRB-1".into());
        assert_eq!(capture_equals(&s, "model", "VRB-1").verdict, Verdict::Pass);
        assert_eq!(capture_equals(&s, "model", "VRB-2").verdict, Verdict::Fail);
        assert_eq!(capture_equals(&s, "serial", "X").verdict, Verdict::Fail);
        assert_eq!(
            capture_equals(&step(&[]), "model", "VRB-1").verdict,
            Verdict::Error
        );
    }
}
