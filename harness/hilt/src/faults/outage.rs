//! `outage`: the cloud refuses every connection, as during a backend outage (EN 303 645 5.9: the device
//! keeps working and reconnects in an orderly way).

use hilt_cloud::OutageMode;
use std::time::Duration;

use super::FaultKind;
use crate::cloud::CloudSession;

pub const KIND: FaultKind = FaultKind {
    name: "outage",
    summary: "refuse every connection",
    start,
};

fn start(cloud: &CloudSession, length: Duration) {
    cloud.faults.outage(OutageMode::Refuse, length);
}
