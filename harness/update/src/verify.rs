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

/// Accept `image` under the signed manifest `envelope` (the envelope file's bytes), or say why not.
pub fn verify(envelope: &[u8], image: &[u8], trust: &Trust) -> Result<Manifest, UpdateError> {
    let env: Envelope =
        serde_json::from_slice(envelope).map_err(|e| UpdateError::Malformed(e.to_string()))?;
    if env.payload_type != PAYLOAD_TYPE {
        return Err(UpdateError::PayloadType(env.payload_type));
    }
    let payload = STANDARD
        .decode(&env.payload)
        .map_err(|e| UpdateError::Malformed(format!("payload: {e}")))?;
    check_signature(&env, &payload, trust.keys)?;
    let manifest: Manifest =
        serde_json::from_slice(&payload).map_err(|e| UpdateError::Malformed(e.to_string()))?;
    check_release(&manifest, image, trust)?;
    Ok(manifest)
}

/// One signature by a trusted key over the PAE of exactly these payload bytes.
fn check_signature(
    env: &Envelope,
    payload: &[u8],
    keys: &[VerifyingKey],
) -> Result<(), UpdateError> {
    let sig = match env.signatures.as_slice() {
        [] => return Err(UpdateError::Unsigned),
        [one] => one,
        _ => return Err(UpdateError::Malformed("more than one signature".into())),
    };
    let key = keys
        .iter()
        .find(|k| key_id(k) == sig.keyid)
        .ok_or_else(|| UpdateError::UntrustedKey(sig.keyid.clone()))?;
    let bytes = STANDARD
        .decode(&sig.sig)
        .map_err(|e| UpdateError::Malformed(format!("signature: {e}")))?;
    let signature = Signature::from_slice(&bytes).map_err(|_| UpdateError::BadSignature)?;
    key.verify_strict(&pae(&env.payload_type, payload), &signature)
        .map_err(|_| UpdateError::BadSignature)
}

fn check_release(m: &Manifest, image: &[u8], trust: &Trust) -> Result<(), UpdateError> {
    if m.model != trust.model {
        return Err(UpdateError::WrongModel {
            offered: m.model.clone(),
            running: trust.model.into(),
        });
    }
    if !m.image.url.starts_with("https://") {
        return Err(UpdateError::InsecureUrl(m.image.url.clone()));
    }
    if m.security_version < trust.running_security_version {
        return Err(UpdateError::Downgrade {
            offered: m.security_version,
            running: trust.running_security_version,
        });
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
