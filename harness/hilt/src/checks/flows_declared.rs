//! `flows-declared`: every publish or request the device made matches a data flow declared in the IXIT
//! (sheets 21-PersData and 24-TelData); one that matches none is undeclared processing (EN 303 645
//! 6-1, ICO transparency).

use hilt_cloud::{Flow, FlowKind};
use hilt_model::Verdict;
use hilt_model::flows::DeclaredFlow;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Needs, Params};
use crate::exec::Dut;

pub const KIND: Kind = Kind {
    name: "flows-declared",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowsDeclared {}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    Ok(Box::new(p.get::<FlowsDeclared>()?))
}

impl Check for FlowsDeclared {
    fn needs(&self) -> Needs {
        Needs { cloud: true }
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        match ev.cloud() {
            Ok(c) => judge(&c.dut, c.flows, c.declared),
            Err(j) => j,
        }
    }
}

/// The declaration a flow falls under: MQTT topics by filter, HTTP paths by prefix.
fn declaration<'a>(declared: &'a [DeclaredFlow], f: &Flow) -> Option<&'a DeclaredFlow> {
    declared.iter().find(|d| super::falls_under(d, f))
}

fn judge(dut: &Dut, flows: &[Flow], declared: &[DeclaredFlow]) -> Judgement {
    let data: Vec<&Flow> = flows
        .iter()
        .filter(|f| dut.owns(f) && matches!(f.kind, FlowKind::Publish | FlowKind::Request))
        .collect();
    if data.is_empty() {
        return (
            Verdict::Inconclusive,
            "missing evidence: the device sent no data to the mock cloud during the case".into(),
        );
    }
    let undeclared: Vec<&Flow> = data
        .iter()
        .copied()
        .filter(|f| declaration(declared, f).is_none())
        .collect();
    if undeclared.is_empty() {
        let used: std::collections::BTreeSet<&str> = data
            .iter()
            .filter_map(|f| declaration(declared, f))
            .map(|d| d.name.as_str())
            .collect();
        return (
            Verdict::Pass,
            format!(
                "all {} data flow(s) match declarations ({})",
                data.len(),
                used.into_iter().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    let mut topics: Vec<String> = undeclared
        .iter()
        .map(|f| f.topic.clone().or(f.path.clone()).unwrap_or_default())
        .collect();
    topics.sort();
    topics.dedup();
    (
        Verdict::Fail,
        format!(
            "{} flow(s) match no IXIT declaration (undeclared processing): {}",
            undeclared.len(),
            topics.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{DUT, declared, flow};

    #[test]
    fn undeclared_topics_fail_and_are_named() {
        let decl = [declared("vrb/+/telemetry"), declared("vrb/+/presence")];
        let flows = [
            flow(0, 0, FlowKind::Publish, true, "vrb/VRB-1/telemetry"),
            flow(1, 0, FlowKind::Publish, true, "vrb/VRB-1/presence"),
        ];
        assert_eq!(judge(&DUT, &flows, &decl).0, Verdict::Pass);
        let extra = [
            flows[0].clone(),
            flow(2, 0, FlowKind::Publish, true, "vrb/VRB-1/diag/wifi-scan"),
        ];
        let (v, why) = judge(&DUT, &extra, &decl);
        assert_eq!(v, Verdict::Fail);
        assert!(why.contains("vrb/VRB-1/diag/wifi-scan"), "{why}");
        assert_eq!(judge(&DUT, &[], &decl).0, Verdict::Inconclusive);
    }
}
