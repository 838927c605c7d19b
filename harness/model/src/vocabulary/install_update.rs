//! `install-update → installing | nothing`: ask the device to install the update its last check
//! verified (it then restarts).

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "install-update",
    summary: "Make the device install the update its last check found (it restarts to do so)",
    args: &[],
    outcomes: &["installing", "nothing"],
    refusals: &["nothing"],
    lockouts: &[],
    captures: &["version"],
    kind: ActionKind::Script,
};
