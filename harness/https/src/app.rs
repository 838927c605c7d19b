//! The companion-app API (JSON, bearer tokens): accounts, device links, privacy-notice inboxes, consent
//! records, erasure and access (export) requests. Users may only reach their own data. An erasure
//! request notifies third parties only when the mock's backend propagation is switched on.

use crate::api::{ApiError, Ctx, User, parse_json};
use crate::backend;
use crate::record::Identity;
use crate::state::now;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/app/v1/accounts", post(create_account))
        .route(
            "/app/v1/devices/{serial}/users",
            get(device_users).post(link_device),
        )
        .route("/app/v1/users/{id}/notices", get(notices))
        .route("/app/v1/users/{id}/consents", get(all_consents))
        .route(
            "/app/v1/users/{id}/consents/{purpose}",
            get(consent).put(set_consent),
        )
        .route("/app/v1/users/{id}/erasure", post(erasure))
        .route("/app/v1/users/{id}/export", get(export))
}

const MAX_NAME: usize = 256;

fn check_name(what: &str, s: &str) -> Result<(), ApiError> {
    if s.trim().is_empty() || s.len() > MAX_NAME {
        return Err(ApiError::BadRequest(format!(
            "{what} must be 1 to {MAX_NAME} bytes"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
struct NewAccountBody {
    name: String,
}

async fn create_account(State(ctx): State<Ctx>, body: Bytes) -> Result<Response, ApiError> {
    let req: NewAccountBody = parse_json(&body)?;
    check_name("name", &req.name)?;
    let acct = ctx.state.create_account(&req.name)?;
    let mut resp = (
        StatusCode::CREATED,
        Json(json!({ "id": acct.id, "name": req.name, "token": acct.token })),
    )
        .into_response();
    resp.extensions_mut().insert(Identity(acct.id));
    Ok(resp)
}

async fn link_device(
    State(ctx): State<Ctx>,
    user: User,
    Path(serial): Path<String>,
) -> Result<Response, ApiError> {
    check_name("serial", &serial)?;
    ctx.state.link(&serial, &user.0)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "device": serial, "user": user.0 })),
    )
        .into_response())
}

async fn device_users(
    State(ctx): State<Ctx>,
    user: User,
    Path(serial): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let ids = ctx.state.device_users(&serial);
    // Only users of the device may see who else uses it.
    if !ids.contains(&user.0) {
        return Err(ApiError::Forbidden);
    }
    let users: Vec<Value> = ids
        .iter()
        .filter_map(|id| ctx.state.account(id))
        .map(|a| json!({ "id": a.id, "name": a.name }))
        .collect();
    Ok(Json(json!({ "device": serial, "users": users })))
}

async fn notices(
    State(ctx): State<Ctx>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    user.owns(&id)?;
    Ok(Json(
        json!({ "user": id, "notices": ctx.state.notices(&id) }),
    ))
}

async fn all_consents(
    State(ctx): State<Ctx>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    user.owns(&id)?;
    Ok(Json(
        json!({ "user": id, "consents": ctx.state.consents(&id) }),
    ))
}

/// A purpose's current state and history for `id`; also what a device gets back for its report.
pub(crate) fn consent_view(ctx: &Ctx, id: &str, purpose: &str) -> Value {
    let history = ctx.state.consent_history(id, purpose);
    let granted = history.last().is_some_and(|e| e.granted);
    json!({ "user": id, "purpose": purpose, "granted": granted, "history": history })
}

async fn consent(
    State(ctx): State<Ctx>,
    user: User,
    Path((id, purpose)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    user.owns(&id)?;
    Ok(Json(consent_view(&ctx, &id, &purpose)))
}

#[derive(Deserialize)]
struct ConsentBody {
    granted: bool,
}

async fn set_consent(
    State(ctx): State<Ctx>,
    user: User,
    Path((id, purpose)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    user.owns(&id)?;
    check_name("purpose", &purpose)?;
    let req: ConsentBody = parse_json(&body)?;
    ctx.state.set_consent(&id, &purpose, req.granted)?;
    tracing::info!(user = %id, purpose, granted = req.granted, "consent recorded");
    Ok(Json(consent_view(&ctx, &id, &purpose)))
}

async fn erasure(
    State(ctx): State<Ctx>,
    user: User,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    user.owns(&id)?;
    // Empty unless backend propagation is on: the mock must not do the device's job unasked.
    let notified = ctx.state.erase(&id)?;
    backend::erasure_notices(&ctx.log, &id, &notified, "on the user's erasure request");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "user": id, "erased": true, "notified": notified })),
    )
        .into_response())
}

async fn export(
    State(ctx): State<Ctx>,
    user: User,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    user.owns(&id)?;
    let account = ctx
        .state
        .account(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no such user: {id}")))?;
    Ok(Json(json!({
        "format": "hilt-export/1",
        "exported": now(),
        "account": account,
        "consents": ctx.state.consents(&id),
        "notices": ctx.state.notices(&id),
        "shared_with": ctx.state.received_about(&id),
    })))
}
