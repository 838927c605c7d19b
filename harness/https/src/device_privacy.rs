//! Privacy routes devices call as themselves (client certificate = serial): `POST /device/pair` links a
//! user to the device, `PUT /device/consents/{purpose}` reports a consent decision made on the device,
//! `POST /device/erasure` reports a factory reset, and `GET /device/users/{id}/consents` lets it learn the
//! decisions its user made in the companion app. What a device reports is kept so the harness can hold
//! it to it; the mock's own erasure propagation only runs when switched on.

use crate::api::{ApiError, Ctx, Device, check_field, parse_json};
use crate::app::consent_view;
use crate::backend;
use crate::state::StateError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

/// Most users one erasure report may name: a device has a handful, not thousands.
const MAX_ERASURE_USERS: usize = 256;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/device/pair", post(pair))
        .route("/device/consents/{purpose}", put(consent))
        .route("/device/erasure", post(erasure))
        .route("/device/users/{id}/consents", get(user_consents))
}

/// A linked user's consent history, every purpose, oldest decision first (the app's and the device's).
async fn user_consents(
    State(ctx): State<Ctx>,
    device: Device,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_field("user", &user)?;
    if !ctx.state.device_users(&device.0).contains(&user) {
        return Err(StateError::NotLinked {
            device: device.0,
            user,
        }
        .into());
    }
    Ok(Json(
        json!({ "user": user, "consents": ctx.state.consents(&user) }),
    ))
}

#[derive(Deserialize)]
struct PairBody {
    user: String,
}

async fn pair(
    State(ctx): State<Ctx>,
    device: Device,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: PairBody = parse_json(&body)?;
    check_field("user", &req.user)?;
    ctx.state
        .link(&device.0, &req.user)
        .map_err(pairing_error)?;
    tracing::info!(device = %device.0, user = %req.user, "device paired");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "device": device.0, "user": req.user })),
    ))
}

/// An erased user exists but can no longer be paired: a conflict, not a missing resource.
fn pairing_error(e: StateError) -> ApiError {
    match e {
        StateError::Erased(_) => ApiError::Conflict(e.to_string()),
        e => e.into(),
    }
}

#[derive(Deserialize)]
struct ConsentBody {
    user: String,
    granted: bool,
}

async fn consent(
    State(ctx): State<Ctx>,
    device: Device,
    Path(purpose): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    check_field("purpose", &purpose)?;
    let req: ConsentBody = parse_json(&body)?;
    check_field("user", &req.user)?;
    ctx.state
        .record_device_consent(&device.0, &req.user, &purpose, req.granted)?;
    tracing::info!(device = %device.0, user = %req.user, purpose, granted = req.granted, "device reported consent");
    Ok(Json(consent_view(&ctx, &req.user, &purpose)))
}

#[derive(Deserialize)]
struct ErasureBody {
    users: Vec<String>,
}

fn check_users(users: &[String]) -> Result<(), ApiError> {
    if users.len() > MAX_ERASURE_USERS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_ERASURE_USERS} users per erasure report, got {}",
            users.len()
        )));
    }
    users.iter().try_for_each(|u| check_field("user", u))
}

async fn erasure(
    State(ctx): State<Ctx>,
    device: Device,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: ErasureBody = parse_json(&body)?;
    check_users(&req.users)?;
    let report = ctx.state.record_device_erasure(&device.0, &req.users);
    // Empty unless backend propagation is on.
    let why = format!("on device {}'s erasure report", device.0);
    for (user, recipients) in &report.notified {
        backend::erasure_notices(&ctx.log, user, recipients, &why);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "device": device.0, "unlinked": report.unlinked })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasure_reports_are_bounded() {
        assert!(check_users(&[]).is_ok());
        assert!(check_users(&vec!["u".to_string(); MAX_ERASURE_USERS]).is_ok());
        assert!(check_users(&vec!["u".to_string(); MAX_ERASURE_USERS + 1]).is_err());
        assert!(check_users(&["u".to_string(), String::new()]).is_err());
    }

    #[test]
    fn erased_users_conflict_unknown_ones_are_missing() {
        assert!(matches!(
            pairing_error(StateError::Erased("u".into())),
            ApiError::Conflict(_)
        ));
        assert!(matches!(
            pairing_error(StateError::UnknownUser("u".into())),
            ApiError::NotFound(_)
        ));
    }
}
