//! `periodic-update-check`: from the start of step `after` (a restart) to the end of the case the device
//! checked the update server at least `min_checks` times, first soon after starting and then never
//! leaving more than the declared `interval_ms` (with half of it again as slack) without a check
//! (EN 303 645 5.3-5). A check is a request of the device's own under `/update/` in the flow log.

use hilt_cloud::{Flow, FlowKind};
use hilt_model::Verdict;
use hilt_model::scenario::Number;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Needs, Params};
use crate::exec::Dut;

pub const KIND: Kind = Kind {
    name: "periodic-update-check",
    parse,
};

/// Fixed slack on top of 1.5 intervals: TLS set-up and scheduling on a loaded bench.
const SLACK_US: u64 = 1_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodicUpdateCheck {
    after: String,
    interval_ms: Number,
    #[serde(default = "default_min_checks")]
    min_checks: usize,
}

fn default_min_checks() -> usize {
    2
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: PeriodicUpdateCheck = p.get()?;
    if p.scenario.step(&c.after).is_none() {
        return Err(format!("step {:?} is no step of this scenario", c.after));
    }
    if c.min_checks == 0 {
        return Err("min_checks must be at least 1".into());
    }
    Ok(Box::new(c))
}

impl Check for PeriodicUpdateCheck {
    fn needs(&self) -> Needs {
        Needs { cloud: true }
    }

    fn numbers(&self) -> Vec<&Number> {
        vec![&self.interval_ms]
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let (c, interval_ms) = match (ev.cloud(), ev.number(&self.interval_ms)) {
            (Ok(c), Ok(n)) => (c, n),
            (Err(j), _) | (_, Err(j)) => return j,
        };
        let after = match ev.step(&self.after) {
            Ok(r) => r,
            Err(j) => return j,
        };
        let from = after.flow_from_us;
        let to = ev.steps.last().and_then(|s| s.flow_to_us);
        let (Some(from), Some(to)) = (from, to) else {
            return (
                Verdict::Inconclusive,
                "missing evidence: the steps carry no flow-log times".into(),
            );
        };
        let window = Window {
            from_us: from,
            to_us: to,
            interval_us: interval_ms.saturating_mul(1000),
        };
        judge(&c.dut, c.flows, &window, self.min_checks)
    }
}

struct Window {
    from_us: u64,
    to_us: u64,
    interval_us: u64,
}

fn is_update_check(dut: &Dut, f: &Flow) -> bool {
    f.kind == FlowKind::Request
        && dut.owns(f)
        && f.path.as_deref().is_some_and(|p| p.starts_with("/update/"))
}

fn judge(dut: &Dut, flows: &[Flow], w: &Window, min_checks: usize) -> Judgement {
    let inside = |f: &&Flow| f.t_us >= w.from_us && f.t_us <= w.to_us;
    let times: Vec<u64> = flows
        .iter()
        .filter(inside)
        .filter(|f| is_update_check(dut, f))
        .map(|f| f.t_us)
        .collect();
    if times.is_empty() && !flows.iter().filter(inside).any(|f| dut.owns(f)) {
        return (
            Verdict::Inconclusive,
            "missing evidence: the device made no flow at all to the mock cloud during the window"
                .into(),
        );
    }
    let bound = w.interval_us + w.interval_us / 2 + SLACK_US;
    let secs = |us: u64| us as f64 / 1e6;
    // Gaps: start → first check, between checks, last check → end of the window.
    let mut marks = vec![w.from_us];
    marks.extend(&times);
    marks.push(w.to_us);
    if let Some(gap) = marks.windows(2).map(|p| p[1] - p[0]).max()
        && gap > bound
    {
        return (
            Verdict::Fail,
            format!(
                "{} update check(s) in {:.1} s, with {:.1} s at a stretch without one; the declared interval is {:.1} s",
                times.len(),
                secs(w.to_us - w.from_us),
                secs(gap),
                secs(w.interval_us)
            ),
        );
    }
    if times.len() < min_checks {
        return (
            Verdict::Inconclusive,
            format!(
                "the window of {:.1} s held {} update check(s), fewer than the {min_checks} needed to judge",
                secs(w.to_us - w.from_us),
                times.len()
            ),
        );
    }
    (
        Verdict::Pass,
        format!(
            "{} update checks in {:.1} s after the restart, none more than {:.1} s apart (declared interval {:.1} s)",
            times.len(),
            secs(w.to_us - w.from_us),
            secs(bound),
            secs(w.interval_us)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{DUT, flow};
    use hilt_cloud::Protocol;

    fn check(seq: u64, t_s: f64) -> Flow {
        Flow {
            protocol: Protocol::Http,
            topic: None,
            path: Some("/update/VRB-1/manifest.json".into()),
            ..flow(seq, (t_s * 1e6) as u64, FlowKind::Request, true, "")
        }
    }

    fn window(to_s: u64) -> Window {
        Window {
            from_us: 0,
            to_us: to_s * 1_000_000,
            interval_us: 1_000_000,
        }
    }

    #[test]
    fn checks_must_come_early_and_keep_coming() {
        let regular: Vec<Flow> = (0..4).map(|i| check(i, 0.3 + i as f64)).collect();
        assert_eq!(judge(&DUT, &regular, &window(4), 2).0, Verdict::Pass);
        // Once at boot, then silence.
        let once = [check(0, 0.3)];
        let (v, why) = judge(&DUT, &once, &window(4), 2);
        assert!(
            v == Verdict::Fail && why.contains("3.7 s at a stretch"),
            "{why}"
        );
        // Only talking MQTT: never checks.
        let mqtt = [flow(0, 100, FlowKind::Publish, true, "vrb/x/telemetry")];
        assert_eq!(judge(&DUT, &mqtt, &window(4), 2).0, Verdict::Fail);
        // Silent device: nothing to judge.
        assert_eq!(judge(&DUT, &[], &window(4), 2).0, Verdict::Inconclusive);
        // Someone else's requests do not count.
        let other: Vec<Flow> = regular
            .iter()
            .map(|f| Flow {
                identity: Some("user-1".into()),
                client_id: None,
                ..f.clone()
            })
            .collect();
        assert_eq!(judge(&DUT, &other, &window(4), 2).0, Verdict::Inconclusive);
    }
}
