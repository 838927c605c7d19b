//! `power-cycle → cycled`: switch the device's supply off and on again over a power link (a labgrid
//! place's power port), as a lab does to test what survives a power cut or to recover a hung unit. A
//! switch that cannot be reached or refuses is the bench's trouble (ERROR), never an outcome.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "power-cycle",
    summary: "Switch the device's power off and on again",
    args: &[],
    outcomes: &["cycled"],
    refusals: &[],
    lockouts: &[],
    captures: &[],
    kind: ActionKind::PowerCycle,
};
