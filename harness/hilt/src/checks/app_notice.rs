//! `app-notice`: the device itself sent its users, through the manufacturer's cloud, a notice that
//! contains each of `contains` (e.g. the offered version and the risk it addresses; EN 303 645 5.3-11).
//! Only notices the device posted count: the mock cloud never writes one on its behalf.

use hilt_model::Verdict;
use hilt_model::scenario::VarTemplate as Template;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Needs, Params};

pub const KIND: Kind = Kind {
    name: "app-notice",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppNotice {
    contains: Vec<Template>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: AppNotice = p.get()?;
    if c.contains.is_empty() {
        return Err("`contains` needs at least one text the notice must carry".into());
    }
    for t in &c.contains {
        p.scenario.check_vars(t)?;
    }
    Ok(Box::new(c))
}

impl Check for AppNotice {
    fn needs(&self) -> Needs {
        Needs { cloud: true }
    }

    fn templates(&self) -> Vec<&Template> {
        self.contains.iter().collect()
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let (Some(cloud), Ok(c)) = (ev.scope.bench.cloud(), ev.cloud()) else {
            return (Verdict::NotTested, "no mock cloud on this bench".into());
        };
        let mut wanted = Vec::new();
        for t in &self.contains {
            match ev.scope.render(t) {
                Ok(v) => wanted.push(v.text),
                Err(e) => return (Verdict::NotTested, e),
            }
        }
        let texts: Vec<String> = cloud
            .state
            .device_notices(c.dut.identity)
            .into_iter()
            .map(|n| n.text)
            .collect();
        judge(&texts, &wanted)
    }
}

fn judge(notices: &[String], wanted: &[String]) -> Judgement {
    if let Some(n) = notices
        .iter()
        .rev()
        .find(|n| wanted.iter().all(|w| n.contains(w.as_str())))
    {
        return (
            Verdict::Pass,
            format!("the device sent its users the notice {n:?}"),
        );
    }
    let want = wanted
        .iter()
        .map(|w| format!("{w:?}"))
        .collect::<Vec<_>>()
        .join(" and ");
    (
        Verdict::Fail,
        format!(
            "none of the {} notice(s) the device sent through the cloud carries {want}",
            notices.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_notice_must_carry_every_wanted_text() {
        let notices = [
            "update 1.2.0: the device restarts".to_string(),
            "security update 1.2.0 installed: fixes HILT-SA-0002".to_string(),
        ];
        let want = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            judge(&notices, &want(&["1.2.0", "HILT-SA-0002"])).0,
            Verdict::Pass
        );
        let (v, why) = judge(&notices, &want(&["1.3.0", "HILT-SA-0002"]));
        assert!(v == Verdict::Fail && why.contains("2 notice(s)"), "{why}");
        assert_eq!(judge(&[], &want(&["x"])).0, Verdict::Fail);
    }
}
