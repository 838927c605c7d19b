//! `set-personal-data(field, value) → saved | refused`: enter personal data through the device's UI
//! (e.g. the owner's `name` or `email`), as a user would.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "set-personal-data",
    summary: "Enter a piece of personal data (name, email, …) through the device's user interface",
    args: &["field", "value"],
    outcomes: &["saved", "refused"],
    refusals: &["refused"],
    lockouts: &[],
    captures: &[],
    kind: ActionKind::Script,
};
