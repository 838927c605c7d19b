//! `capture-time`: the time step `step` captured as `capture` (unix milliseconds or RFC 3339) falls
//! within step `during`, give or take `tolerance_ms` for the device's clock (default one minute).
//! What it is for: a record the device keeps of something the tester did, e.g. the stored record of
//! a consent decision (EN 303 645 6-3B, ICO-CONSENT-16: whose, what and when). A device that answers
//! but keeps no time, or a time that is not the decision's, FAILs.

use chrono::DateTime;
use hilt_model::Verdict;
use hilt_report::model::StepRecord;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Params};

pub const KIND: Kind = Kind {
    name: "capture-time",
    parse,
};

/// Device clocks drift and are set by NTP at best: a minute either way is still the same event.
const DEFAULT_TOLERANCE_MS: u64 = 60_000;
/// Longest captured text quoted back in a detail.
const MAX_QUOTED: usize = 40;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureTime {
    step: String,
    capture: String,
    during: String,
    #[serde(default)]
    tolerance_ms: Option<u64>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: CaptureTime = p.get()?;
    p.capture_step(&c.step, &c.capture)?;
    p.steps_in_order(&c.during, &c.step)?;
    Ok(Box::new(c))
}

impl Check for CaptureTime {
    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let (record, during) = match (ev.step(&self.step), ev.step(&self.during)) {
            (Ok(r), Ok(d)) => (r, d),
            (Err(j), _) | (_, Err(j)) => return j,
        };
        let Some(case_start) = ev.started_unix_ms else {
            return (
                Verdict::Inconclusive,
                "missing evidence: the case's start time is not known".into(),
            );
        };
        let Some(window) = Window::of(during, case_start, self.tolerance()) else {
            return (
                Verdict::Inconclusive,
                format!("missing evidence: step {:?} did not finish", self.during),
            );
        };
        judge(record, &self.capture, &window, &self.during)
    }
}

impl CaptureTime {
    fn tolerance(&self) -> u64 {
        self.tolerance_ms.unwrap_or(DEFAULT_TOLERANCE_MS)
    }
}

/// Unix-millisecond bounds a captured time must fall in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    from_ms: i64,
    to_ms: i64,
}

impl Window {
    /// Step `during`'s run in wall-clock time, widened by `tolerance` ms; `None` if it never ended.
    fn of(during: &StepRecord, case_start_ms: u64, tolerance: u64) -> Option<Window> {
        let start = case_start_ms as i64 + during.started_ms as i64;
        let end = case_start_ms as i64 + during.ended_ms? as i64;
        Some(Window {
            from_ms: start - tolerance as i64,
            to_ms: end + tolerance as i64,
        })
    }

    fn holds(&self, t_ms: i64) -> bool {
        (self.from_ms..=self.to_ms).contains(&t_ms)
    }
}

/// A captured time: unix milliseconds, or RFC 3339.
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn quoted(text: &str) -> String {
    let short: String = text.chars().take(MAX_QUOTED).collect();
    format!("{short:?}")
}

fn judge(record: &StepRecord, capture: &str, window: &Window, during: &str) -> Judgement {
    // Attempts the bench could not complete say nothing about the device.
    let answered: Vec<_> = record
        .attempts
        .iter()
        .filter(|a| a.error.is_none())
        .collect();
    if answered.is_empty() {
        return (
            Verdict::Inconclusive,
            format!("missing evidence: step {:?} got no answer", record.id),
        );
    }
    for attempt in &answered {
        let text = attempt.captures.get(capture).map(String::as_str);
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return (
                Verdict::Fail,
                format!("the device's answer holds no {capture}: it keeps no time"),
            );
        };
        let Some(t) = parse_time(text) else {
            return (
                Verdict::Fail,
                format!("{capture} {} is not a time", quoted(text)),
            );
        };
        if !window.holds(t) {
            let off_s = if t < window.from_ms {
                (t - window.from_ms) / 1000
            } else {
                (t - window.to_ms) / 1000
            };
            return (
                Verdict::Fail,
                format!(
                    "{capture} {} is {off_s:+} s outside step {during:?} (with its tolerance)",
                    quoted(text)
                ),
            );
        }
    }
    (
        Verdict::Pass,
        format!(
            "{capture} falls within step {during:?} in {} answer(s)",
            answered.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing;

    const START: u64 = 1_764_500_000_000;

    fn read(at: Option<&str>) -> StepRecord {
        let mut r = testing::step(&[("granted", 5.0)]);
        if let Some(at) = at {
            r.attempts[0].captures.insert("at".into(), at.into());
        }
        r
    }

    fn during() -> StepRecord {
        let mut d = testing::step(&[("granted", 5.0)]);
        d.started_ms = 1_000.0;
        d.ended_ms = Some(2_000.0);
        d
    }

    fn window() -> Window {
        Window::of(&during(), START, 500).unwrap()
    }

    #[test]
    fn a_time_within_the_step_passes_in_either_form() {
        let inside = (START + 1_500).to_string();
        assert_eq!(
            judge(&read(Some(&inside)), "at", &window(), "opt-in").0,
            Verdict::Pass
        );
        let rfc = DateTime::from_timestamp_millis((START + 2_400) as i64)
            .unwrap()
            .to_rfc3339();
        assert_eq!(
            judge(&read(Some(&rfc)), "at", &window(), "opt-in").0,
            Verdict::Pass
        );
    }

    #[test]
    fn no_time_a_bad_time_or_another_time_fails() {
        for at in [None, Some(""), Some("yesterday"), Some("0")] {
            let (v, why) = judge(&read(at), "at", &window(), "opt-in");
            assert_eq!(v, Verdict::Fail, "{at:?}: {why}");
        }
        let late = (START + 2_000 + 501).to_string();
        let (v, why) = judge(&read(Some(&late)), "at", &window(), "opt-in");
        assert_eq!(v, Verdict::Fail);
        assert!(why.contains("+0 s outside"), "{why}");
        let early = (START + 1_000 - 3_501).to_string();
        let (v, why) = judge(&read(Some(&early)), "at", &window(), "opt-in");
        assert!(v == Verdict::Fail && why.contains("-3 s"), "{why}");
    }

    #[test]
    fn without_an_answer_or_an_end_there_is_no_evidence() {
        let mut r = read(Some("1"));
        r.attempts[0].error = Some("link closed".into());
        assert_eq!(judge(&r, "at", &window(), "x").0, Verdict::Inconclusive);
        r.attempts.clear();
        assert_eq!(judge(&r, "at", &window(), "x").0, Verdict::Inconclusive);
        let mut open = during();
        open.ended_ms = None;
        assert_eq!(Window::of(&open, START, 0), None);
    }
}
