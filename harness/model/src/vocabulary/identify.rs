//! `identify → model, serial, firmware`: what the device's UI says it is.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "identify",
    summary: "Read the device's model designation, serial number and firmware version from its UI",
    args: &[],
    outcomes: &[],
    refusals: &[],
    lockouts: &[],
    captures: &["model", "serial", "firmware"],
    kind: ActionKind::Script,
};
