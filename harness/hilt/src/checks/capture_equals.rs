//! `capture-equals`: every attempt of step `step` captured `capture` equal to `expected` (e.g. the model
//! designation the UI shows against the one the IXIT declares, EN 303 645 5.3-16).

use hilt_model::Verdict;
use hilt_model::profile::{Script, StepKind};
use hilt_model::scenario::VarTemplate as Template;
use hilt_model::template::Value;
use serde::Deserialize;
use std::collections::BTreeSet;

use super::{Check, Evidence, Judgement, Kind, Params};

pub const KIND: Kind = Kind {
    name: "capture-equals",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureEquals {
    step: String,
    capture: String,
    expected: Template,
    #[serde(skip)]
    action: String,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let mut c: CaptureEquals = p.get()?;
    let (_, spec) = p.capture_step(&c.step, &c.capture)?;
    c.action = spec.name.to_string();
    p.scenario.check_vars(&c.expected)?;
    Ok(Box::new(c))
}

impl Check for CaptureEquals {
    fn templates(&self) -> Vec<&Template> {
        vec![&self.expected]
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let record = match ev.step(&self.step) {
            Ok(r) => r,
            Err(j) => return j,
        };
        let profile = ev.scope.bench.profile();
        let defined = profile
            .bindings
            .get(&self.action)
            .is_some_and(|b| binding_captures(&b.script).contains(&self.capture));
        if !defined {
            // A profile gap, not the device's fault.
            return (
                Verdict::NotTested,
                format!(
                    "the board profile's binding for {} defines no (?P<{}>…) capture group",
                    self.action, self.capture
                ),
            );
        }
        match ev.scope.render(&self.expected) {
            Ok(want) => judge(record, &self.capture, &want, ev.secrets),
            Err(e) => (Verdict::NotTested, e),
        }
    }
}

/// The capture group names a binding script's expects define.
fn binding_captures(script: &Script) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in script {
        match &s.kind {
            StepKind::Expect(e) => {
                for (_, re) in &e.alternatives {
                    out.extend(re.capture_names().flatten().map(str::to_string));
                }
            }
            StepKind::Block(inner) => out.extend(binding_captures(inner)),
            _ => {}
        }
    }
    out
}

/// How a value appears in a message: quoted, or `‹secret›` when it was rendered from a secret
/// (`secret`) or gives one of `secrets` away (contains one in any case, or is a beginning of one).
fn shown(value: &str, secret: bool, secrets: &[(String, String)]) -> String {
    let reveals = secrets
        .iter()
        .any(|(s, _)| hilt_link::reveals(value.as_bytes(), s.as_bytes()));
    if secret || reveals {
        "‹secret›".to_string()
    } else {
        format!("{value:?}")
    }
}

/// Whether `captured` is the mask marker (`‹secret:LABEL›`) of a secret that is exactly `expected`:
/// captures are masked as they are recorded, so a secret shown back arrives as its marker.
fn is_marker_of(captured: &str, expected: &str, secrets: &[(String, String)]) -> bool {
    secrets
        .iter()
        .any(|(s, label)| s == expected && captured == format!("‹secret:{label}›"))
}

fn judge(
    step: &hilt_report::model::StepRecord,
    capture: &str,
    want: &Value,
    secrets: &[(String, String)],
) -> Judgement {
    let expected = want.text.as_str();
    // Compared with a secret, a captured value that differs may still be most of it: neither is shown.
    let show = |v: &str| shown(v, want.secret, secrets);
    // An attempt the bench could not complete shows nothing about the device.
    let answered: Vec<_> = step.attempts.iter().filter(|a| a.error.is_none()).collect();
    if answered.is_empty() {
        return (
            Verdict::Inconclusive,
            format!(
                "missing evidence: step {} made no completed attempt",
                step.id
            ),
        );
    }
    for a in answered {
        let n = a.iteration + 1;
        match a.captures.get(capture) {
            Some(v) if v == expected || is_marker_of(v, expected, secrets) => {}
            Some(v) => {
                return (
                    Verdict::Fail,
                    format!(
                        "step {} attempt {n}: {capture} is {}, declared {}",
                        step.id,
                        show(v),
                        show(expected)
                    ),
                );
            }
            None => {
                return (
                    Verdict::Fail,
                    format!(
                        "step {} attempt {n}: the device showed no {capture}",
                        step.id
                    ),
                );
            }
        }
    }
    (
        Verdict::Pass,
        format!("{capture} is {} as declared", show(expected)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::step;

    #[test]
    fn captured_values_must_equal_the_declaration() {
        let mut s = step(&[("", 1.0)]);
        s.attempts[0]
            .captures
            .insert("model".into(), "VRB-1".into());
        let plain = |v: &str| Value::plain(v);
        assert_eq!(judge(&s, "model", &plain("VRB-1"), &[]).0, Verdict::Pass);
        assert_eq!(judge(&s, "model", &plain("VRB-2"), &[]).0, Verdict::Fail);
        assert_eq!(judge(&s, "serial", &plain("X"), &[]).0, Verdict::Fail);
        assert_eq!(
            judge(&step(&[]), "model", &plain("VRB-1"), &[]).0,
            Verdict::Inconclusive
        );
        let mut errored = step(&[("", 1.0)]);
        errored.attempts[0].error = Some("timed out".into());
        assert_eq!(
            judge(&errored, "model", &plain("VRB-1"), &[]).0,
            Verdict::Inconclusive
        );
        let (_, detail) = judge(&s, "model", &plain("VRB-2"), &[]);
        assert_eq!(
            detail,
            "step guesses attempt 1: model is \"VRB-1\", declared \"VRB-2\""
        );
    }

    #[test]
    fn messages_never_show_a_secret() {
        let mut s = step(&[("", 1.0)]);
        s.attempts[0]
            .captures
            .insert("pin".into(), "hunter3".into());
        // Expected from a secret: neither it nor what was captured against it is shown.
        let (v, detail) = judge(&s, "pin", &Value::secret("hunter2"), &[]);
        assert_eq!(v, Verdict::Fail);
        assert!(!detail.contains("hunter"), "{detail}");
        assert!(
            detail.contains("pin is ‹secret›, declared ‹secret›"),
            "{detail}"
        );
        let (v, detail) = judge(&s, "pin", &Value::secret("hunter3"), &[]);
        assert_eq!(v, Verdict::Pass);
        assert_eq!(detail, "pin is ‹secret› as declared");
        // Recorded masked: the marker of exactly the declared secret is that secret.
        let secrets = [("hunter3".to_string(), "pin".to_string())];
        s.attempts[0]
            .captures
            .insert("pin".into(), "‹secret:pin›".into());
        assert_eq!(
            judge(&s, "pin", &Value::secret("hunter3"), &secrets).0,
            Verdict::Pass
        );
        assert_eq!(
            judge(&s, "pin", &Value::secret("hunter4"), &secrets).0,
            Verdict::Fail
        );
        s.attempts[0]
            .captures
            .insert("pin".into(), "hunter3".into());
        // A plain expectation, and a captured value giving a unit password away (its upper-case
        // form, or a beginning of it): that value is masked, the declared one is not.
        let pw = [("2a7438eda0cd".to_string(), "unit-secret-1".to_string())];
        for captured in ["2A7438EDA0CD", "2a7438ed", "x2a7438eda0cdx"] {
            s.attempts[0].captures.insert("pin".into(), captured.into());
            let (_, detail) = judge(&s, "pin", &Value::plain("0000"), &pw);
            assert!(
                detail.ends_with("pin is ‹secret›, declared \"0000\""),
                "{detail}"
            );
        }
    }
}
