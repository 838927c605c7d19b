//! Scenario steps that act on the mock cloud: injecting faults and waiting for the device's flows; and
//! who the device is in the flow log. The checks that judge the log are in [`crate::checks`].

use hilt_cloud::Flow;
use hilt_link::Cancel;
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

/// Wait up to `timeout` for a flow from `from` on that satisfies `pred`, in slices so that a
/// cancelled run stops waiting promptly.
pub fn wait_flow(
    cloud: &CloudSession,
    from: u64,
    timeout: Duration,
    cancel: &Cancel,
    pred: impl Fn(&Flow) -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let slice = left.min(hilt_link::cancel_poll());
        if cloud.log.wait_for(from, slice, &pred).is_some() {
            return true;
        }
        if left.is_zero() || cancel.is_cancelled() {
            return false;
        }
    }
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
