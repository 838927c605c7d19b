//! `login(username, password) → accepted | rejected | locked`.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "login",
    summary: "Authenticate to the device's user interface with a username and password",
    args: &["username", "password"],
    outcomes: &["accepted", "rejected", "locked"],
    refusals: &["rejected"],
    lockouts: &["locked"],
    captures: &[],
    kind: ActionKind::Script,
};
