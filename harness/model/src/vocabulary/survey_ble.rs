//! `survey-ble → surveyed`: as anyone in radio range could, without pairing: hear the device's
//! advertisement, connect, list its GATT services and characteristics, and read every characteristic
//! that allows reading (EN 303 645 5.6-1, 5.6-2, 5.8-1). Bound to a ble link; a device not heard in
//! the scan, or a machine without Bluetooth, is the bench's trouble (NOT_TESTED), never an outcome.

use super::{ActionKind, ActionSpec};

pub const SPEC: ActionSpec = ActionSpec {
    name: "survey-ble",
    summary: "Survey the device's BLE advertisement and GATT table, unpaired",
    args: &[],
    outcomes: &["surveyed"],
    refusals: &[],
    lockouts: &[],
    captures: &["services", "readable"],
    kind: ActionKind::SurveyBle,
};
