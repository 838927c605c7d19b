//! `tls-only`: every flow the device made in the mock cloud during the case used TLS (EN 303 645 5.5-1,
//! 5.8-1/2: security parameters and personal data encrypted in transit).

use hilt_cloud::Flow;
use hilt_model::Verdict;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Needs, Params, list_flows};
use crate::exec::Dut;

pub const KIND: Kind = Kind {
    name: "tls-only",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsOnly {}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    Ok(Box::new(p.get::<TlsOnly>()?))
}

impl Check for TlsOnly {
    fn needs(&self) -> Needs {
        Needs { cloud: true }
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        match ev.cloud() {
            Ok(c) => judge(&c.dut, c.flows),
            Err(j) => j,
        }
    }
}

fn judge(dut: &Dut, flows: &[Flow]) -> Judgement {
    let own: Vec<&Flow> = flows.iter().filter(|f| dut.owns(f)).collect();
    if own.is_empty() {
        return (
            Verdict::Inconclusive,
            "missing evidence: the device made no flow in the mock cloud during the case".into(),
        );
    }
    let plain: Vec<&Flow> = own.iter().copied().filter(|f| !f.tls).collect();
    if plain.is_empty() {
        (
            Verdict::Pass,
            format!("all {} flow(s) of the device used TLS", own.len()),
        )
    } else {
        (
            Verdict::Fail,
            format!(
                "{} of {} flow(s) of the device were plaintext: {}",
                plain.len(),
                own.len(),
                list_flows(&plain)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{DUT, flow};
    use hilt_cloud::FlowKind;

    #[test]
    fn fails_on_one_plaintext_flow_and_needs_some_traffic() {
        let ok = [flow(0, 0, FlowKind::Publish, true, "vrb/VRB-1/telemetry")];
        assert_eq!(judge(&DUT, &ok).0, Verdict::Pass);
        let mixed = [
            ok[0].clone(),
            flow(1, 1, FlowKind::Publish, false, "vrb/VRB-1/presence"),
        ];
        assert_eq!(judge(&DUT, &mixed).0, Verdict::Fail);
        assert_eq!(judge(&DUT, &[]).0, Verdict::Inconclusive);
        let other = Dut {
            identity: "someone-else",
            client_id: "x",
        };
        assert_eq!(judge(&other, &mixed).0, Verdict::Inconclusive);
    }
}
