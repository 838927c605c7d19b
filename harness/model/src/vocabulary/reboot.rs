//! `reboot`: restart the device and wait until it is back at its login prompt.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "reboot",
    summary: "Restart the device and wait until its user interface is back",
    args: &[],
    outcomes: &[],
    refusals: &[],
    lockouts: &[],
    captures: &[],
    kind: ActionKind::Script,
};
