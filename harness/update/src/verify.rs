//! The check a device must make before it installs an update, as the virtual board makes it: a
//! signature by a key it trusts over exactly the manifest's bytes, the manifest for its model, the
//! image matching the manifest's digest and size, a secure delivery URL, and no rollback.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use hilt_report::keys::key_id;
use hilt_report::sign::{Envelope, pae};
use sha2::{Digest, Sha256};

use crate::manifest::{Manifest, PAYLOAD_TYPE};

/// What the device trusts and runs.
#[derive(Debug, Clone)]
pub struct Trust<'a> {
    /// The manufacturer's update keys it was provisioned with.
    pub keys: &'a [VerifyingKey],
    pub model: &'a str,
    /// The security version it runs now.
    pub running_security_version: u64,
}

/// Why an update must be refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("the manifest envelope is malformed: {0}")]
    Malformed(String),
    #[error("the manifest has payload type {0:?}, not an update manifest")]
    PayloadType(String),
    #[error("the manifest is not signed")]
    Unsigned,
    #[error("the manifest is signed by key {0}, which the device does not trust")]
    UntrustedKey(String),
    #[error("the manifest's signature does not verify")]
    BadSignature,
    #[error("the release is for model {offered:?}, not {running:?}")]
    WrongModel { offered: String, running: String },
    #[error("the image is {got} bytes, the manifest says {want}")]
    Size { got: u64, want: u64 },
    #[error("the image's SHA-256 is {got}, the manifest says {want}")]
    Digest { got: String, want: String },
    #[error("the image is delivered over {0:?}, not HTTPS")]
    InsecureUrl(String),
    #[error("security version {offered} is lower than the running {running} (a rollback)")]
    Downgrade { offered: u64, running: u64 },
}

/// Which of the checks a device makes. A conformant device makes all of them ([`Checks::ALL`]); the
/// virtual board's named defects each leave exactly one out, as a flawed update agent would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// A signature must be present at all.
    pub require_signature: bool,
    /// The signing key must be one the device was provisioned with (off: any key id is taken on
    /// trust and its signature not verified).
    pub trusted_key: bool,
    /// The image must match the manifest's SHA-256 and size.
    pub image_digest: bool,
    /// The image URL must be HTTPS.
    pub https_only: bool,
    /// The security version must not go down.
    pub anti_rollback: bool,
}

impl Checks {
    pub const ALL: Checks = Checks {
        require_signature: true,
        trusted_key: true,
        image_digest: true,
        https_only: true,
        anti_rollback: true,
    };
}

/// Accept `image` under the signed manifest `envelope` (the envelope file's bytes), or say why not.
pub fn verify(envelope: &[u8], image: &[u8], trust: &Trust) -> Result<Manifest, UpdateError> {
    let m = verify_manifest(envelope, trust, Checks::ALL)?;
    verify_image(&m, image, Checks::ALL)?;
    Ok(m)
}

/// The checks made before anything is downloaded: the envelope's signature, the model, the image
/// URL's scheme and the security version. A device fetches the image only when these pass.
pub fn verify_manifest(
    envelope: &[u8],
    trust: &Trust,
    checks: Checks,
) -> Result<Manifest, UpdateError> {
    let env: Envelope =
        serde_json::from_slice(envelope).map_err(|e| UpdateError::Malformed(e.to_string()))?;
    if env.payload_type != PAYLOAD_TYPE {
        return Err(UpdateError::PayloadType(env.payload_type));
    }
    let payload = STANDARD
        .decode(&env.payload)
        .map_err(|e| UpdateError::Malformed(format!("payload: {e}")))?;
    check_signature(&env, &payload, trust.keys, checks)?;
    let manifest: Manifest =
        serde_json::from_slice(&payload).map_err(|e| UpdateError::Malformed(e.to_string()))?;
    check_release(&manifest, trust, checks)?;
    Ok(manifest)
}

/// The downloaded image against the manifest's size and digest.
pub fn verify_image(m: &Manifest, image: &[u8], checks: Checks) -> Result<(), UpdateError> {
    if !checks.image_digest {
        return Ok(());
    }
    if image.len() as u64 != m.image.size {
        return Err(UpdateError::Size {
            got: image.len() as u64,
            want: m.image.size,
        });
    }
    let got = hex::encode(Sha256::digest(image));
    if got != m.image.sha256 {
        return Err(UpdateError::Digest {
            got,
            want: m.image.sha256.clone(),
        });
    }
    Ok(())
}

/// One signature by a trusted key over the PAE of exactly these payload bytes.
fn check_signature(
    env: &Envelope,
    payload: &[u8],
    keys: &[VerifyingKey],
    checks: Checks,
) -> Result<(), UpdateError> {
    let sig = match env.signatures.as_slice() {
        [] if !checks.require_signature => return Ok(()),
        [] => return Err(UpdateError::Unsigned),
        [one] => one,
        _ => return Err(UpdateError::Malformed("more than one signature".into())),
    };
    let Some(key) = keys.iter().find(|k| key_id(k) == sig.keyid) else {
        return if checks.trusted_key {
            Err(UpdateError::UntrustedKey(sig.keyid.clone()))
        } else {
            Ok(())
        };
    };
    let bytes = STANDARD
        .decode(&sig.sig)
        .map_err(|e| UpdateError::Malformed(format!("signature: {e}")))?;
    let signature = Signature::from_slice(&bytes).map_err(|_| UpdateError::BadSignature)?;
    key.verify_strict(&pae(&env.payload_type, payload), &signature)
        .map_err(|_| UpdateError::BadSignature)
}

fn check_release(m: &Manifest, trust: &Trust, checks: Checks) -> Result<(), UpdateError> {
    if m.model != trust.model {
        return Err(UpdateError::WrongModel {
            offered: m.model.clone(),
            running: trust.model.into(),
        });
    }
    if checks.https_only && !m.image.url.starts_with("https://") {
        return Err(UpdateError::InsecureUrl(m.image.url.clone()));
    }
    if checks.anti_rollback && m.security_version < trust.running_security_version {
        return Err(UpdateError::Downgrade {
            offered: m.security_version,
            running: trust.running_security_version,
        });
    }
    Ok(())
}
