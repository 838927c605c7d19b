//! `read-privacy-info → shown | unavailable`: the privacy information the device gives someone who has
//! no account and does not log in (a visitor, a household member without the app; ICO-MULTI-09).

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "read-privacy-info",
    summary: "Read, without an account or a login, the privacy information the device offers",
    args: &[],
    outcomes: &["shown", "unavailable"],
    refusals: &["unavailable"],
    lockouts: &[],
    captures: &["summary"],
    kind: ActionKind::Script,
};
