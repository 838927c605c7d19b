//! The releases a lab offers a device: the genuine one, and each way an update can be bad. A device
//! conforms when it installs only the genuine one (EN 303 645 5.3-2, 5.3-7, 5.3-9, 5.3-10).

use hilt_report::keys::KeyPair;

use crate::manifest::Manifest;

/// One kind of offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    /// Signed by the manufacturer, newer, over HTTPS: the device must install it.
    Genuine,
    /// One byte of the image changed, the manifest left as signed.
    Tampered,
    /// Re-signed with a key the device must not trust.
    ForeignSigned,
    /// The manifest without any signature.
    Unsigned,
    /// An older, genuinely signed release with a lower security version.
    Downgrade,
    /// The genuine release with its image URL over plain HTTP.
    InsecureChannel,
}

impl Variant {
    pub const ALL: [Variant; 6] = [
        Variant::Genuine,
        Variant::Tampered,
        Variant::ForeignSigned,
        Variant::Unsigned,
        Variant::Downgrade,
        Variant::InsecureChannel,
    ];

    /// The name scenarios use.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Genuine => "genuine",
            Variant::Tampered => "tampered",
            Variant::ForeignSigned => "foreign-signed",
            Variant::Unsigned => "unsigned",
            Variant::Downgrade => "downgrade",
            Variant::InsecureChannel => "insecure-channel",
        }
    }

    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// A release as the manufacturer built it: version, security version and image.
#[derive(Debug, Clone)]
pub struct Build {
    pub version: String,
    pub security_version: u64,
    /// The risk the release addresses, for a security update.
    pub advisory: Option<String>,
    pub image: Vec<u8>,
}

/// What is put on the update server for one variant.
#[derive(Debug, Clone)]
pub struct Offer {
    pub variant: Variant,
    pub manifest: Manifest,
    /// The manifest envelope file's bytes.
    pub envelope: Vec<u8>,
    pub image: Vec<u8>,
}

/// Makes offers for one model from the manufacturer's key, a key the device must not trust, a newer
/// and an older build, and the server's base URLs.
pub struct Publisher<'a> {
    pub model: &'a str,
    pub vendor: &'a KeyPair,
    pub foreign: &'a KeyPair,
    pub newer: &'a Build,
    pub older: &'a Build,
    /// e.g. `https://127.0.0.1:8443/update/MODEL`.
    pub https_base: &'a str,
    /// e.g. `http://127.0.0.1:8080/update/MODEL`.
    pub http_base: &'a str,
}

impl Publisher<'_> {
    pub fn offer(&self, variant: Variant) -> Offer {
        let build = match variant {
            Variant::Downgrade => self.older,
            _ => self.newer,
        };
        let base = match variant {
            Variant::InsecureChannel => self.http_base,
            _ => self.https_base,
        };
        let url = format!("{base}/{}-{}.bin", self.model, build.version);
        let manifest = Manifest {
            advisory: build.advisory.clone(),
            ..Manifest::for_image(
                self.model,
                &build.version,
                build.security_version,
                &url,
                &build.image,
            )
        };
        let envelope = match variant {
            Variant::ForeignSigned => manifest.sign(self.foreign),
            Variant::Unsigned => manifest.unsigned(),
            _ => manifest.sign(self.vendor),
        };
        let mut image = build.image.clone();
        if variant == Variant::Tampered
            && let Some(b) = image.get_mut(build.image.len() / 2)
        {
            *b ^= 0x01;
        }
        Offer {
            variant,
            manifest,
            envelope,
            image,
        }
    }
}
