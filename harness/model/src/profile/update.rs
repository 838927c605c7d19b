//! `[update]`: how hilt's mock update server makes offers for this board.
//!
//! ```toml
//! [update]
//! offers = "hilt"        # hilt signs releases with the run's key, which the board is given at launch
//! ```
//!
//! A real product verifies its own image format with its manufacturer's key, which hilt cannot sign
//! for; its profile declares the manufacturer's own test images and how the bad variants are made
//! from them (paths relative to the profile):
//!
//! ```toml
//! [update]
//! offers = "declared"
//! serve_at = "/update/acme-cam/firmware.bin"   # where the device (pointed at the mock cloud) fetches
//! newer = { file = "images/cam-2.1.0.bin", version = "2.1.0" }
//! older = { file = "images/cam-1.9.0.bin", version = "1.9.0" }
//! tampered = { flip_offset = 4096 }            # one byte of `newer` changed here
//! foreign_signed = { file = "images/cam-2.1.0-foreign.bin" }
//! unsigned = { file = "images/cam-2.1.0-unsigned.bin" }
//! ```
//!
//! A variant a declaration cannot make is NOT_TESTED with the reason, never skipped.

use serde::Deserialize;
use serde_spanned::Spanned;
use std::path::{Path, PathBuf};

use crate::error::{LoadError, Source};

/// How offers are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOffers {
    /// hilt builds and signs releases in its own signed-manifest format (`hilt-update`).
    Hilt,
    Declared(DeclaredImages),
}

/// The manufacturer's own images, resolved against the profile's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredImages {
    /// Absolute path under `/update/` where the mock cloud serves the offered image.
    pub serve_at: String,
    pub newer: DeclaredImage,
    pub older: Option<DeclaredImage>,
    /// Where to flip one byte of `newer` for the `tampered` variant.
    pub flip_offset: Option<u64>,
    pub foreign_signed: Option<PathBuf>,
    pub unsigned: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredImage {
    pub file: PathBuf,
    pub version: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpdate {
    offers: String,
    serve_at: Option<String>,
    newer: Option<RawImage>,
    older: Option<RawImage>,
    tampered: Option<RawTamper>,
    foreign_signed: Option<RawFile>,
    unsigned: Option<RawFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    file: String,
    version: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTamper {
    flip_offset: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    file: String,
}

impl RawUpdate {
    pub(super) fn validate(
        raw: Spanned<RawUpdate>,
        src: &Source,
        dir: &Path,
    ) -> Result<UpdateOffers, LoadError> {
        let span = raw.span();
        let err = |m: String| src.err(span.clone(), format!("update: {m}"));
        let r = raw.into_inner();
        match r.offers.as_str() {
            "hilt" => {
                let extra = r.serve_at.is_some()
                    || r.newer.is_some()
                    || r.older.is_some()
                    || r.tampered.is_some()
                    || r.foreign_signed.is_some()
                    || r.unsigned.is_some();
                if extra {
                    return Err(err("offers = \"hilt\" takes no declared images (they go with offers = \"declared\")".into()));
                }
                Ok(UpdateOffers::Hilt)
            }
            "declared" => r.declared(dir).map_err(err).map(UpdateOffers::Declared),
            other => Err(err(format!(
                "offers must be \"hilt\" or \"declared\" (got {other:?})"
            ))),
        }
    }

    fn declared(self, dir: &Path) -> Result<DeclaredImages, String> {
        let serve_at = self
            .serve_at
            .ok_or("offers = \"declared\" needs `serve_at`, the path the device fetches from")?;
        if !serve_at.starts_with("/update/") || serve_at.contains("..") {
            return Err(format!(
                "serve_at {serve_at:?} must be a path under /update/"
            ));
        }
        let newer = self.newer.ok_or(
            "offers = \"declared\" needs `newer`, the manufacturer's genuinely signed newer image",
        )?;
        let file = |name: &str, f: String| existing(dir, name, &f);
        Ok(DeclaredImages {
            serve_at,
            newer: DeclaredImage {
                file: file("newer", newer.file)?,
                version: newer.version,
            },
            older: match self.older {
                Some(o) => Some(DeclaredImage {
                    file: file("older", o.file)?,
                    version: o.version,
                }),
                None => None,
            },
            flip_offset: self.tampered.map(|t| t.flip_offset),
            foreign_signed: self
                .foreign_signed
                .map(|f| file("foreign_signed", f.file))
                .transpose()?,
            unsigned: self
                .unsigned
                .map(|f| file("unsigned", f.file))
                .transpose()?,
        })
    }
}

/// `rel` resolved against the profile's directory; it must exist as a regular file.
fn existing(dir: &Path, name: &str, rel: &str) -> Result<PathBuf, String> {
    let p = dir.join(rel);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!("{name}: image file {} not found", p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, dir: &Path) -> Result<UpdateOffers, String> {
        #[derive(Deserialize)]
        struct Doc {
            update: Spanned<RawUpdate>,
        }
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        let src = Source {
            path: Path::new("b.toml"),
            text,
        };
        RawUpdate::validate(doc.update, &src, dir).map_err(|e| e.to_string())
    }

    #[test]
    fn hilt_offers_take_no_images_and_declared_ones_need_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("new.bin"), b"new").unwrap();
        assert_eq!(
            parse("[update]\noffers = \"hilt\"\n", dir.path()),
            Ok(UpdateOffers::Hilt)
        );
        let e = parse(
            "[update]\noffers = \"hilt\"\nserve_at = \"/update/x\"\n",
            dir.path(),
        )
        .unwrap_err();
        assert!(
            e.starts_with("b.toml:1:1") && e.contains("no declared images"),
            "{e}"
        );
        let ok = "[update]\noffers = \"declared\"\nserve_at = \"/update/m/fw.bin\"\nnewer = { file = \"new.bin\", version = \"2\" }\ntampered = { flip_offset = 1 }\n";
        match parse(ok, dir.path()).unwrap() {
            UpdateOffers::Declared(d) => {
                assert_eq!(d.newer.file, dir.path().join("new.bin"));
                assert_eq!(d.flip_offset, Some(1));
                assert!(d.older.is_none() && d.unsigned.is_none());
            }
            other => panic!("{other:?}"),
        }
        let missing = ok.replace("new.bin", "gone.bin");
        assert!(
            parse(&missing, dir.path())
                .unwrap_err()
                .contains("gone.bin")
        );
        let outside = ok.replace("/update/m/fw.bin", "/etc/passwd");
        assert!(
            parse(&outside, dir.path())
                .unwrap_err()
                .contains("under /update/")
        );
        assert!(
            parse("[update]\noffers = \"magic\"\n", dir.path())
                .unwrap_err()
                .contains("\"magic\"")
        );
    }
}
