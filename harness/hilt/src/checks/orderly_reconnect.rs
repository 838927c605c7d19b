//! `orderly-reconnect`: during an outage the device kept trying to reconnect, but no more often than
//! `max_attempts_per_s` (no reconnection storm; EN 303 645 5.9-1, 5.9-3). `protocol = "mqtt"` judges
//! the link to one service only (the device's periodic HTTPS requests are no reconnections).

use hilt_cloud::{Flow, FlowKind};
use hilt_model::Verdict;
use hilt_model::scenario::Number;
use serde::Deserialize;

use crate::faults::outage;

use super::{Check, Evidence, Judgement, Kind, Needs, Params};
use crate::exec::{Dut, FaultWindow};

pub const KIND: Kind = Kind {
    name: "orderly-reconnect",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderlyReconnect {
    max_attempts_per_s: Number,
    /// Only connections over this protocol are judged (all when absent).
    protocol: Option<hilt_cloud::Protocol>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c = p.get::<OrderlyReconnect>()?;
    p.require_fault(&outage::KIND)?;
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
            (Ok(c), Ok(max)) => judge(
                &c.dut,
                &super::channel(c.flows, self.protocol),
                c.windows,
                max,
            ),
            (Err(j), _) | (_, Err(j)) => j,
        }
    }
}

/// The most attempts within any one second (a burst is a storm even when the average is calm).
fn peak_per_second(times_us: &[u64]) -> usize {
    let mut peak = 0;
    let mut from = 0;
    for (i, t) in times_us.iter().enumerate() {
        while times_us[from] + 1_000_000 <= *t {
            from += 1;
        }
        peak = peak.max(i + 1 - from);
    }
    peak
}

fn judge(dut: &Dut, flows: &[Flow], windows: &[FaultWindow], max_per_s: u64) -> Judgement {
    let windows: Vec<&FaultWindow> = windows
        .iter()
        .filter(|w| w.fault == outage::KIND.name)
        .collect();
    let Some(last) = windows.iter().map(|w| w.to_us).max() else {
        return (
            Verdict::Inconclusive,
            "missing evidence: no outage was applied (the case stopped before it)".into(),
        );
    };
    // Refused connections carry no identity yet: during a bench outage every attempt is the device's.
    let mut times: Vec<u64> = flows
        .iter()
        .filter(|f| f.kind == FlowKind::ConnectRefused)
        .filter(|f| {
            windows
                .iter()
                .any(|w| f.t_us >= w.from_us && f.t_us <= w.to_us)
        })
        .map(|f| f.t_us)
        .collect();
    times.sort_unstable();
    let seconds: f64 = windows
        .iter()
        .map(|w| (w.to_us - w.from_us) as f64 / 1e6)
        .sum();
    let attempts = times.len();
    let peak = peak_per_second(&times);
    if peak as u64 > max_per_s {
        return (
            Verdict::Fail,
            format!(
                "{peak} connection attempts within one second of the outage (more than {max_per_s}/s; {attempts} in {seconds:.1} s): a reconnection storm"
            ),
        );
    }
    if attempts == 0 {
        return (
            Verdict::Inconclusive,
            format!(
                "missing evidence: the device made no connection attempt during {seconds:.1} s of outage"
            ),
        );
    }
    let reconnected = flows
        .iter()
        .any(|f| f.kind == FlowKind::Connect && f.t_us > last && dut.owns(f));
    if !reconnected {
        return (
            Verdict::Inconclusive,
            "missing evidence: the device did not reconnect after the outage within the case"
                .into(),
        );
    }
    (
        Verdict::Pass,
        format!(
            "{attempts} connection attempts in {seconds:.1} s of outage, at most {peak} within any second ({max_per_s}/s allowed), then it reconnected"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{DUT, flow};

    fn outage() -> [FaultWindow; 1] {
        [FaultWindow {
            fault: outage::KIND.name,
            from_us: 0,
            to_us: 3_000_000,
        }]
    }

    fn refused(times_ms: impl IntoIterator<Item = u64>) -> Vec<Flow> {
        times_ms
            .into_iter()
            .enumerate()
            .map(|(i, ms)| flow(i as u64, ms * 1000, FlowKind::ConnectRefused, false, ""))
            .collect()
    }

    fn reconnect(mut flows: Vec<Flow>) -> Vec<Flow> {
        flows.push(flow(999, 3_500_000, FlowKind::Connect, true, ""));
        flows
    }

    #[test]
    fn a_calm_device_that_reconnects_passes() {
        let calm = reconnect(refused([200, 600, 1400, 2800]));
        assert_eq!(judge(&DUT, &calm, &outage(), 5).0, Verdict::Pass);
    }

    #[test]
    fn a_burst_fails_even_when_the_average_is_calm() {
        // 20 attempts in the first second, then silence: 6.7/s on average over 3 s, 20 in one second.
        let burst = reconnect(refused((0..20).map(|i| i * 40)));
        let (v, why) = judge(&DUT, &burst, &outage(), 10);
        assert_eq!(v, Verdict::Fail, "{why}");
        let long = [FaultWindow {
            fault: outage::KIND.name,
            from_us: 0,
            to_us: 60_000_000,
        }];
        assert_eq!(judge(&DUT, &burst, &long, 10).0, Verdict::Fail);
    }

    #[test]
    fn no_attempt_or_no_reconnect_is_inconclusive() {
        assert_eq!(judge(&DUT, &[], &outage(), 5).0, Verdict::Inconclusive);
        let (v, why) = judge(&DUT, &refused([200, 900]), &outage(), 5);
        assert_eq!(v, Verdict::Inconclusive);
        assert!(why.contains("did not reconnect"), "{why}");
        assert_eq!(judge(&DUT, &[], &[], 5).0, Verdict::Inconclusive);
    }

    #[test]
    fn other_services_requests_are_no_reconnections_on_the_mqtt_channel() {
        // Calm MQTT reconnects, plus periodic HTTPS requests refused every 100 ms.
        let mut flows = reconnect(refused([200, 1400, 2800]));
        flows.extend((0..30).map(|i| {
            let mut f = flow(100 + i, i * 100_000, FlowKind::ConnectRefused, false, "");
            f.protocol = hilt_cloud::Protocol::Http;
            f
        }));
        assert_eq!(judge(&DUT, &flows, &outage(), 5).0, Verdict::Fail);
        let mqtt = crate::checks::channel(&flows, Some(hilt_cloud::Protocol::Mqtt));
        assert_eq!(judge(&DUT, &mqtt, &outage(), 5).0, Verdict::Pass);
    }

    #[test]
    fn the_peak_counts_attempts_within_any_second() {
        assert_eq!(peak_per_second(&[]), 0);
        assert_eq!(peak_per_second(&[0, 500_000, 999_999, 1_999_999]), 3);
        assert_eq!(peak_per_second(&[0, 2_000_000, 4_000_000]), 1);
    }
}
