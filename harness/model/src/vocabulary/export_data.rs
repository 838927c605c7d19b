//! `export-data(user) → exported | refused`: ask the device for a user's data (right of access and
//! portability); the export is captured for the checks.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "export-data",
    summary: "Ask the device for an export of one user's data",
    args: &["user"],
    outcomes: &["exported", "refused"],
    refusals: &["refused"],
    lockouts: &[],
    captures: &["export"],
    kind: ActionKind::Script,
};
