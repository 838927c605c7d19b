//! `read-storage → read | refused, captures sha256, bytes`: read the device's storage (a flash dump
//! taken by whatever means the lab has: the image file, a debug probe, a bootloader, an SPI clip) into
//! a snapshot that checks search for planted values. Bound to a memory link.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "read-storage",
    summary: "Read the device's storage (a flash dump) into a snapshot for the checks",
    args: &[],
    outcomes: &["read", "refused"],
    refusals: &["refused"],
    lockouts: &[],
    captures: &["sha256", "bytes"],
    kind: ActionKind::ReadMemory,
};
