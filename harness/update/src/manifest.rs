//! The release manifest and its signed form.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hilt_report::keys::KeyPair;
use hilt_report::sign::{Envelope, envelope_bytes, sign_payload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// DSSE payload type of a release manifest.
pub const PAYLOAD_TYPE: &str = "application/vnd.hilt.update-manifest+json";

/// What a release is: for which model, which version, its anti-rollback security version, and the
/// image it consists of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub model: String,
    pub version: String,
    /// Monotonic: a device must never install a release whose security version is lower than the one
    /// it runs (EN 303 645 5.3-2 anti-rollback).
    pub security_version: u64,
    pub image: ImageRef,
    /// For a security update: the risk it addresses, as the device must tell its user (EN 303 645
    /// 5.3-11). `None` for a release that fixes no vulnerability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory: Option<String>,
}

/// Where the image is and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRef {
    pub url: String,
    /// Lowercase hex SHA-256 of the image bytes.
    pub sha256: String,
    pub size: u64,
}

impl Manifest {
    /// The manifest of `image`, served from `url`.
    pub fn for_image(
        model: &str,
        version: &str,
        security_version: u64,
        url: &str,
        image: &[u8],
    ) -> Self {
        Manifest {
            model: model.into(),
            version: version.into(),
            security_version,
            image: ImageRef {
                url: url.into(),
                sha256: hex::encode(Sha256::digest(image)),
                size: image.len() as u64,
            },
            advisory: None,
        }
    }

    /// The manifest's bytes as signed (compact JSON, fields in declaration order).
    pub fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serialises")
    }

    /// The manifest signed by `key`: the envelope file's bytes.
    pub fn sign(&self, key: &KeyPair) -> Vec<u8> {
        envelope_bytes(&sign_payload(PAYLOAD_TYPE, &self.payload(), key))
    }

    /// The manifest in an envelope with no signature at all (the `unsigned` variant).
    pub fn unsigned(&self) -> Vec<u8> {
        envelope_bytes(&Envelope {
            payload: STANDARD.encode(self.payload()),
            payload_type: PAYLOAD_TYPE.to_string(),
            signatures: Vec::new(),
        })
    }
}
