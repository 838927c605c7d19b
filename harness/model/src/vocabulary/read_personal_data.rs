//! `read-personal-data → name, email, wifi`: the personal data the device's UI shows.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "read-personal-data",
    summary: "Read the personal data the device's user interface shows",
    args: &[],
    outcomes: &[],
    refusals: &[],
    lockouts: &[],
    captures: &["name", "email", "wifi"],
    kind: ActionKind::Script,
};
