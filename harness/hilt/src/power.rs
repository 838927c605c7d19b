//! Power links: what switches a device's supply off and on. Behind [`PowerSwitch`], so the executor's
//! logic runs against a fake (as probe-rs's `FakeProbe` stands in for a probe); the real switch is
//! the power port of the board's labgrid place, driven through `labgrid-client power cycle`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::labgrid::PlaceConfig;

/// Switches one device's power off and on again.
pub trait PowerSwitch: Send {
    /// What it is, for transcripts and errors (`labgrid place lab-7's power port`).
    fn describe(&self) -> String;
    /// Off, then on. `Err` says why the switch could not be worked: the bench's trouble.
    fn cycle(&self) -> Result<(), String>;
}

/// The power port of an acquired labgrid place.
pub struct LabgridPower {
    pub place: PlaceConfig,
}

impl PowerSwitch for LabgridPower {
    fn describe(&self) -> String {
        format!("labgrid place {}'s power port", self.place.place)
    }

    fn cycle(&self) -> Result<(), String> {
        crate::labgrid::power_cycle(&self.place).map_err(|e| e.to_string())
    }
}

/// A switch for tests: counts its cycles, and fails with `fail` when given one.
#[derive(Clone, Default)]
pub struct FakeSwitch {
    pub cycles: Arc<AtomicUsize>,
    pub fail: Option<String>,
}

impl PowerSwitch for FakeSwitch {
    fn describe(&self) -> String {
        "a fake power switch".into()
    }

    fn cycle(&self) -> Result<(), String> {
        match &self.fail {
            Some(why) => Err(why.clone()),
            None => {
                self.cycles.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }
    }
}
