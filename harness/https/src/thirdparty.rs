//! Third-party recipients (analytics, ads, …): they record what they are sent, attributed to the user the
//! JSON body names, and the erasure notices they receive.

use crate::api::{ApiError, Ctx, parse_json};
use crate::state::{Received, now};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/thirdparty/{recipient}/ingest", post(ingest))
        .route("/thirdparty/{recipient}/erasure", post(erasure))
}

/// The `user` field as a string; numeric ids are accepted too.
fn user_of(body: &Value) -> Option<String> {
    match body.get("user")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn ingest(
    State(ctx): State<Ctx>,
    Path(recipient): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let value: Value = parse_json(&body)?;
    let user = user_of(&value);
    let received = Received {
        user: user.clone(),
        body: value,
        payload_sha256: hex::encode(Sha256::digest(&body)),
        time: now(),
    };
    ctx.state.ingest(&recipient, received)?;
    tracing::debug!(
        recipient,
        user = user.as_deref().unwrap_or("-"),
        "third party received data"
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "recipient": recipient, "user": user })),
    ))
}

async fn erasure(
    State(ctx): State<Ctx>,
    Path(recipient): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let value: Value = parse_json(&body)?;
    let user = user_of(&value)
        .ok_or_else(|| ApiError::BadRequest("an erasure notice needs a `user` field".into()))?;
    ctx.state.record_erasure_notice(&recipient, &user)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "recipient": recipient, "user": user })),
    ))
}
