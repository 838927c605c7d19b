//! `read-debug-port → read | refused, captures sha256, bytes`: try to read memory through the device's
//! debug port (SWD/JTAG behind a probe or GDB server) as an attacker with physical access would. A
//! port that is locked refuses (EN 303 645 5.6-4A). Bound to a memory link.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "read-debug-port",
    summary: "Try to read memory through the device's debug port",
    args: &[],
    outcomes: &["read", "refused"],
    refusals: &["refused"],
    lockouts: &[],
    captures: &["sha256", "bytes"],
    kind: ActionKind::ReadMemory,
};
