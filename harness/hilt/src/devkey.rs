//! The per-user development signing key, used when no lab key is given. Reports signed with it say so.

use hilt_report::keys::{KeyPair, load_private, write_keypair};
use std::path::PathBuf;

const STEM: &str = "dev-signing";

/// Directory of the development key: `$HILT_DEV_KEY_DIR`, else the user's data directory.
pub fn dir() -> PathBuf {
    std::env::var_os("HILT_DEV_KEY_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::data_dir().map(|d| d.join("hilt")))
        .unwrap_or_else(|| PathBuf::from(".hilt"))
}

/// Load the development key, creating it on first use. Returns the key and its public key's path.
pub fn load_or_create() -> Result<(KeyPair, PathBuf), hilt_report::keys::KeyError> {
    let dir = dir();
    let private = dir.join(format!("{STEM}.key.pem"));
    let public = dir.join(format!("{STEM}.pub.pem"));
    if !private.exists() {
        write_keypair(&dir, STEM)?;
        tracing::info!(path = %private.display(), "created a development signing key");
    }
    Ok((load_private(&private)?, public))
}
