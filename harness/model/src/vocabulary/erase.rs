//! `erase → erased | cancelled`: the device's own erase function (factory reset of user data), as a
//! user or a reseller would use it; `erased` is the device's confirmation (EN 303 645 5.11-1, 5.11-4).

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "erase",
    summary: "Erase all user data and credentials from the device with its own erase function",
    args: &[],
    outcomes: &["erased", "cancelled"],
    refusals: &["cancelled"],
    lockouts: &[],
    captures: &[],
    kind: ActionKind::Script,
};
