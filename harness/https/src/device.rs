//! Routes devices call as themselves, authenticated by their client certificate: `POST /device/notices`
//! lets a device tell its linked users something (e.g. that it installed or refused an update), all of
//! them or those it names in `users`.

use crate::MAX_NOTICE_CHARS;
use crate::api::{ApiError, Ctx, Device, parse_json};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use bytes::Bytes;
use serde::Deserialize;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new().route("/device/notices", post(notice))
}

#[derive(Deserialize)]
struct NoticeBody {
    text: String,
    /// The users to tell; all linked users when absent.
    #[serde(default)]
    users: Option<Vec<String>>,
}

/// At most this many addressees per notice.
const MAX_ADDRESSEES: usize = 256;

fn check_text(text: &str) -> Result<(), ApiError> {
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_NOTICE_CHARS {
        return Err(ApiError::BadRequest(format!(
            "text must be 1 to {MAX_NOTICE_CHARS} characters, got {chars}"
        )));
    }
    Ok(())
}

async fn notice(
    State(ctx): State<Ctx>,
    device: Device,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let req: NoticeBody = parse_json(&body)?;
    check_text(&req.text)?;
    if req.users.as_ref().is_some_and(|u| u.len() > MAX_ADDRESSEES) {
        return Err(ApiError::BadRequest(format!(
            "a notice names at most {MAX_ADDRESSEES} users"
        )));
    }
    ctx.state
        .device_notice_to(&device.0, &req.text, req.users.as_deref());
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_length_counts_characters_not_bytes() {
        assert!(check_text("").is_err());
        assert!(check_text("é".repeat(MAX_NOTICE_CHARS).as_str()).is_ok());
        assert!(check_text(&"x".repeat(MAX_NOTICE_CHARS + 1)).is_err());
    }
}
