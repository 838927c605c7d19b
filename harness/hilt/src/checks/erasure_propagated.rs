//! `erasure-propagated`: after step `after` (the device's erase) began, the device itself told every
//! third party it had sent `user`'s data to to erase it, and told the manufacturer's cloud it was
//! erased (EN 303 645 5.11-2, 6-6; ICO-ERASE-01). Only the device's own requests count, judged from
//! the flow log: whatever the mock backend propagates by itself earns the device nothing.

use hilt_cloud::{Flow, FlowKind};
use hilt_model::Verdict;
use hilt_model::scenario::VarTemplate as Template;
use serde::Deserialize;
use std::collections::BTreeSet;

use super::{Check, Evidence, Judgement, Kind, Needs, Params};
use crate::exec::Dut;

pub const KIND: Kind = Kind {
    name: "erasure-propagated",
    parse,
};

/// Where the device tells the manufacturer's cloud it was erased.
const DEVICE_ERASURE: &str = "/device/erasure";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErasurePropagated {
    user: Template,
    after: String,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: ErasurePropagated = p.get()?;
    if p.scenario.step(&c.after).is_none() {
        return Err(format!("step {:?} is no step of this scenario", c.after));
    }
    p.scenario.check_vars(&c.user)?;
    Ok(Box::new(c))
}

impl Check for ErasurePropagated {
    fn needs(&self) -> Needs {
        Needs { cloud: true }
    }

    fn templates(&self) -> Vec<&Template> {
        vec![&self.user]
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let (Some(cloud), Ok(c)) = (ev.scope.bench.cloud(), ev.cloud()) else {
            return (Verdict::NotTested, "no mock cloud on this bench".into());
        };
        let user = match ev.scope.render(&self.user) {
            Ok(v) => v.text,
            Err(e) => return (Verdict::NotTested, e),
        };
        let erased_at = match ev.step_start(&self.after) {
            Ok(t) => t,
            Err(j) => return j,
        };
        // What the recipients hold about the user: the bodies name the user.
        let holding: BTreeSet<String> = cloud.state.recipients_of(&user).into_iter().collect();
        judge(&c.dut, c.flows, &holding, erased_at)
    }
}

/// The recipient a `/thirdparty/{r}/{what}` request of the device went to.
fn recipient<'a>(f: &'a Flow, what: &str) -> Option<&'a str> {
    let rest = f.path.as_deref()?.strip_prefix("/thirdparty/")?;
    let (r, tail) = rest.split_once('/')?;
    (tail == what).then_some(r)
}

fn judge(dut: &Dut, flows: &[Flow], holding: &BTreeSet<String>, erased_at: u64) -> Judgement {
    let own = |f: &&Flow| dut.owns(f) && f.kind == FlowKind::Request;
    // Recipients the device itself sent data to before the erase, that hold data about the user.
    let sent_to: BTreeSet<&str> = flows
        .iter()
        .filter(own)
        .filter(|f| f.t_us < erased_at)
        .filter_map(|f| recipient(f, "ingest"))
        .filter(|r| holding.contains(*r))
        .collect();
    if sent_to.is_empty() {
        return (
            Verdict::Inconclusive,
            "missing evidence: the device sent no third party data about the user before the erase, so there was nothing to propagate".into(),
        );
    }
    let told: BTreeSet<&str> = flows
        .iter()
        .filter(own)
        .filter(|f| f.t_us >= erased_at && f.status.is_some_and(|s| s < 300))
        .filter_map(|f| recipient(f, "erasure"))
        .collect();
    let missed: Vec<&str> = sent_to.difference(&told).copied().collect();
    if !missed.is_empty() {
        return (
            Verdict::Fail,
            format!(
                "the device erased itself but did not tell {} to erase the user's data it had sent them",
                missed.join(", ")
            ),
        );
    }
    let cloud_told = flows.iter().filter(own).any(|f| {
        f.t_us >= erased_at
            && f.path.as_deref() == Some(DEVICE_ERASURE)
            && f.status.is_some_and(|s| s < 300)
    });
    if !cloud_told {
        return (
            Verdict::Fail,
            "the device told the third parties but not the manufacturer's cloud that it was erased"
                .into(),
        );
    }
    (
        Verdict::Pass,
        format!(
            "the device told every recipient of the user's data ({}) and the cloud to erase it",
            sent_to.into_iter().collect::<Vec<_>>().join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{DUT, flow};
    use hilt_cloud::Protocol;

    fn request(t_us: u64, path: &str, mine: bool) -> Flow {
        let mut f = flow(0, t_us, FlowKind::Request, true, "");
        f.protocol = Protocol::Http;
        f.topic = None;
        f.path = Some(path.into());
        f.status = Some(202);
        if !mine {
            f.identity = Some("user-1".into());
            f.client_id = None;
        }
        f
    }

    #[test]
    fn every_recipient_of_the_users_data_must_hear_from_the_device() {
        let holding: BTreeSet<String> = ["analytics".to_string()].into();
        let sent = request(100, "/thirdparty/analytics/ingest", true);
        let told = request(600, "/thirdparty/analytics/erasure", true);
        let cloud = request(700, "/device/erasure", true);
        let all = [sent.clone(), told.clone(), cloud.clone()];
        assert_eq!(judge(&DUT, &all, &holding, 500).0, Verdict::Pass);
        // The mock backend's own notice (not the device's) earns nothing.
        let backend = request(600, "/thirdparty/analytics/erasure", false);
        let (v, why) = judge(&DUT, &[sent.clone(), backend, cloud.clone()], &holding, 500);
        assert!(v == Verdict::Fail && why.contains("analytics"), "{why}");
        // A notice before the erase is not the erase's.
        let early = request(200, "/thirdparty/analytics/erasure", true);
        assert_eq!(
            judge(&DUT, &[sent.clone(), early, cloud], &holding, 500).0,
            Verdict::Fail
        );
        assert_eq!(
            judge(&DUT, &[sent.clone(), told], &holding, 500).0,
            Verdict::Fail
        );
        // Nothing was sent: nothing to judge.
        assert_eq!(judge(&DUT, &[], &holding, 500).0, Verdict::Inconclusive);
        assert_eq!(
            judge(&DUT, &[sent], &BTreeSet::new(), 500).0,
            Verdict::Inconclusive
        );
    }
}
