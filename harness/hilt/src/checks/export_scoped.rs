//! `export-scoped`: the export step `step` captured holds each of `includes` (the requesting user's own
//! data) and none of `excludes` (another user's id or data): right of access without revealing other
//! people's data (ICO-ACCESS-01/02, ICO-PORT-01). A secret value counts when its mask marker is there.

use hilt_model::Verdict;
use hilt_model::scenario::VarTemplate as Template;
use serde::Deserialize;

use super::capture_excludes::Needle;
use super::{Check, Evidence, Judgement, Kind, Params};

pub const KIND: Kind = Kind {
    name: "export-scoped",
    parse,
};

/// The capture an export action reports.
const EXPORT: &str = "export";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportScoped {
    step: String,
    includes: Vec<Template>,
    #[serde(default)]
    excludes: Vec<Template>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: ExportScoped = p.get()?;
    p.capture_step(&c.step, EXPORT)?;
    if c.includes.is_empty() {
        return Err("`includes` needs at least the requesting user's own id".into());
    }
    for t in c.includes.iter().chain(&c.excludes) {
        p.scenario.check_vars(t)?;
    }
    Ok(Box::new(c))
}

impl Check for ExportScoped {
    fn templates(&self) -> Vec<&Template> {
        self.includes.iter().chain(&self.excludes).collect()
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let record = match ev.step(&self.step) {
            Ok(r) => r,
            Err(j) => return j,
        };
        let needles = |ts: &[Template]| -> Result<Vec<(String, Needle)>, Judgement> {
            ts.iter()
                .map(|t| {
                    let v = ev.scope.render(t).map_err(|e| (Verdict::NotTested, e))?;
                    // A secret is named by its template, never by its value.
                    let name = if v.secret {
                        t.source().to_string()
                    } else {
                        v.text.clone()
                    };
                    Ok((name, Needle::new(&v.text, ev.secrets)))
                })
                .collect()
        };
        let (includes, excludes) = match (needles(&self.includes), needles(&self.excludes)) {
            (Ok(i), Ok(e)) => (i, e),
            (Err(j), _) | (_, Err(j)) => return j,
        };
        let Some(export) = record.attempts.last().and_then(|a| a.captures.get(EXPORT)) else {
            return (
                Verdict::Fail,
                "the device gave no export of the user's data".into(),
            );
        };
        judge(export, &includes, &excludes)
    }
}

fn judge(export: &str, includes: &[(String, Needle)], excludes: &[(String, Needle)]) -> Judgement {
    let leaked: Vec<&str> = excludes
        .iter()
        .filter(|(_, n)| n.found_in(export))
        .map(|(name, _)| name.as_str())
        .collect();
    if !leaked.is_empty() {
        return (
            Verdict::Fail,
            format!(
                "the export reveals another user's data: {}",
                leaked.join(", ")
            ),
        );
    }
    let missing: Vec<&str> = includes
        .iter()
        .filter(|(_, n)| !n.found_in(export))
        .map(|(name, _)| name.as_str())
        .collect();
    if !missing.is_empty() {
        return (
            Verdict::Fail,
            format!(
                "the export lacks the user's own data: {}",
                missing.join(", ")
            ),
        );
    }
    (
        Verdict::Pass,
        format!(
            "the export holds the user's own data ({} item(s)) and none of the {} other item(s)",
            includes.len(),
            excludes.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: &str) -> (String, Needle) {
        (v.to_string(), Needle::new(v, &[]))
    }

    #[test]
    fn own_data_in_and_other_users_out() {
        let export = r#"{"user":"user-2","role":"member","consents":{}}"#;
        assert_eq!(
            judge(export, &[n("user-2")], &[n("user-1")]).0,
            Verdict::Pass
        );
        let leaky = r#"{"user":"user-2","others":[{"user":"user-1"}]}"#;
        let (v, why) = judge(leaky, &[n("user-2")], &[n("user-1")]);
        assert!(v == Verdict::Fail && why.contains("user-1"), "{why}");
        let (v, why) = judge(r#"{"user":"user-9"}"#, &[n("user-2")], &[]);
        assert!(v == Verdict::Fail && why.contains("lacks"), "{why}");
    }
}
