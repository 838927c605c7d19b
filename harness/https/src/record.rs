//! The layer every request passes through: enforce the body limit, record the exchange in the flow log
//! (with the request body as its payload) and apply the response-delay fault. Each request's flow says
//! who made it: a companion-app user (bearer token, or an account just created), else a device (client
//! certificate), else nobody.

use crate::MAX_BODY;
use crate::api::{ConnInfo, Ctx, bearer};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hilt_cloud::flowlog::NewFlow;
use hilt_cloud::{Actor, FlowKind, Protocol};
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// Set by a handler on its response when the request itself established who the caller is (account
/// creation), so the flow is attributed even though no token came with it.
#[derive(Debug, Clone)]
pub(crate) struct Identity(pub String);

pub(crate) async fn record(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let conn = req.extensions().get::<ConnInfo>().cloned();
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    let (parts, body) = req.into_parts();
    // Resolved before the handler runs, so an erasure request is still attributed to the erased user.
    let token_user = bearer(&parts).and_then(|t| ctx.state.authenticate(t));
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let (resp, payload, detail) = if declared.is_some_and(|n| n > MAX_BODY as u64) {
        (
            too_large(),
            Bytes::new(),
            Some("body over limit".to_string()),
        )
    } else {
        match Limited::new(body, MAX_BODY).collect().await {
            Ok(c) => {
                let bytes = c.to_bytes();
                let resp = next
                    .run(Request::from_parts(parts, Body::from(bytes.clone())))
                    .await;
                (resp, bytes, None)
            }
            Err(e) if e.is::<LengthLimitError>() => (
                too_large(),
                Bytes::new(),
                Some("body over limit".to_string()),
            ),
            Err(e) => (
                StatusCode::BAD_REQUEST.into_response(),
                Bytes::new(),
                Some(format!("body unreadable: {e}")),
            ),
        }
    };
    let status = resp.status().as_u16();
    let user = token_user.or_else(|| resp.extensions().get::<Identity>().map(|i| i.0.clone()));
    let cert = conn.as_ref().and_then(|c| c.cert_identity.clone());
    let actor = actor_of(user.is_some(), cert.is_some());
    let identity = user.or(cert);
    // The query can carry a token or a password: only the path goes to the log (the flow keeps both,
    // and the harness masks known secrets in what it stores as evidence).
    let logged_path = path.split('?').next().unwrap_or_default();
    tracing::debug!(%method, path = %logged_path, status, identity = identity.as_deref().unwrap_or("-"), "https request");
    let flow = NewFlow {
        identity,
        tls: conn.as_ref().is_some_and(|c| c.tls),
        server_cert: conn.as_ref().and_then(|c| c.server_cert),
        path: Some(path),
        method: Some(method),
        status: Some(status),
        peer: conn.as_ref().map(|c| c.peer.to_string()),
        detail,
        actor,
        ..NewFlow::new(Protocol::Http, FlowKind::Request)
    };
    ctx.log.record(flow, &payload);
    let delay = ctx.faults.current().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    resp
}

/// A user's credentials win over the device certificate of the connection they came on: a companion
/// app running on the device speaks for its user, not for the device.
fn actor_of(user: bool, cert: bool) -> Option<Actor> {
    match (user, cert) {
        (true, _) => Some(Actor::User),
        (false, true) => Some(Actor::Device),
        (false, false) => None,
    }
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        axum::Json(serde_json::json!({ "error": format!("body over {MAX_BODY} bytes") })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_win_over_devices_and_anonymous_has_no_actor() {
        assert_eq!(actor_of(true, true), Some(Actor::User));
        assert_eq!(actor_of(true, false), Some(Actor::User));
        assert_eq!(actor_of(false, true), Some(Actor::Device));
        assert_eq!(actor_of(false, false), None);
    }
}
