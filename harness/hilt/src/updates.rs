//! The update offers a scenario makes (`offer_update = "VARIANT"`), put on the mock cloud's update
//! server for the board under test.
//!
//! A board whose profile says `offers = "hilt"` (the virtual board) verifies hilt's own signed
//! manifests with the run's manufacturer key: every variant is made here from fresh builds whose
//! versions only ever go up, so cases may run in any order. A board with declared images gets the
//! manufacturer's own files, a byte flipped for `tampered`; a variant its declaration cannot make is
//! [`Unmakeable`], and the case NOT_TESTED with that reason.

use bytes::Bytes;
use hilt_model::profile::{BoardProfile, DeclaredImages, UpdateOffers};
use hilt_update::variant::{Build, Offer, Publisher, Variant};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cloud::CloudSession;

/// Size of a generated firmware image.
const IMAGE_LEN: usize = 16 * 1024;
/// Largest declared image hilt reads.
const MAX_IMAGE: u64 = 64 * 1024 * 1024;
/// Security version of the older build of a downgrade offer: below any the board can run.
const OLDER_SECURITY_VERSION: u64 = 0;

/// Numbers successive generated releases, so each is newer than anything the board ran before.
static RELEASE: AtomicU64 = AtomicU64::new(1);

/// Why a variant cannot be offered to this board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmakeable(pub String);

/// What was offered, as the step's captures and evidence.
#[derive(Debug, Clone)]
pub struct OfferRecord {
    pub variant: Variant,
    pub version: String,
    pub security_version: Option<u64>,
    pub advisory: Option<String>,
    /// The signed manifest (a DSSE envelope), when the offer has one.
    pub manifest: Option<Vec<u8>>,
    pub image_sha256: String,
    /// Where the image is served.
    pub url: String,
}

impl OfferRecord {
    /// The `offer_update` step's captures (see `hilt_model::scenario::OFFER_CAPTURES`).
    pub fn captures(&self) -> BTreeMap<String, String> {
        let mut c = BTreeMap::new();
        c.insert("variant".into(), self.variant.name().into());
        c.insert("version".into(), self.version.clone());
        if let Some(sv) = self.security_version {
            c.insert("security_version".into(), sv.to_string());
        }
        if let Some(a) = &self.advisory {
            c.insert("advisory".into(), a.clone());
        }
        if let Some(m) = &self.manifest {
            c.insert("manifest_sha256".into(), sha256(m));
        }
        c.insert("image_sha256".into(), self.image_sha256.clone());
        c.insert("url".into(), self.url.clone());
        c
    }
}

fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Whether `variant` can be offered to `profile`'s board at all (before any cloud is involved).
pub fn makeable(profile: &BoardProfile, variant: Variant) -> Result<(), Unmakeable> {
    match &profile.update {
        None => Err(no_update_section()),
        Some(UpdateOffers::Hilt) => Ok(()),
        Some(UpdateOffers::Declared(d)) => declared_source(d, variant).map(|_| ()),
    }
}

fn no_update_section() -> Unmakeable {
    Unmakeable(
        "the board profile has no [update] section saying how updates are offered to it".into(),
    )
}

/// Put `variant` on `cloud`'s update server for `profile`'s board, replacing any earlier offer.
pub fn offer(
    cloud: &CloudSession,
    profile: &BoardProfile,
    variant: Variant,
) -> Result<OfferRecord, Unmakeable> {
    let (files, record) = match &profile.update {
        None => return Err(no_update_section()),
        Some(UpdateOffers::Hilt) => hilt_offer(cloud, &profile.identity.model, variant)?,
        Some(UpdateOffers::Declared(d)) => declared_offer(cloud, d, variant)?,
    };
    cloud
        .state
        .publish_update(files)
        .map_err(|e| Unmakeable(format!("the update server refused the offer: {e}")))?;
    tracing::info!(variant = variant.name(), version = %record.version, url = %record.url, "update offered");
    Ok(record)
}

type Files = Vec<(String, Bytes)>;

/// A fresh pair of builds, newer and older, signed and varied by `hilt-update`.
fn hilt_offer(
    cloud: &CloudSession,
    model: &str,
    variant: Variant,
) -> Result<(Files, OfferRecord), Unmakeable> {
    let n = RELEASE.fetch_add(1, Ordering::Relaxed);
    let newer = Build {
        version: format!("1.{n}.0"),
        security_version: 1 + n,
        advisory: Some(format!(
            "fixes HILT-SA-{n:04}: an attacker on the local network could run code through the console parser"
        )),
        image: random_image()?,
    };
    let older = Build {
        version: "0.9.0".into(),
        security_version: OLDER_SECURITY_VERSION,
        advisory: None,
        image: random_image()?,
    };
    let (vendor, foreign) = cloud.update_keys();
    let images = format!("/update/{model}/images");
    let https_base = format!("{}{images}", cloud.endpoints.https);
    let http_base = format!("{}{images}", cloud.endpoints.http);
    let publisher = Publisher {
        model,
        vendor,
        foreign,
        newer: &newer,
        older: &older,
        https_base: &https_base,
        http_base: &http_base,
    };
    let Offer {
        manifest,
        envelope,
        image,
        ..
    } = publisher.offer(variant);
    let image_path = format!("{images}/{model}-{}.bin", manifest.version);
    let record = OfferRecord {
        variant,
        version: manifest.version.clone(),
        security_version: Some(manifest.security_version),
        advisory: manifest.advisory.clone(),
        manifest: Some(envelope.clone()),
        image_sha256: sha256(&image),
        url: manifest.image.url.clone(),
    };
    let files = vec![
        (
            format!("/update/{model}/manifest.json"),
            Bytes::from(envelope),
        ),
        (image_path, Bytes::from(image)),
    ];
    Ok((files, record))
}

fn random_image() -> Result<Vec<u8>, Unmakeable> {
    let mut image = vec![0u8; IMAGE_LEN];
    getrandom::fill(&mut image).map_err(|e| Unmakeable(format!("no randomness: {e}")))?;
    Ok(image)
}

/// Which declared file (and version) makes `variant`, and the byte to flip for `tampered`.
fn declared_source(
    d: &DeclaredImages,
    variant: Variant,
) -> Result<(&std::path::Path, &str, Option<u64>), Unmakeable> {
    let missing = |what: &str| {
        Unmakeable(format!(
            "the board profile's [update] declares no {what}, so hilt cannot make the {} variant for it",
            variant.name()
        ))
    };
    let newer = d.newer.version.as_str();
    Ok(match variant {
        Variant::Genuine => (&d.newer.file, newer, None),
        Variant::Tampered => (
            &d.newer.file,
            newer,
            Some(
                d.flip_offset
                    .ok_or_else(|| missing("tampered.flip_offset"))?,
            ),
        ),
        Variant::ForeignSigned => (
            d.foreign_signed
                .as_deref()
                .ok_or_else(|| missing("foreign_signed image"))?,
            newer,
            None,
        ),
        Variant::Unsigned => (
            d.unsigned
                .as_deref()
                .ok_or_else(|| missing("unsigned image"))?,
            newer,
            None,
        ),
        Variant::Downgrade => {
            let older = d.older.as_ref().ok_or_else(|| missing("older image"))?;
            (&older.file, older.version.as_str(), None)
        }
        Variant::InsecureChannel => {
            return Err(Unmakeable(
                "the image URL of a board with declared images is the board's own configuration: hilt cannot move it to plain HTTP (test the channel with the untrusted-cert fault instead)".into(),
            ));
        }
    })
}

/// The manufacturer's own image for `variant`, served where the device fetches.
fn declared_offer(
    cloud: &CloudSession,
    d: &DeclaredImages,
    variant: Variant,
) -> Result<(Files, OfferRecord), Unmakeable> {
    let (path, version, flip) = declared_source(d, variant)?;
    let mut image = read_image(path)?;
    if let Some(at) = flip {
        let len = image.len();
        let byte = usize::try_from(at)
            .ok()
            .and_then(|i| image.get_mut(i))
            .ok_or_else(|| {
                Unmakeable(format!(
                    "tampered.flip_offset {at} is past the end of {} ({len} bytes)",
                    path.display()
                ))
            })?;
        *byte ^= 0x01;
    }
    let record = OfferRecord {
        variant,
        version: version.to_string(),
        security_version: None,
        advisory: None,
        manifest: None,
        image_sha256: sha256(&image),
        url: format!("{}{}", cloud.endpoints.https, d.serve_at),
    };
    Ok((vec![(d.serve_at.clone(), Bytes::from(image))], record))
}

/// A declared image, bounded in size; a file that went missing since load says so.
fn read_image(path: &std::path::Path) -> Result<Vec<u8>, Unmakeable> {
    let cannot = |e: String| Unmakeable(format!("cannot read {}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| cannot(e.to_string()))?;
    if !meta.is_file() || meta.len() > MAX_IMAGE {
        return Err(cannot(format!(
            "not a regular file of at most {MAX_IMAGE} bytes"
        )));
    }
    std::fs::read(path).map_err(|e| cannot(e.to_string()))
}
