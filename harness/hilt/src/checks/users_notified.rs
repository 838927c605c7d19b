//! `users-notified`: every one of `users` (e.g. each household member's account) received, in the
//! companion app, a notice the device itself sent that carries each of `contains` (EN 303 645 6-1;
//! ICO-MULTI-05/06: every user, not only the owner, is told). The mock cloud only delivers: a notice
//! counts only if the device posted it.

use hilt_model::Verdict;
use hilt_model::scenario::VarTemplate as Template;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Needs, Params};

pub const KIND: Kind = Kind {
    name: "users-notified",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersNotified {
    users: Vec<Template>,
    contains: Vec<Template>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: UsersNotified = p.get()?;
    if c.users.is_empty() || c.contains.is_empty() {
        return Err("`users` and `contains` each need at least one entry".into());
    }
    for t in c.users.iter().chain(&c.contains) {
        p.scenario.check_vars(t)?;
    }
    Ok(Box::new(c))
}

impl Check for UsersNotified {
    fn needs(&self) -> Needs {
        Needs { cloud: true }
    }

    fn templates(&self) -> Vec<&Template> {
        self.users.iter().chain(&self.contains).collect()
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let (Some(cloud), Ok(c)) = (ev.scope.bench.cloud(), ev.cloud()) else {
            return (Verdict::NotTested, "no mock cloud on this bench".into());
        };
        let render = |ts: &[Template]| -> Result<Vec<String>, Judgement> {
            ts.iter()
                .map(|t| {
                    ev.scope
                        .render(t)
                        .map(|v| v.text)
                        .map_err(|e| (Verdict::NotTested, e))
                })
                .collect()
        };
        let (users, wanted) = match (render(&self.users), render(&self.contains)) {
            (Ok(u), Ok(w)) => (u, w),
            (Err(j), _) | (_, Err(j)) => return j,
        };
        let sent: Vec<String> = cloud
            .state
            .device_notices(c.dut.identity)
            .into_iter()
            .map(|n| n.text)
            .collect();
        let inboxes: Vec<(String, Vec<String>)> = users
            .into_iter()
            .map(|u| {
                let texts = cloud
                    .state
                    .notices(&u)
                    .into_iter()
                    .map(|n| n.text)
                    .collect();
                (u, texts)
            })
            .collect();
        judge(&sent, &inboxes, &wanted)
    }
}

fn judge(sent: &[String], inboxes: &[(String, Vec<String>)], wanted: &[String]) -> Judgement {
    let fits = |t: &String| wanted.iter().all(|w| t.contains(w.as_str())) && sent.contains(t);
    if !sent
        .iter()
        .any(|t| wanted.iter().all(|w| t.contains(w.as_str())))
    {
        return (
            Verdict::Fail,
            format!("the device sent no notice carrying {}", quoted(wanted)),
        );
    }
    let missed: Vec<&str> = inboxes
        .iter()
        .filter(|(_, texts)| !texts.iter().any(fits))
        .map(|(u, _)| u.as_str())
        .collect();
    if !missed.is_empty() {
        return (
            Verdict::Fail,
            format!(
                "{} of {} user(s) got no notice carrying {}: {}",
                missed.len(),
                inboxes.len(),
                quoted(wanted),
                missed.join(", ")
            ),
        );
    }
    (
        Verdict::Pass,
        format!(
            "all {} user(s) got the device's notice carrying {}",
            inboxes.len(),
            quoted(wanted)
        ),
    )
}

fn quoted(texts: &[String]) -> String {
    texts
        .iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_user_must_get_the_devices_notice() {
        let s = |v: &str| v.to_string();
        let sent = [s("privacy notice: hello")];
        let want = [s("privacy notice")];
        let both = [
            (s("user-1"), vec![s("privacy notice: hello")]),
            (s("user-2"), vec![s("privacy notice: hello")]),
        ];
        assert_eq!(judge(&sent, &both, &want).0, Verdict::Pass);
        let owner_only = [both[0].clone(), (s("user-2"), vec![])];
        let (v, why) = judge(&sent, &owner_only, &want);
        assert!(v == Verdict::Fail && why.contains("user-2"), "{why}");
        // A notice the device never sent (the mock's own) earns nothing.
        assert_eq!(judge(&[], &both, &want).0, Verdict::Fail);
    }
}
