//! `capture-excludes`: what step `step` captured as `capture` does not contain `value` in any case
//! (e.g. a canary the user entered before an erase; EN 303 645 5.11-1, ICO-ERASE-07: a new owner sees
//! nothing of the old one). With `present_in`, that earlier step must have shown the value (else there
//! was nothing to remove: INCONCLUSIVE). The value is never shown in the detail: a canary is often
//! secret. A secret canary reaches the captures masked (`‹secret:LABEL›`), so the marker of any secret
//! that holds the value counts as the value.

use hilt_model::Verdict;
use hilt_model::scenario::VarTemplate as Template;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Params};

pub const KIND: Kind = Kind {
    name: "capture-excludes",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureExcludes {
    step: String,
    capture: String,
    value: Template,
    present_in: Option<String>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: CaptureExcludes = p.get()?;
    p.capture_step(&c.step, &c.capture)?;
    if let Some(before) = &c.present_in {
        p.capture_step(before, &c.capture)?;
        p.steps_in_order(before, &c.step)?;
    }
    p.scenario.check_vars(&c.value)?;
    Ok(Box::new(c))
}

impl Check for CaptureExcludes {
    fn templates(&self) -> Vec<&Template> {
        vec![&self.value]
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let record = match ev.step(&self.step) {
            Ok(r) => r,
            Err(j) => return j,
        };
        let value = match ev.scope.render(&self.value) {
            Ok(v) => Needle::new(&v.text, ev.secrets),
            Err(e) => return (Verdict::NotTested, e),
        };
        let captured = |r: &'_ hilt_report::model::StepRecord| -> Vec<Option<String>> {
            r.attempts
                .iter()
                .map(|a| a.captures.get(&self.capture).cloned())
                .collect()
        };
        if let Some(before) = &self.present_in {
            let earlier = match ev.step(before) {
                Ok(r) => captured(r),
                Err(j) => return j,
            };
            if !holds(&earlier, &value) {
                return (
                    Verdict::Inconclusive,
                    format!(
                        "missing evidence: step {before:?} did not show the value in {}, so there was nothing to remove",
                        self.capture
                    ),
                );
            }
        }
        let shown = captured(record);
        let shown: Vec<Option<&String>> = shown.iter().map(Option::as_ref).collect();
        judge(&shown, &self.capture, &value)
    }
}

/// The value looked for: itself, in any case, or the mask marker of a secret that holds it.
pub(super) struct Needle {
    value: String,
    markers: Vec<String>,
}

impl Needle {
    pub(super) fn new(value: &str, secrets: &[(String, String)]) -> Needle {
        let value = value.to_lowercase();
        let markers = secrets
            .iter()
            .filter(|(s, _)| !value.is_empty() && s.to_lowercase().contains(&value))
            .map(|(_, label)| format!("‹secret:{label}›"))
            .collect();
        Needle { value, markers }
    }

    pub(super) fn found_in(&self, text: &str) -> bool {
        !self.value.is_empty()
            && (text.to_lowercase().contains(&self.value)
                || self.markers.iter().any(|m| text.contains(m.as_str())))
    }
}

/// Whether any of the captures holds the value.
fn holds(captures: &[Option<String>], value: &Needle) -> bool {
    captures.iter().flatten().any(|s| value.found_in(s))
}

fn judge(shown: &[Option<&String>], capture: &str, value: &Needle) -> Judgement {
    if shown.is_empty() {
        return (
            Verdict::Inconclusive,
            "missing evidence: the step made no attempt".into(),
        );
    }
    if value.value.is_empty() {
        return (Verdict::NotTested, "the value to look for is empty".into());
    }
    let holding = shown.iter().flatten().filter(|s| value.found_in(s)).count();
    if holding > 0 {
        return (
            Verdict::Fail,
            format!("{capture} still shows the value entered before ({holding} attempt(s))"),
        );
    }
    (
        Verdict::Pass,
        format!(
            "{capture} no longer holds the value entered before ({} attempt(s))",
            shown.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_must_be_gone_in_any_case_and_never_shown() {
        let n = |v: &str| Needle::new(v, &[]);
        let (gone, kept) = ("-".to_string(), "Name Q7xCanary9".to_string());
        assert_eq!(
            judge(&[Some(&gone)], "name", &n("q7xcanary9")).0,
            Verdict::Pass
        );
        assert_eq!(judge(&[None], "name", &n("q7xcanary9")).0, Verdict::Pass);
        let (v, why) = judge(&[Some(&kept)], "name", &n("q7xcanary9"));
        assert_eq!(v, Verdict::Fail);
        assert!(!why.to_lowercase().contains("q7xcanary9"), "{why}");
        assert_eq!(judge(&[], "name", &n("x")).0, Verdict::Inconclusive);
        assert!(holds(
            &[None, Some("A Q7XCANARY9".into())],
            &n("q7xcanary9")
        ));
        assert!(!holds(&[None], &n("q7xcanary9")) && !holds(&[Some("x".into())], &n("")));
    }

    #[test]
    fn a_masked_canary_is_found_by_its_marker() {
        let secrets = [
            ("Q7xCanary9".to_string(), "canary".to_string()),
            ("Q7xCanary9@example.org".to_string(), "value".to_string()),
            ("hunter2".to_string(), "password".to_string()),
        ];
        let needle = Needle::new("Q7xCanary9", &secrets);
        let masked = "‹secret:value›".to_string();
        assert!(holds(&[Some(masked.clone())], &needle));
        assert_eq!(judge(&[Some(&masked)], "email", &needle).0, Verdict::Fail);
        // Another secret's marker is not this value.
        assert!(!holds(&[Some("‹secret:password›".into())], &needle));
    }
}
