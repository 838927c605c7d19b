//! Scenario steps that act on the mock cloud: injecting faults and waiting for the device's flows; and
//! who the device is in the flow log. The checks that judge the log are in [`crate::checks`].

use hilt_cloud::{Flow, FlowLog};
use hilt_link::Cancel;
use hilt_model::scenario::FlowPattern;
use std::time::Duration;

use crate::cloud::CloudSession;
use crate::faults::FaultKind;

/// A fault as it was applied, in flow-log time.
#[derive(Debug, Clone)]
pub struct FaultWindow {
    /// The fault kind's name (see [`crate::faults`]).
    pub fault: &'static str,
    pub from_us: u64,
    pub to_us: u64,
}

/// Apply `fault` for `length` (cut short if the run is cancelled), then clear it.
pub fn apply_fault(
    cloud: &CloudSession,
    fault: &'static FaultKind,
    length: Duration,
    cancel: &Cancel,
) -> FaultWindow {
    let from_us = cloud.log.now_us();
    (fault.start)(cloud, length);
    cancel.sleep(length);
    cloud.faults.clear();
    FaultWindow {
        fault: fault.name,
        from_us,
        to_us: cloud.log.now_us(),
    }
}

/// A fault put in force until a later step has run (`cloud = "…"` with `until`).
#[derive(Debug)]
pub struct HeldFault {
    pub fault: &'static FaultKind,
    pub from_us: u64,
    /// The step after which it is cleared.
    pub until: String,
}

/// Put `fault` in force for at most `length` and leave it there; [`end_held`] clears it.
pub fn hold_fault(
    cloud: &CloudSession,
    fault: &'static FaultKind,
    length: Duration,
    until: &str,
) -> HeldFault {
    let from_us = cloud.log.now_us();
    (fault.start)(cloud, length);
    HeldFault {
        fault,
        from_us,
        until: until.to_string(),
    }
}

/// Clear a held fault: its window, in flow-log time, is what checks judge.
pub fn end_held(cloud: &CloudSession, held: HeldFault) -> FaultWindow {
    cloud.faults.clear();
    FaultWindow {
        fault: held.fault.name,
        from_us: held.from_us,
        to_us: cloud.log.now_us(),
    }
}

/// Wait up to `timeout` until the device has made flows matching each of `seen`, in order, from
/// flow-log time `since_us` on; true when it has. In slices, so that a cancelled run stops promptly.
pub fn wait_flows_seen(
    log: &FlowLog,
    dut: &Dut,
    since_us: u64,
    seen: &[FlowPattern],
    timeout: Duration,
    cancel: &Cancel,
) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    // Flows appended while `since` runs have seq >= `n`, so none is missed.
    let n = log.next_seq();
    let mut from = log.since(since_us).first().map_or(n, |f| f.seq);
    let mut patterns = seen.iter().peekable();
    while let Some(p) = patterns.peek() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let slice = left.min(hilt_link::cancel_poll());
        match log.wait_for(from, slice, |f| {
            dut.owns(f) && p.matches(f.kind, f.path.as_deref())
        }) {
            Some(f) => {
                from = f.seq + 1;
                patterns.next();
            }
            None if left.is_zero() || cancel.is_cancelled() => return false,
            None => {}
        }
    }
    true
}

/// Who the device under test is in the mock cloud: its login identity and its MQTT client id.
pub struct Dut<'a> {
    pub identity: &'a str,
    pub client_id: &'a str,
}

impl Dut<'_> {
    pub fn of(cloud: &CloudSession) -> Dut<'_> {
        Dut {
            identity: &cloud.dut_username,
            client_id: &cloud.dut_client_id,
        }
    }

    /// Whether a flow is the device's own.
    pub fn owns(&self, f: &Flow) -> bool {
        f.identity.as_deref() == Some(self.identity)
            || f.client_id.as_deref() == Some(self.client_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_cloud::flowlog::NewFlow;
    use hilt_cloud::{FlowKind, Protocol};

    const DUT: Dut = Dut {
        identity: "VRB-1",
        client_id: "VRB-1",
    };

    fn request(log: &FlowLog, identity: &str, path: &str) {
        let mut f = NewFlow::new(Protocol::Http, FlowKind::Request);
        f.identity = Some(identity.into());
        f.path = Some(path.into());
        log.record(f, b"");
    }

    fn pattern(path: &str) -> FlowPattern {
        FlowPattern {
            kind: FlowKind::Request,
            path: Some(regex::Regex::new(path).unwrap()),
        }
    }

    #[test]
    fn flows_count_only_in_order_only_the_devices_and_only_since_the_start() {
        let log = FlowLog::new();
        let cancel = Cancel::new();
        let seen = [pattern("/images/"), pattern("/manifest")];
        let wait = |since_us, ms| {
            wait_flows_seen(
                &log,
                &DUT,
                since_us,
                &seen,
                Duration::from_millis(ms),
                &cancel,
            )
        };
        // Before `since`: not counted.
        request(&log, "VRB-1", "/update/images/a");
        request(&log, "VRB-1", "/update/manifest");
        let since = log.now_us() + 1;
        std::thread::sleep(Duration::from_millis(2));
        assert!(!wait(since, 30));
        // Out of order, or someone else's: not counted.
        request(&log, "VRB-1", "/update/manifest");
        request(&log, "someone-else", "/update/images/a");
        request(&log, "someone-else", "/update/manifest");
        assert!(!wait(since, 30));
        request(&log, "VRB-1", "/update/images/a");
        assert!(!wait(since, 30));
        request(&log, "VRB-1", "/update/manifest");
        assert!(wait(since, 30));
    }

    #[test]
    fn a_flow_made_while_waiting_ends_the_wait_and_a_cancel_ends_it_too() {
        let log = FlowLog::new();
        let cancel = Cancel::new();
        let since = log.now_us();
        let l2 = log.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            request(&l2, "VRB-1", "/update/manifest");
        });
        let t0 = std::time::Instant::now();
        let seen = [pattern("/manifest")];
        assert!(wait_flows_seen(
            &log,
            &DUT,
            since,
            &seen,
            Duration::from_secs(30),
            &cancel
        ));
        assert!(t0.elapsed() < Duration::from_secs(20));
        t.join().unwrap();
        cancel.cancel(2);
        let t0 = std::time::Instant::now();
        let never = [pattern("/never")];
        assert!(!wait_flows_seen(
            &log,
            &DUT,
            since,
            &never,
            Duration::from_secs(30),
            &cancel
        ));
        assert!(t0.elapsed() < Duration::from_secs(20));
    }
}
