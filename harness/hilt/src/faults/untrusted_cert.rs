//! `untrusted-cert`: the cloud presents a certificate from a CA the device must not trust, as a man in
//! the middle would (EN 303 645 5.5-1: the device must refuse it).

use std::time::Duration;

use super::FaultKind;
use crate::cloud::CloudSession;

pub const KIND: FaultKind = FaultKind {
    name: "untrusted-cert",
    summary: "present a certificate from a CA the device must not trust (a man in the middle)",
    start,
};

fn start(cloud: &CloudSession, _length: Duration) {
    cloud.faults.present_untrusted_cert(true);
}
