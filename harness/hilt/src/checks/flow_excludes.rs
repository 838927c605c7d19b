//! `flow-excludes`: once step `after` (an erase) has ended, no flow the device makes under declared
//! data flow `flow` carries `value` (a canary of the erased user), though flows under it did before
//! the step and still go on after it (EN 303 645 5.11-1; ICO-ERASE-02, ICO-ERASE-07: the device keeps
//! nothing of the old owner, not even in what it keeps sending). A value never carried before proves
//! nothing by its absence, and no flow after leaves nothing to judge: INCONCLUSIVE. The value is
//! never shown in a detail. `within_ms` (default 0) leaves out flows that arrive that soon after the
//! step: reports the device had already queued when it confirmed the erase (a busy network or bench
//! delays them); they are counted in the detail, never judged either way.

use hilt_cloud::Flow;
use hilt_model::Verdict;
use hilt_model::scenario::Number;
use hilt_model::scenario::VarTemplate as Template;
use serde::Deserialize;

use super::capture_excludes::Needle;
use super::flow_absent::device_flows_of;
use super::{Check, Evidence, Judgement, Kind, Needs, Params, list_flows};

pub const KIND: Kind = Kind {
    name: "flow-excludes",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowExcludes {
    flow: String,
    value: Template,
    after: String,
    #[serde(default)]
    within_ms: Option<Number>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: FlowExcludes = p.get()?;
    if p.scenario.step(&c.after).is_none() {
        return Err(format!("step {:?} is no step of this scenario", c.after));
    }
    p.scenario.check_vars(&c.value)?;
    Ok(Box::new(c))
}

impl Check for FlowExcludes {
    fn needs(&self) -> Needs {
        Needs { cloud: true }
    }

    fn templates(&self) -> Vec<&Template> {
        vec![&self.value]
    }

    fn numbers(&self) -> Vec<&Number> {
        self.within_ms.iter().collect()
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let (Some(cloud), Ok(c)) = (ev.scope.bench.cloud(), ev.cloud()) else {
            return (Verdict::NotTested, "no mock cloud on this bench".into());
        };
        let needle = match ev.scope.render(&self.value) {
            Ok(v) => Needle::new(&v.text, ev.secrets),
            Err(e) => return (Verdict::NotTested, e),
        };
        let within_ms = match self.within_ms.as_ref().map(|n| ev.number(n)).transpose() {
            Ok(n) => n.unwrap_or(0),
            Err(j) => return j,
        };
        let step = match ev.step(&self.after) {
            Ok(s) => s,
            Err(j) => return j,
        };
        let (Some(start), Some(end)) = (step.flow_from_us, step.flow_to_us) else {
            return (
                Verdict::Inconclusive,
                format!(
                    "missing evidence: step {:?} has no flow-log times",
                    self.after
                ),
            );
        };
        let flows = match device_flows_of(c, &self.flow) {
            Ok(f) => f,
            Err(j) => return j,
        };
        let carries = |f: &Flow| -> Option<bool> {
            let bytes = cloud.log.payload(&f.payload_sha256)?;
            Some(needle.found_in(&String::from_utf8_lossy(&bytes)))
        };
        let grace_end = end.saturating_add(within_ms.saturating_mul(1000));
        judge(&self.flow, &flows, (start, end, grace_end), carries)
    }
}

/// `carries` says whether a flow's payload holds the value (`None`: the payload was not kept).
fn judge(
    name: &str,
    flows: &[&Flow],
    (start_us, end_us, grace_end_us): (u64, u64, u64),
    carries: impl Fn(&Flow) -> Option<bool>,
) -> Judgement {
    let before = flows.iter().filter(|f| f.t_us < start_us);
    if !before.clone().any(|f| carries(f) == Some(true)) {
        return (
            Verdict::Inconclusive,
            format!(
                "missing evidence: no {name} flow carried the value before step began, so its absence after proves nothing"
            ),
        );
    }
    let in_flight = flows
        .iter()
        .filter(|f| f.t_us > end_us && f.t_us <= grace_end_us)
        .count();
    let not_judged = match in_flight {
        0 => String::new(),
        n => format!(
            "; {n} flow(s) within {} ms of the step's end were in flight and not judged",
            (grace_end_us - end_us) / 1000
        ),
    };
    let after: Vec<&Flow> = flows
        .iter()
        .copied()
        .filter(|f| f.t_us > grace_end_us)
        .collect();
    if after.is_empty() {
        return (
            Verdict::Inconclusive,
            format!("missing evidence: the device made no {name} flow after the step to judge"),
        );
    }
    // Each payload looked at once (it is fetched from the flow log).
    let carried: Vec<Option<bool>> = after.iter().map(|f| carries(f)).collect();
    let holding: Vec<&Flow> = after
        .iter()
        .zip(&carried)
        .filter(|(_, c)| **c == Some(true))
        .map(|(f, _)| *f)
        .collect();
    if !holding.is_empty() {
        return (
            Verdict::Fail,
            format!(
                "{} of {} {name} flow(s) after the step still carry the value: {}{not_judged}",
                holding.len(),
                after.len(),
                list_flows(&holding)
            ),
        );
    }
    let unknown = carried.iter().filter(|c| c.is_none()).count();
    if unknown == after.len() {
        return (
            Verdict::Inconclusive,
            format!(
                "missing evidence: none of the {unknown} {name} flow(s) after the step kept its payload"
            ),
        );
    }
    (
        Verdict::Pass,
        format!(
            "none of the {} {name} flow(s) after the step carries the value{}{not_judged}",
            after.len() - unknown,
            match unknown {
                0 => String::new(),
                n => format!(" ({n} more without a kept payload)"),
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::flow;
    use hilt_cloud::FlowKind;

    fn presence(seq: u64, t_us: u64, payload: &str) -> Flow {
        let mut f = flow(seq, t_us, FlowKind::Publish, true, "vrb/SN/presence");
        f.payload_sha256 = payload.to_string();
        f
    }

    /// The "payload" of these flows is their digest field: `name` carries the value, `-` does not,
    /// `lost` was not kept.
    fn carries(f: &Flow) -> Option<bool> {
        match f.payload_sha256.as_str() {
            "lost" => None,
            p => Some(p == "name"),
        }
    }

    fn verdict(flows: &[Flow]) -> (Verdict, String) {
        let refs: Vec<&Flow> = flows.iter().collect();
        judge("21-PersData/presence", &refs, (100, 200, 200), carries)
    }

    #[test]
    fn flows_in_flight_at_the_step_are_left_out_and_counted() {
        let queued = [
            presence(1, 50, "name"),
            presence(2, 220, "name"),
            presence(3, 400, "-"),
        ];
        let refs: Vec<&Flow> = queued.iter().collect();
        let (v, why) = judge("p", &refs, (100, 200, 1200), carries);
        assert_eq!(v, Verdict::Inconclusive, "nothing after the grace: {why}");
        let (v, why) = judge("p", &refs, (100, 200, 300), carries);
        assert_eq!(v, Verdict::Pass, "{why}");
        assert!(
            why.contains("1 flow(s) within 0 ms") || why.contains("in flight"),
            "{why}"
        );
        let late = [
            presence(1, 50, "name"),
            presence(2, 220, "name"),
            presence(3, 400, "name"),
        ];
        let refs: Vec<&Flow> = late.iter().collect();
        assert_eq!(judge("p", &refs, (100, 200, 300), carries).0, Verdict::Fail);
    }

    #[test]
    fn the_value_must_be_gone_from_later_flows() {
        let ok = [
            presence(1, 50, "name"),
            presence(2, 150, "name"),
            presence(3, 250, "-"),
        ];
        assert_eq!(verdict(&ok).0, Verdict::Pass);
        let kept = [
            presence(1, 50, "name"),
            presence(2, 250, "-"),
            presence(3, 300, "name"),
        ];
        let (v, why) = verdict(&kept);
        assert_eq!(v, Verdict::Fail);
        assert!(why.contains("1 of 2") && why.contains("#3"), "{why}");
    }

    #[test]
    fn nothing_carried_before_or_nothing_after_is_inconclusive() {
        let never = [presence(1, 50, "-"), presence(2, 250, "-")];
        assert_eq!(verdict(&never).0, Verdict::Inconclusive);
        let silent_after = [presence(1, 50, "name"), presence(2, 150, "name")];
        assert_eq!(verdict(&silent_after).0, Verdict::Inconclusive);
        let lost = [presence(1, 50, "name"), presence(2, 250, "lost")];
        assert_eq!(verdict(&lost).0, Verdict::Inconclusive);
        assert_eq!(verdict(&[]).0, Verdict::Inconclusive);
    }
}
