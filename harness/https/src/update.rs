//! The update server: `GET /update/{model}/manifest.json` offers the model's latest published release and
//! `GET /update/{model}/images/{file}` serves any published image.

use crate::api::{ApiError, ConnInfo, Ctx};
use crate::state::Release;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/update/{model}/manifest.json", get(manifest))
        .route("/update/{model}/images/{file}", get(image))
}

async fn manifest(
    State(ctx): State<Ctx>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    Path(model): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let release = ctx
        .state
        .current_release(&model)
        .ok_or_else(|| ApiError::NotFound(format!("no release for model {model}")))?;
    // The image URL names the host the device asked for, so it resolves the way the manifest did.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| conn.peer.to_string(), str::to_string);
    let scheme = if conn.tls { "https" } else { "http" };
    Ok(Json(build_manifest(
        &release,
        &format!("{scheme}://{host}"),
    )))
}

/// The generated manifest with the release's override merged over it.
fn build_manifest(r: &Release, base: &str) -> Value {
    let mut m = json!({
        "model": r.model,
        "version": r.version,
        "url": format!("{base}/update/{}/images/{}", r.model, r.file),
        "sha256": r.sha256,
        "size": r.size,
        // Reserved for a signing scheme; scenarios put a (possibly bad) signature here via the override.
        "signature": null,
    });
    match (&r.manifest_override, &mut m) {
        (Some(Value::Object(over)), Value::Object(base)) => {
            for (k, v) in over {
                if v.is_null() {
                    base.remove(k);
                } else {
                    base.insert(k.clone(), v.clone());
                }
            }
            m
        }
        (Some(other), _) => other.clone(),
        (None, _) => m,
    }
}

async fn image(
    State(ctx): State<Ctx>,
    Path((model, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let bytes = ctx
        .state
        .image(&model, &file)
        .ok_or_else(|| ApiError::NotFound(format!("no image {file} for model {model}")))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(over: Option<Value>) -> Release {
        Release {
            model: "m".into(),
            version: "2.0".into(),
            file: "m-2.0.bin".into(),
            sha256: "ab".into(),
            size: 3,
            manifest_override: over,
        }
    }

    #[test]
    fn overrides_merge_remove_or_replace() {
        let plain = build_manifest(&release(None), "https://h:1");
        assert_eq!(plain["url"], "https://h:1/update/m/images/m-2.0.bin");
        assert!(plain.get("signature").is_some_and(Value::is_null));
        let merged = build_manifest(
            &release(Some(json!({"sha256": "00", "size": null}))),
            "https://h",
        );
        assert_eq!(merged["sha256"], "00");
        assert!(merged.get("size").is_none());
        assert_eq!(merged["version"], "2.0");
        assert_eq!(build_manifest(&release(Some(json!([1]))), "x"), json!([1]));
    }
}
