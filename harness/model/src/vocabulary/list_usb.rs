//! `list-usb → present`: read the device's USB descriptors (device, configuration, every interface's
//! class, subclass and protocol) as the host enumerates them, for checks on what the device exposes
//! over its USB port (EN 303 645 5.6-3, 5.6-4A). Bound to a usb link; a device that is not on the bus
//! is the bench's trouble (NOT_TESTED), never an outcome.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "list-usb",
    summary: "Read the device's USB descriptors as the host enumerates them",
    args: &[],
    outcomes: &["present"],
    refusals: &[],
    lockouts: &[],
    captures: &["interfaces"],
    kind: ActionKind::ListUsb,
};
