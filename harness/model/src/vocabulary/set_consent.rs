//! `set-consent(purpose, setting) → granted | withdrawn | never | refused`: give (`on`) or withdraw
//! (`off`) consent to an optional purpose on the device; the outcome is the state it then reports.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "set-consent",
    summary: "Give or withdraw consent to an optional purpose of processing on the device",
    args: &["purpose", "setting"],
    outcomes: &["granted", "withdrawn", "never", "refused"],
    refusals: &["refused"],
    lockouts: &[],
    captures: &[],
    kind: ActionKind::Script,
};
