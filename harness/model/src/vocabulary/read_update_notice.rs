//! `read-update-notice → notice | none`: the newest security-update notice the device shows its user,
//! with the version and the risk it addresses (EN 303 645 5.3-11).

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "read-update-notice",
    summary: "Read the newest security-update notice the device shows its user: the version, whether it is available or installed, and the risk it addresses",
    args: &[],
    outcomes: &["notice", "none"],
    refusals: &[],
    lockouts: &[],
    captures: &["version", "state", "risk"],
    kind: ActionKind::Script,
};
