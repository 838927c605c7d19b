//! `set-auto-update(setting) → on | off | postponed`: change the automatic-update setting as a user
//! would (`on`, `off` or `postpone`); the outcome is the setting the device then reports.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "set-auto-update",
    summary: "Switch automatic updates on or off, or postpone them, as a user would",
    args: &["setting"],
    outcomes: &["on", "off", "postponed"],
    refusals: &[],
    lockouts: &[],
    captures: &[],
    kind: ActionKind::Script,
};
