//! `support-period`: the end date of the support period the device shows anyone (step `step`, capture
//! `capture`) is the one the manufacturer declares (`declared`, e.g. from IXIT 2-UserInfo
//! "Publication of Support Period"), and it has not passed (EN 303 645 5.3-13; PSTI Sch.1 para 3
//! wants an end date, not "for the product's lifetime").

use chrono::NaiveDate;
use hilt_model::Verdict;
use hilt_model::scenario::VarTemplate as Template;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Params};

pub const KIND: Kind = Kind {
    name: "support-period",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SupportPeriod {
    step: String,
    #[serde(default = "default_capture")]
    capture: String,
    declared: Template,
}

fn default_capture() -> String {
    "end_date".into()
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: SupportPeriod = p.get()?;
    p.capture_step(&c.step, &c.capture)?;
    p.scenario.check_vars(&c.declared)?;
    Ok(Box::new(c))
}

impl Check for SupportPeriod {
    fn templates(&self) -> Vec<&Template> {
        vec![&self.declared]
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let record = match ev.step(&self.step) {
            Ok(r) => r,
            Err(j) => return j,
        };
        let declared = match ev.scope.render(&self.declared) {
            Ok(v) => v.text,
            Err(e) => return (Verdict::NotTested, e),
        };
        let shown: Vec<Option<&String>> = record
            .attempts
            .iter()
            .map(|a| a.captures.get(&self.capture))
            .collect();
        let today = chrono::Utc::now().date_naive();
        judge(&shown, &declared, today)
    }
}

fn date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

fn judge(shown: &[Option<&String>], declared: &str, today: NaiveDate) -> Judgement {
    let Some(want) = date(declared) else {
        return (
            Verdict::NotTested,
            format!("the declared support period {declared:?} is no end date (YYYY-MM-DD)"),
        );
    };
    let Some(first) = shown.first() else {
        return (
            Verdict::Inconclusive,
            "missing evidence: the device was not asked for its support period".into(),
        );
    };
    let Some(text) = first else {
        return (
            Verdict::Fail,
            "the device shows no support period end date without a login".into(),
        );
    };
    match date(text) {
        None => (
            Verdict::Fail,
            format!("the device shows {text:?} as its support period, which is no end date"),
        ),
        Some(got) if got != want => (
            Verdict::Fail,
            format!("the device shows support until {got}, the manufacturer declares {want}"),
        ),
        Some(got) if got < today => (
            Verdict::Fail,
            format!("the support period ended on {got}: the device gets no more security updates"),
        ),
        Some(got) => (
            Verdict::Pass,
            format!("the device shows support until {got}, as declared, without a login"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_date_must_be_the_declared_one_and_not_past() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let d = |s: &str| s.to_string();
        let shown = d("2030-12-31");
        assert_eq!(judge(&[Some(&shown)], "2030-12-31", today).0, Verdict::Pass);
        let (v, why) = judge(&[Some(&shown)], "2031-06-30", today);
        assert!(v == Verdict::Fail && why.contains("2031-06-30"), "{why}");
        let past = d("2025-01-01");
        let (v, why) = judge(&[Some(&past)], "2025-01-01", today);
        assert!(v == Verdict::Fail && why.contains("ended"), "{why}");
        assert_eq!(judge(&[None], "2030-12-31", today).0, Verdict::Fail);
        let vague = d("lifetime");
        assert_eq!(judge(&[Some(&vague)], "2030-12-31", today).0, Verdict::Fail);
        assert_eq!(judge(&[], "2030-12-31", today).0, Verdict::Inconclusive);
        assert_eq!(judge(&[Some(&shown)], "soon", today).0, Verdict::NotTested);
    }
}
