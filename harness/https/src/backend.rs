//! Flows the mock backend makes itself, not on any device's or user's wire: the erasure notices it
//! propagates to third parties (only when [`crate::CloudState::set_backend_propagation`] is on). They
//! are delivered in-process; the flow log still shows each one, as [`Actor::Backend`], so a check can
//! tell the mock's own propagation from what the device did.

use hilt_cloud::flowlog::NewFlow;
use hilt_cloud::{Actor, FlowKind, FlowLog, Protocol};
use serde_json::json;

/// Record one erasure-notice flow per recipient the backend told to erase `user`; `why` says what
/// triggered it.
pub(crate) fn erasure_notices(log: &FlowLog, user: &str, recipients: &[String], why: &str) {
    let payload = json!({ "user": user }).to_string();
    for r in recipients {
        let flow = NewFlow {
            identity: Some(user.to_string()),
            path: Some(format!("/thirdparty/{r}/erasure")),
            method: Some("POST".into()),
            detail: Some(format!("sent by the mock backend {why}")),
            actor: Some(Actor::Backend),
            ..NewFlow::new(Protocol::Http, FlowKind::ErasureNotice)
        };
        log.record(flow, payload.as_bytes());
    }
    if !recipients.is_empty() {
        tracing::info!(user, ?recipients, "backend propagated an erasure");
    }
}
