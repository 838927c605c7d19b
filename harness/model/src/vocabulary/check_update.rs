//! `check-update → none | available | rejected | failed`: ask the device to look for an update now
//! and say what it made of the offer, without installing it.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "check-update",
    summary: "Make the device check for an update now and report what it found: nothing new, an update it verified and would install, one it rejected, or a failed check",
    args: &[],
    outcomes: &["none", "available", "rejected", "failed"],
    refusals: &["rejected"],
    lockouts: &[],
    captures: &["version", "detail"],
    kind: ActionKind::Script,
};
