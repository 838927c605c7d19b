//! `pair(user) → paired | failed`: link the device to a user's companion-app account, as its setup
//! does (the first user is the owner, later ones are household members).

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "pair",
    summary: "Pair the device with a user's companion-app account (the first is the owner)",
    args: &["user"],
    outcomes: &["paired", "failed"],
    refusals: &["failed"],
    lockouts: &[],
    captures: &[],
    kind: ActionKind::Script,
};
