//! `orderly-reconnect`: during an outage the device kept trying to reconnect, but no more often than
//! `max_attempts_per_s` (no reconnection storm; EN 303 645 5.9-1, 5.9-3).

use hilt_cloud::{Flow, FlowKind};
use hilt_model::Verdict;
use hilt_model::scenario::{CloudFault, Number};
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Needs, Params};
use crate::exec::FaultWindow;

pub const KIND: Kind = Kind {
    name: "orderly-reconnect",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderlyReconnect {
    max_attempts_per_s: Number,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c = p.get::<OrderlyReconnect>()?;
    let applies_outage = p.scenario.steps.iter().any(|s| {
        matches!(
            s.what,
            hilt_model::scenario::StepWhat::CloudFault {
                fault: CloudFault::Outage,
                ..
            }
        )
    });
    if !applies_outage {
        return Err("the scenario applies no `cloud = \"outage\"` fault to judge".into());
    }
    Ok(Box::new(c))
}

impl Check for OrderlyReconnect {
    fn needs(&self) -> Needs {
        Needs { cloud: true }
    }

    fn numbers(&self) -> Vec<&Number> {
        vec![&self.max_attempts_per_s]
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        match (ev.cloud(), ev.number(&self.max_attempts_per_s)) {
            (Ok(c), Ok(max)) => judge(c.flows, c.windows, max),
            (Err(j), _) | (_, Err(j)) => j,
        }
    }
}

fn judge(flows: &[Flow], windows: &[FaultWindow], max_per_s: u64) -> Judgement {
    let windows: Vec<&FaultWindow> = windows
        .iter()
        .filter(|w| w.fault == CloudFault::Outage)
        .collect();
    if windows.is_empty() {
        return (
            Verdict::Inconclusive,
            "missing evidence: no outage was applied (the case stopped before it)".into(),
        );
    }
    let mut attempts = 0usize;
    let mut seconds = 0.0;
    for w in &windows {
        // Refused connections carry no identity yet: during a bench outage every attempt is the device's.
        attempts += flows
            .iter()
            .filter(|f| {
                f.kind == FlowKind::ConnectRefused && f.t_us >= w.from_us && f.t_us <= w.to_us
            })
            .count();
        seconds += (w.to_us - w.from_us) as f64 / 1e6;
    }
    let rate = attempts as f64 / seconds.max(1e-3);
    if attempts == 0 {
        (
            Verdict::Inconclusive,
            format!(
                "missing evidence: the device made no connection attempt during {seconds:.1} s of outage"
            ),
        )
    } else if rate > max_per_s as f64 {
        (
            Verdict::Fail,
            format!(
                "{attempts} connection attempts in {seconds:.1} s of outage ({rate:.1}/s, more than {max_per_s}/s): a reconnection storm"
            ),
        )
    } else {
        (
            Verdict::Pass,
            format!(
                "{attempts} connection attempts in {seconds:.1} s of outage ({rate:.1}/s, at most {max_per_s}/s allowed)"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::flow;

    #[test]
    fn the_reconnect_rate_is_judged_within_outages() {
        let window = [FaultWindow {
            fault: CloudFault::Outage,
            from_us: 0,
            to_us: 2_000_000,
        }];
        let calm: Vec<Flow> = (0..4)
            .map(|i| flow(i, i * 400_000, FlowKind::ConnectRefused, false, ""))
            .collect();
        assert_eq!(judge(&calm, &window, 5).0, Verdict::Pass);
        let storm: Vec<Flow> = (0..200)
            .map(|i| flow(i, i * 10_000, FlowKind::ConnectRefused, false, ""))
            .collect();
        assert_eq!(judge(&storm, &window, 5).0, Verdict::Fail);
        assert_eq!(judge(&[], &window, 5).0, Verdict::Inconclusive);
    }
}
