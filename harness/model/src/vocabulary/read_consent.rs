//! `read-consent(purpose) → granted | withdrawn | never`: the consent state the device reports.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "read-consent",
    summary: "Read the consent state the device holds for an optional purpose",
    args: &["purpose"],
    outcomes: &["granted", "withdrawn", "never", "refused"],
    refusals: &["refused"],
    lockouts: &[],
    captures: &[],
    kind: ActionKind::Script,
};
