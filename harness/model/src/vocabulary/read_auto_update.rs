//! `read-auto-update → on | off | postponed`: the device's automatic-update setting.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "read-auto-update",
    summary: "Read whether the device installs updates automatically",
    args: &[],
    outcomes: &["on", "off", "postponed"],
    refusals: &[],
    lockouts: &[],
    captures: &[],
    kind: ActionKind::Script,
};
