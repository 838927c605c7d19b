//! The update server: `GET /update/{*path}` serves whatever file the harness published at exactly that
//! path (see [`crate::CloudState::publish_update`]), over TLS and over the plain listener alike.

use crate::api::{ApiError, Ctx};
use axum::Router;
use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new().route("/update/{*path}", get(file))
}

/// The raw request path is the key, not the percent-decoded one: "exactly the published path".
async fn file(State(ctx): State<Ctx>, uri: Uri) -> Result<Response, ApiError> {
    let path = uri.path();
    let bytes = ctx
        .state
        .update_file(path)
        .ok_or_else(|| ApiError::NotFound(format!("nothing published at {path}")))?;
    Ok(([(header::CONTENT_TYPE, content_type(path))], bytes).into_response())
}

fn content_type(path: &str) -> &'static str {
    if path.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_files_are_json_everything_else_octets() {
        assert_eq!(content_type("/update/m/manifest.json"), "application/json");
        assert_eq!(content_type("/update/m/fw.bin"), "application/octet-stream");
        assert_eq!(content_type("/update/m/json"), "application/octet-stream");
    }
}
