//! `logout`: back to the unauthenticated state.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "logout",
    summary: "End an authenticated session and return to the unauthenticated state",
    args: &[],
    outcomes: &[],
    refusals: &[],
    lockouts: &[],
    captures: &[],
    kind: ActionKind::Script,
};
