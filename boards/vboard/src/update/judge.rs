//! What the agent concludes from an offer, with no I/O: the checks of [`hilt_update`] (as many as the
//! board's defects leave in place), and the console lines and notices that report the outcome.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use hilt_update::{Checks, Manifest, Trust, verify_image, verify_manifest};

use super::state::SlotInfo;
use crate::MODEL;
use crate::cloud::printable;
use crate::defects::{Defect, DefectSet};

/// Longest `update: check failed: ...` line, in characters.
pub const MAX_FAILED_LINE: usize = 200;
/// Longest other `update:` line: a rejection names two digests.
const MAX_LINE: usize = 400;
/// Longest version shown, in characters.
const MAX_VERSION: usize = 64;
/// Longest notice, in characters (as cloud notices).
const MAX_NOTICE: usize = 200;

/// The checks the agent makes: all of them, less the one a defect leaves out.
pub fn checks_for(defects: &DefectSet) -> Checks {
    Checks {
        require_signature: !defects.has(Defect::AcceptsUnsigned),
        trusted_key: !defects.has(Defect::TrustsAnyKey),
        image_digest: !defects.has(Defect::SkipsImageDigest),
        https_only: !defects.has(Defect::FollowsPlainHttp),
        anti_rollback: !defects.has(Defect::AllowsDowngrade),
    }
}

/// Why an offer was refused, with its version when the manifest could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub version: Option<String>,
    pub reason: String,
}

/// The manifest checks, made before anything is downloaded. `Ok(None)` when the offer is the
/// firmware already running.
pub fn judge_manifest(
    envelope: &[u8],
    running: &SlotInfo,
    key: &VerifyingKey,
    checks: Checks,
) -> Result<Option<Manifest>, Rejection> {
    let trust = Trust {
        keys: std::slice::from_ref(key),
        model: MODEL,
        running_security_version: running.security_version,
    };
    let manifest = verify_manifest(envelope, &trust, checks).map_err(|e| Rejection {
        version: peek_version(envelope),
        reason: e.to_string(),
    })?;
    if manifest.version == running.version && manifest.image.sha256 == running.sha256 {
        return Ok(None);
    }
    Ok(Some(manifest))
}

/// The downloaded image against its manifest.
pub fn judge_image(manifest: &Manifest, image: &[u8], checks: Checks) -> Result<(), Rejection> {
    verify_image(manifest, image, checks).map_err(|e| Rejection {
        version: Some(manifest.version.clone()),
        reason: e.to_string(),
    })
}

/// The version a manifest claims, read without trusting it, for the rejection line.
fn peek_version(envelope: &[u8]) -> Option<String> {
    let env: serde_json::Value = serde_json::from_slice(envelope).ok()?;
    let payload = STANDARD.decode(env.get("payload")?.as_str()?).ok()?;
    let manifest: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    Some(manifest.get("version")?.as_str()?.to_string())
}

/// The outcome of one check, as the console reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing offered, or the offer is what runs.
    Current {
        running: String,
    },
    Rejected(Rejection),
    /// A verified update.
    Available {
        version: String,
        advisory: Option<String>,
    },
    /// Network, TLS or HTTP trouble.
    Failed(String),
}

impl Outcome {
    /// The one console line, without its line ending; text from the network made safe to print.
    pub fn line(&self) -> String {
        match self {
            Outcome::Current { running } => bounded(
                &format!("update: none available (running {running})"),
                MAX_LINE,
            ),
            Outcome::Rejected(r) => {
                let version = r.version.as_deref().map_or("-".into(), version_text);
                bounded(
                    &format!("update: rejected {version}: {}", r.reason),
                    MAX_LINE,
                )
            }
            Outcome::Available { version, advisory } => {
                let version = version_text(version);
                let line = match advisory {
                    Some(risk) => format!("update: available {version} (security update): {risk}"),
                    None => format!("update: available {version}"),
                };
                bounded(&line, MAX_LINE)
            }
            Outcome::Failed(error) => {
                bounded(&format!("update: check failed: {error}"), MAX_FAILED_LINE)
            }
        }
    }
}

/// `security update {version} available: {risk}`.
pub fn available_notice(version: &str, risk: &str) -> String {
    bounded(
        &format!(
            "security update {} available: {risk}",
            version_text(version)
        ),
        MAX_NOTICE,
    )
}

/// `security update {version} installed: {risk}`.
pub fn installed_notice(version: &str, risk: &str) -> String {
    bounded(
        &format!(
            "security update {} installed: {risk}",
            version_text(version)
        ),
        MAX_NOTICE,
    )
}

/// The restart warning given before every install (without its surrounding line breaks).
pub fn restart_warning(warn_s: u64, version: &str) -> String {
    format!(
        "*** update: the device restarts in {warn_s} s to install {} ***",
        version_text(version)
    )
}

/// The answer to `update install` when there is something to install.
pub fn installing_line(version: &str, warn_s: u64) -> String {
    format!(
        "update: installing {}; the device restarts in {warn_s} s",
        version_text(version)
    )
}

/// Whole seconds of a warning, rounded up (a 200 ms warning is "1 s", not "0 s").
pub fn warn_secs(warn_ms: u64) -> u64 {
    warn_ms.div_ceil(1000)
}

fn version_text(version: &str) -> String {
    printable(version.as_bytes(), MAX_VERSION)
}

fn bounded(text: &str, max_chars: usize) -> String {
    printable(text.as_bytes(), max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_report::keys::KeyPair;
    use hilt_update::variant::{Build, Publisher, Variant};

    struct Lab {
        vendor: KeyPair,
        foreign: KeyPair,
        newer: Build,
        older: Build,
    }

    fn lab() -> Lab {
        Lab {
            vendor: KeyPair::from_seed(&[7; 32]),
            foreign: KeyPair::from_seed(&[8; 32]),
            newer: Build {
                version: "1.1.0".into(),
                security_version: 2,
                advisory: Some("fixes remote code execution".into()),
                image: (0..3000u32).map(|i| (i * 7 % 251) as u8).collect(),
            },
            older: Build {
                version: "0.9.0".into(),
                security_version: 0,
                advisory: None,
                image: vec![0x33; 1000],
            },
        }
    }

    impl Lab {
        fn publisher(&self) -> Publisher<'_> {
            Publisher {
                model: MODEL,
                vendor: &self.vendor,
                foreign: &self.foreign,
                newer: &self.newer,
                older: &self.older,
                https_base: "https://127.0.0.1:8443/update/VRB-1",
                http_base: "http://127.0.0.1:8080/update/VRB-1",
            }
        }

        /// The variant as the agent judges it: manifest, then (had it downloaded it) the image.
        fn judge(&self, variant: Variant, checks: Checks) -> Result<Option<Manifest>, Rejection> {
            let offer = self.publisher().offer(variant);
            let key = self.vendor.verifying_key();
            let m = judge_manifest(&offer.envelope, &SlotInfo::factory(), &key, checks)?;
            if let Some(m) = &m {
                judge_image(m, &offer.image, checks)?;
            }
            Ok(m)
        }
    }

    #[test]
    fn the_conformant_agent_accepts_only_the_genuine_offer() {
        let lab = lab();
        let m = lab.judge(Variant::Genuine, Checks::ALL).unwrap().unwrap();
        assert_eq!(m.version, "1.1.0");
        let reasons = [
            (Variant::Tampered, "SHA-256"),
            (Variant::ForeignSigned, "does not trust"),
            (Variant::Unsigned, "not signed"),
            (Variant::Downgrade, "rollback"),
            (Variant::InsecureChannel, "not HTTPS"),
        ];
        for (variant, reason) in reasons {
            let r = lab.judge(variant, Checks::ALL).unwrap_err();
            assert!(r.reason.contains(reason), "{variant:?}: {r:?}");
            let want = if variant == Variant::Downgrade {
                "0.9.0"
            } else {
                "1.1.0"
            };
            assert_eq!(r.version.as_deref(), Some(want), "{variant:?}");
        }
    }

    #[test]
    fn each_check_defect_lets_exactly_its_variant_through() {
        let lab = lab();
        let cases = [
            ("skips-image-digest", Variant::Tampered),
            ("trusts-any-key", Variant::ForeignSigned),
            ("accepts-unsigned", Variant::Unsigned),
            ("allows-downgrade", Variant::Downgrade),
            ("follows-plain-http", Variant::InsecureChannel),
        ];
        for (defect, let_through) in cases {
            let checks = checks_for(&DefectSet::parse(&[defect]).unwrap());
            assert_ne!(checks, Checks::ALL, "{defect}");
            for variant in Variant::ALL {
                let accepted = lab.judge(variant, checks).is_ok();
                let want = variant == Variant::Genuine || variant == let_through;
                assert_eq!(accepted, want, "{defect} judging {variant:?}");
            }
        }
        let others = DefectSet::parse(&["silent-update", "no-periodic-check"]).unwrap();
        assert_eq!(checks_for(&others), Checks::ALL);
    }

    #[test]
    fn the_running_release_is_not_offered_again() {
        let lab = lab();
        let offer = lab.publisher().offer(Variant::Genuine);
        let running = SlotInfo {
            version: "1.1.0".into(),
            security_version: 2,
            sha256: offer.manifest.image.sha256.clone(),
        };
        let key = lab.vendor.verifying_key();
        assert_eq!(
            judge_manifest(&offer.envelope, &running, &key, Checks::ALL),
            Ok(None)
        );
    }

    #[test]
    fn garbage_is_rejected_without_a_version() {
        let key = lab().vendor.verifying_key();
        for junk in [
            &b""[..],
            b"{",
            b"[1,2]",
            b"{\"payload\":\"!!\"}",
            &[0xff; 64],
        ] {
            let r = judge_manifest(junk, &SlotInfo::factory(), &key, Checks::ALL).unwrap_err();
            assert_eq!(r.version, None);
            assert!(!r.reason.is_empty());
            let line = Outcome::Rejected(r).line();
            assert!(line.starts_with("update: rejected -: "), "{line}");
        }
    }

    #[test]
    fn lines_have_the_documented_formats_and_are_safe() {
        let available = |advisory: Option<&str>| Outcome::Available {
            version: "1.1.0".into(),
            advisory: advisory.map(String::from),
        };
        assert_eq!(
            available(Some("fixes RCE")).line(),
            "update: available 1.1.0 (security update): fixes RCE"
        );
        assert_eq!(available(None).line(), "update: available 1.1.0");
        assert_eq!(
            Outcome::Current {
                running: "1.0.0".into()
            }
            .line(),
            "update: none available (running 1.0.0)"
        );
        let rejected = Outcome::Rejected(Rejection {
            version: Some("6.6\r\n\x1b[2J".into()),
            reason: "the manifest is not signed".into(),
        });
        assert_eq!(
            rejected.line(),
            "update: rejected 6.6   [2J: the manifest is not signed"
        );
        let failed = Outcome::Failed("x".repeat(500)).line();
        assert_eq!(failed.chars().count(), MAX_FAILED_LINE);
        assert!(failed.starts_with("update: check failed: xxx"));
        assert_eq!(
            available_notice("1.1.0", "fixes RCE"),
            "security update 1.1.0 available: fixes RCE"
        );
        assert_eq!(
            installed_notice("1.1.0", "fixes RCE"),
            "security update 1.1.0 installed: fixes RCE"
        );
        assert_eq!(
            restart_warning(10, "1.1.0"),
            "*** update: the device restarts in 10 s to install 1.1.0 ***"
        );
        assert_eq!(
            installing_line("1.1.0", 1),
            "update: installing 1.1.0; the device restarts in 1 s"
        );
        assert_eq!(
            (warn_secs(0), warn_secs(200), warn_secs(10_000)),
            (0, 1, 10)
        );
    }
}
