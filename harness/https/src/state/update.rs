//! The update server's side of the state: the set of files the harness currently offers under
//! `/update/`. The harness builds manifests, images and signatures itself; the server only serves bytes.

use super::{CloudState, StateError};
use bytes::Bytes;
use std::collections::BTreeMap;

/// Every served path starts with this.
pub(crate) const UPDATE_PREFIX: &str = "/update/";

/// Whether a request can reach `path` exactly: the update route matches the raw request path, so a key
/// with a query, fragment, space or dot segment could never be fetched and is refused up front.
fn check_path(path: &str) -> Result<(), StateError> {
    let bad = || StateError::BadPath(path.to_string());
    let rest = path.strip_prefix(UPDATE_PREFIX).ok_or_else(bad)?;
    let plain_chars = rest
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
    let plain_segments = rest
        .split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if plain_chars && plain_segments {
        Ok(())
    } else {
        Err(bad())
    }
}

impl CloudState {
    /// Replace the whole offer with `files` (absolute path → bytes; a later duplicate wins). Nothing
    /// changes if any path is refused (see [`StateError::BadPath`]).
    pub fn publish_update(&self, files: Vec<(String, Bytes)>) -> Result<(), StateError> {
        for (path, _) in &files {
            check_path(path)?;
        }
        let offer: BTreeMap<String, Bytes> = files.into_iter().collect();
        for (path, bytes) in &offer {
            tracing::debug!(path, size = bytes.len(), "update file offered");
        }
        tracing::info!(files = offer.len(), "update published");
        self.lock().update_files = offer;
        Ok(())
    }

    /// Stop offering any update: every `/update/` path answers 404 from now on.
    pub fn withdraw_update(&self) {
        let withdrawn = std::mem::take(&mut self.lock().update_files).len();
        tracing::info!(files = withdrawn, "update withdrawn");
    }

    /// The paths currently served, sorted.
    pub fn update_files(&self) -> Vec<String> {
        self.lock().update_files.keys().cloned().collect()
    }

    pub(crate) fn update_file(&self, path: &str) -> Option<Bytes> {
        self.lock().update_files.get(path).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> (String, Bytes) {
        (path.to_string(), Bytes::from_static(b"x"))
    }

    #[test]
    fn only_reachable_update_paths_are_accepted() {
        for ok in [
            "/update/manifest.json",
            "/update/vb1/images/fw-1.2.bin",
            "/update/a%20b",
        ] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "update/x",
            "/update/",
            "/updates/x",
            "/other/x",
            "/update//x",
            "/update/x/",
            "/update/../x",
            "/update/./x",
            "/update/x?y",
            "/update/x#y",
            "/update/a b",
            "/update/é",
        ] {
            assert_eq!(
                check_path(bad),
                Err(StateError::BadPath(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn publishing_replaces_the_offer_atomically() {
        let s = CloudState::new(&[]);
        s.publish_update(vec![file("/update/a"), file("/update/b")])
            .unwrap();
        assert_eq!(s.update_files(), vec!["/update/a", "/update/b"]);
        assert!(
            s.publish_update(vec![file("/update/c"), file("/x")])
                .is_err()
        );
        assert_eq!(s.update_files(), vec!["/update/a", "/update/b"]);
        s.publish_update(vec![file("/update/c")]).unwrap();
        assert_eq!(s.update_files(), vec!["/update/c"]);
        assert!(s.update_file("/update/a").is_none());
        s.withdraw_update();
        assert!(s.update_files().is_empty());
    }
}
