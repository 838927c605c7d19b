//! `read-support-period → published | unpublished`: the support period's end date as the device
//! shows it to anyone, without logging in (EN 303 645 5.3-13, PSTI Sch.1 para 3).

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "read-support-period",
    summary: "Read, without logging in, the end date of the security-update support period the device shows",
    args: &[],
    outcomes: &["published", "unpublished"],
    refusals: &[],
    lockouts: &[],
    captures: &["end_date"],
    kind: ActionKind::Script,
};
