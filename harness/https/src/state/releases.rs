//! The update server's side of the state: published releases and their images.

use super::{CloudState, Release};
use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};

impl CloudState {
    /// Publish a release: it becomes what `/update/{model}/manifest.json` offers, and its image is served
    /// (earlier images stay downloadable, so publishing an older version after a newer one is a downgrade).
    /// `manifest_override`'s fields are merged over the generated manifest; a `null` field removes it, and a
    /// non-object override is served as the whole manifest.
    pub fn publish_release(
        &self,
        model: &str,
        version: &str,
        image: &[u8],
        manifest_override: Option<Value>,
    ) -> Release {
        let release = Release {
            model: model.to_string(),
            version: version.to_string(),
            file: format!("{model}-{version}.bin"),
            sha256: hex::encode(Sha256::digest(image)),
            size: image.len() as u64,
            manifest_override,
        };
        let mut st = self.lock();
        st.images.insert(
            (model.to_string(), release.file.clone()),
            Bytes::copy_from_slice(image),
        );
        st.releases
            .entry(model.to_string())
            .or_default()
            .push(release.clone());
        tracing::info!(model, version, sha256 = %release.sha256, "release published");
        release
    }

    /// Releases of a model in publication order.
    pub fn releases(&self, model: &str) -> Vec<Release> {
        self.lock().releases.get(model).cloned().unwrap_or_default()
    }

    pub(crate) fn current_release(&self, model: &str) -> Option<Release> {
        self.lock()
            .releases
            .get(model)
            .and_then(|r| r.last().cloned())
    }

    pub(crate) fn image(&self, model: &str, file: &str) -> Option<Bytes> {
        self.lock()
            .images
            .get(&(model.to_string(), file.to_string()))
            .cloned()
    }
}
