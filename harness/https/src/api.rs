//! Pieces every route uses: the per-connection facts, the shared context, JSON errors, bearer auth for
//! companion-app users and client-certificate auth for devices.

use crate::state::{CloudState, StateError};
use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hilt_cloud::{Faults, FlowLog, ServerCert};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::net::SocketAddr;

/// What the server knows about the connection a request came on.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub tls: bool,
    /// The certificate presented on TLS connections.
    pub server_cert: Option<ServerCert>,
    pub peer: SocketAddr,
    /// The client certificate's CN, if the peer presented one.
    pub cert_identity: Option<String>,
}

#[derive(Clone)]
pub(crate) struct Ctx {
    pub state: CloudState,
    pub log: FlowLog,
    pub faults: Faults,
}

#[derive(Debug)]
pub(crate) enum ApiError {
    Unauthorized,
    /// A device route reached without a client certificate from the run CA.
    NoClientCert,
    Forbidden,
    /// Forbidden, with the reason (e.g. a device speaking for a user it is not paired with).
    Denied(String),
    NotFound(String),
    /// The request clashes with the resource's state (e.g. pairing an erased user).
    Conflict(String),
    BadRequest(String),
    Gone(String),
    Internal(String),
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::UnknownUser(_) | StateError::UnknownRecipient(_) => {
                ApiError::NotFound(e.to_string())
            }
            StateError::Erased(_) => ApiError::Gone(e.to_string()),
            StateError::Random(_) => ApiError::Internal(e.to_string()),
            StateError::BadPath(_) => ApiError::BadRequest(e.to_string()),
            StateError::NotLinked { .. } => ApiError::Denied(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Only the bearer-token failure invites a token; a device needs a certificate instead.
        let challenge = matches!(self, ApiError::Unauthorized);
        let (status, msg) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "missing, invalid or revoked bearer token".to_string(),
            ),
            ApiError::NoClientCert => (
                StatusCode::UNAUTHORIZED,
                "a client certificate issued by the run CA is required".to_string(),
            ),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "not your resource".to_string()),
            ApiError::Denied(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Gone(m) => (StatusCode::GONE, m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        let mut resp = (status, Json(json!({ "error": msg }))).into_response();
        if challenge {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Parse a JSON body without insisting on a content type: devices are sloppy about headers.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))
}

/// Longest identifier or name a device may send (user ids, purposes), in characters.
pub(crate) const MAX_FIELD_CHARS: usize = 256;

/// A string field must be 1 to [`MAX_FIELD_CHARS`] characters and not blank.
pub(crate) fn check_field(what: &str, s: &str) -> Result<(), ApiError> {
    let chars = s.chars().count();
    if s.trim().is_empty() || chars > MAX_FIELD_CHARS {
        return Err(ApiError::BadRequest(format!(
            "{what} must be 1 to {MAX_FIELD_CHARS} characters, got {chars}"
        )));
    }
    Ok(())
}

pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The authenticated companion-app user (from the bearer token).
pub(crate) struct User(pub String);

impl User {
    /// Users may only touch their own resources.
    pub fn owns(&self, id: &str) -> Result<(), ApiError> {
        if self.0 == id {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

impl FromRequestParts<Ctx> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        ctx.state
            .authenticate(token)
            .map(User)
            .ok_or(ApiError::Unauthorized)
    }
}

/// The authenticated device: its client certificate's CN (the TLS layer already checked the chain).
pub(crate) struct Device(pub String);

impl FromRequestParts<Ctx> for Device {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Ctx) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ConnInfo>()
            .and_then(|c| c.cert_identity.clone())
            .map(Device)
            .ok_or(ApiError::NoClientCert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_bounded_in_characters_and_not_blank() {
        assert!(check_field("user", "").is_err());
        assert!(check_field("user", "  ").is_err());
        assert!(check_field("user", &"é".repeat(MAX_FIELD_CHARS)).is_ok());
        assert!(check_field("user", &"x".repeat(MAX_FIELD_CHARS + 1)).is_err());
    }
}
