//! `read-consent-record(purpose) → granted | withdrawn | never, captures user, at`: the record the
//! device keeps of the owner's decision on an optional purpose (EN 303 645 6-3B, ICO-CONSENT-16):
//! the decision, whose it is and when it was made.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "read-consent-record",
    summary: "Read the device's stored record of a consent decision: whose, which, and when",
    args: &["purpose"],
    outcomes: &["granted", "withdrawn", "never", "refused"],
    refusals: &["refused"],
    lockouts: &[],
    captures: &["user", "at"],
    kind: ActionKind::Script,
};
