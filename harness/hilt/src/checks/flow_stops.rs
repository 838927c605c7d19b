//! `flow-stops`: the device made the flow of declaration `flow` before step `after` (the withdrawal),
//! and none from `within_ms` after that step ended to the end of the case (EN 303 645 6-3A/6-3B,
//! ICO-WITHDRAW-01/02). A flow never seen before the withdrawal proves nothing by stopping:
//! INCONCLUSIVE; so is an observation too short to show anything after the bound.

use hilt_cloud::Flow;
use hilt_model::Verdict;
use hilt_model::scenario::Number;
use serde::Deserialize;

use super::flow_absent::device_flows_of;
use super::{Check, Evidence, Judgement, Kind, Needs, Params, list_flows};

pub const KIND: Kind = Kind {
    name: "flow-stops",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowStops {
    flow: String,
    after: String,
    within_ms: Number,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: FlowStops = p.get()?;
    if p.scenario.step(&c.after).is_none() {
        return Err(format!("step {:?} is no step of this scenario", c.after));
    }
    Ok(Box::new(c))
}

impl Check for FlowStops {
    fn needs(&self) -> Needs {
        Needs { cloud: true }
    }

    fn numbers(&self) -> Vec<&Number> {
        vec![&self.within_ms]
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let (c, within_ms) = match (ev.cloud(), ev.number(&self.within_ms)) {
            (Ok(c), Ok(n)) => (c, n),
            (Err(j), _) | (_, Err(j)) => return j,
        };
        let step = match ev.step(&self.after) {
            Ok(s) => s,
            Err(j) => return j,
        };
        let (Some(start), Some(end), Some(last)) = (
            step.flow_from_us,
            step.flow_to_us,
            ev.steps.last().and_then(|s| s.flow_to_us),
        ) else {
            return (
                Verdict::Inconclusive,
                "missing evidence: the steps carry no flow-log times".into(),
            );
        };
        let flows = match device_flows_of(c, &self.flow) {
            Ok(f) => f,
            Err(j) => return j,
        };
        let window = Window {
            withdrawn_us: start,
            bound_us: end.saturating_add(within_ms.saturating_mul(1000)),
            end_us: last,
        };
        judge(&self.flow, &flows, &window)
    }
}

struct Window {
    /// When the withdrawal began.
    withdrawn_us: u64,
    /// From when no flow may be seen.
    bound_us: u64,
    /// The end of the observation.
    end_us: u64,
}

fn judge(name: &str, flows: &[&Flow], w: &Window) -> Judgement {
    let before = flows.iter().filter(|f| f.t_us < w.withdrawn_us).count();
    if before == 0 {
        return (
            Verdict::Inconclusive,
            format!(
                "missing evidence: the device never made the {name} flow before the withdrawal, so its stopping proves nothing"
            ),
        );
    }
    let late: Vec<&Flow> = flows
        .iter()
        .copied()
        .filter(|f| f.t_us >= w.bound_us)
        .collect();
    if !late.is_empty() {
        return (
            Verdict::Fail,
            format!(
                "the {name} flow went on after consent was withdrawn: {} time(s), {}",
                late.len(),
                list_flows(&late)
            ),
        );
    }
    if w.end_us <= w.bound_us {
        return (
            Verdict::Inconclusive,
            "missing evidence: the case observed nothing after the declared bound".into(),
        );
    }
    (
        Verdict::Pass,
        format!(
            "the {name} flow was made {before} time(s) before the withdrawal and not once in the {:.1} s observed after its bound",
            (w.end_us - w.bound_us) as f64 / 1e6
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::flow;
    use hilt_cloud::FlowKind;

    #[test]
    fn the_flow_must_be_seen_then_stop_within_the_bound() {
        let at = |t_us| flow(0, t_us, FlowKind::Request, true, "");
        let w = Window {
            withdrawn_us: 1_000,
            bound_us: 2_000,
            end_us: 5_000,
        };
        let (a, b, c) = (at(500), at(1_500), at(3_000));
        // Seen before, once more inside the bound (in flight), then silence.
        assert_eq!(judge("x", &[&a, &b], &w).0, Verdict::Pass);
        let (v, why) = judge("x", &[&a, &c], &w);
        assert!(v == Verdict::Fail && why.contains("1 time(s)"), "{why}");
        assert_eq!(judge("x", &[], &w).0, Verdict::Inconclusive);
        assert_eq!(judge("x", &[&b], &w).0, Verdict::Inconclusive);
        let short = Window { end_us: 2_000, ..w };
        assert_eq!(judge("x", &[&a], &short).0, Verdict::Inconclusive);
    }
}
