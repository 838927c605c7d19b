//! `flow-absent`: the device made no flow of declaration `flow` (e.g. `21-PersData/analytics`) from
//! the start of step `from` to the start of step `until` (before the user opted in; EN 303 645 6-2,
//! ICO-CONSENT-01), and made one after `until` started: a flow never seen at all proves nothing by its
//! absence, so the case is then INCONCLUSIVE.

use hilt_cloud::Flow;
use hilt_model::Verdict;
use serde::Deserialize;

use super::{Check, CloudEvidence, Evidence, Judgement, Kind, Needs, Params, list_flows};

pub const KIND: Kind = Kind {
    name: "flow-absent",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowAbsent {
    flow: String,
    from: String,
    until: String,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: FlowAbsent = p.get()?;
    p.steps_in_order(&c.from, &c.until)?;
    Ok(Box::new(c))
}

impl Check for FlowAbsent {
    fn needs(&self) -> Needs {
        Needs { cloud: true }
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let c = match ev.cloud() {
            Ok(c) => c,
            Err(j) => return j,
        };
        let (from, until) = match (ev.step_start(&self.from), ev.step_start(&self.until)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(j), _) | (_, Err(j)) => return j,
        };
        let flows = match device_flows_of(c, &self.flow) {
            Ok(f) => f,
            Err(j) => return j,
        };
        judge(&self.flow, &flows, from, until)
    }
}

/// The device's own flows under declaration `name`, or NOT_TESTED when the profile declares none.
pub(super) fn device_flows_of<'a>(
    c: &CloudEvidence<'a>,
    name: &str,
) -> Result<Vec<&'a Flow>, Judgement> {
    let d = c.declared.iter().find(|d| d.name == name).ok_or_else(|| {
        (
            Verdict::NotTested,
            format!("the board profile declares no data flow {name:?} in its IXIT"),
        )
    })?;
    Ok(c.flows
        .iter()
        .filter(|f| c.dut.owns(f) && super::falls_under(d, f))
        .collect())
}

fn judge(name: &str, flows: &[&Flow], from_us: u64, until_us: u64) -> Judgement {
    let early: Vec<&Flow> = flows
        .iter()
        .copied()
        .filter(|f| f.t_us >= from_us && f.t_us < until_us)
        .collect();
    if !early.is_empty() {
        return (
            Verdict::Fail,
            format!(
                "the device made the {name} flow {} time(s) before the user opted in: {}",
                early.len(),
                list_flows(&early)
            ),
        );
    }
    let later = flows.iter().filter(|f| f.t_us >= until_us).count();
    if later == 0 {
        return (
            Verdict::Inconclusive,
            format!(
                "missing evidence: the device never made the {name} flow, not even after opting in, so its absence before proves nothing"
            ),
        );
    }
    (
        Verdict::Pass,
        format!(
            "no {name} flow for {:.1} s before the user opted in; {later} after",
            (until_us - from_us) as f64 / 1e6
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::flow;
    use hilt_cloud::FlowKind;

    #[test]
    fn the_flow_must_wait_for_consent_and_then_happen() {
        let at = |t_us| flow(0, t_us, FlowKind::Request, true, "");
        let (before, after) = (at(150), at(450));
        assert_eq!(judge("a", &[&after], 100, 400).0, Verdict::Pass);
        let (v, why) = judge("a", &[&before, &after], 100, 400);
        assert!(v == Verdict::Fail && why.contains("1 time(s)"), "{why}");
        assert_eq!(judge("a", &[], 100, 400).0, Verdict::Inconclusive);
        // Before the window (setup) does not count.
        assert_eq!(judge("a", &[&at(50), &after], 100, 400).0, Verdict::Pass);
    }
}
