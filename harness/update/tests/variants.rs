//! Every bad variant is refused for its own reason and only the genuine release is accepted; any
//! single-byte change to a signed image or manifest is detected (property tests).

use hilt_report::keys::KeyPair;
use hilt_update::variant::{Build, Publisher, Variant};
use hilt_update::{Checks, Manifest, Trust, UpdateError, verify, verify_image, verify_manifest};
use proptest::prelude::*;

fn keys() -> (KeyPair, KeyPair) {
    (KeyPair::from_seed(&[1; 32]), KeyPair::from_seed(&[2; 32]))
}

fn builds() -> (Build, Build) {
    let newer = Build {
        version: "1.1.0".into(),
        security_version: 3,
        advisory: Some("fixes a remote code execution".into()),
        image: (0..4096u32).map(|i| (i * 31 % 251) as u8).collect(),
    };
    let older = Build {
        version: "1.0.0".into(),
        security_version: 1,
        advisory: None,
        image: vec![0x5a; 2048],
    };
    (newer, older)
}

fn check(variant: Variant) -> Result<Manifest, UpdateError> {
    check_with(variant, Checks::ALL)
}

/// The variant as a device making only `checks` judges it: manifest first, then the image.
fn check_with(variant: Variant, checks: Checks) -> Result<Manifest, UpdateError> {
    let (vendor, foreign) = keys();
    let (newer, older) = builds();
    let p = Publisher {
        model: "VRB-1",
        vendor: &vendor,
        foreign: &foreign,
        newer: &newer,
        older: &older,
        https_base: "https://127.0.0.1:8443/update/VRB-1",
        http_base: "http://127.0.0.1:8080/update/VRB-1",
    };
    let offer = p.offer(variant);
    let trusted = [vendor.verifying_key()];
    let trust = Trust {
        keys: &trusted,
        model: "VRB-1",
        running_security_version: 2,
    };
    let m = verify_manifest(&offer.envelope, &trust, checks)?;
    verify_image(&m, &offer.image, checks)?;
    Ok(m)
}

#[test]
fn leaving_out_one_check_lets_exactly_its_variant_through() {
    let off: [(Checks, Variant); 5] = [
        (
            Checks {
                image_digest: false,
                ..Checks::ALL
            },
            Variant::Tampered,
        ),
        (
            Checks {
                trusted_key: false,
                ..Checks::ALL
            },
            Variant::ForeignSigned,
        ),
        (
            Checks {
                require_signature: false,
                ..Checks::ALL
            },
            Variant::Unsigned,
        ),
        (
            Checks {
                anti_rollback: false,
                ..Checks::ALL
            },
            Variant::Downgrade,
        ),
        (
            Checks {
                https_only: false,
                ..Checks::ALL
            },
            Variant::InsecureChannel,
        ),
    ];
    for (checks, let_through) in off {
        for v in Variant::ALL {
            let accepted = check_with(v, checks).is_ok();
            let expected = v == Variant::Genuine || v == let_through;
            assert_eq!(accepted, expected, "{checks:?} on {}", v.name());
        }
    }
    let m = check(Variant::Genuine).unwrap();
    assert_eq!(m.advisory.as_deref(), Some("fixes a remote code execution"));
}

#[test]
fn only_the_genuine_release_is_accepted_and_each_bad_one_for_its_own_reason() {
    let m = check(Variant::Genuine).expect("the genuine release");
    assert_eq!((m.version.as_str(), m.security_version), ("1.1.0", 3));
    assert!(matches!(
        check(Variant::Tampered),
        Err(UpdateError::Digest { .. })
    ));
    assert!(matches!(
        check(Variant::ForeignSigned),
        Err(UpdateError::UntrustedKey(_))
    ));
    assert_eq!(check(Variant::Unsigned), Err(UpdateError::Unsigned));
    assert_eq!(
        check(Variant::Downgrade),
        Err(UpdateError::Downgrade {
            offered: 1,
            running: 2
        })
    );
    assert!(matches!(
        check(Variant::InsecureChannel),
        Err(UpdateError::InsecureUrl(_))
    ));
    for v in Variant::ALL {
        assert_eq!(Variant::parse(v.name()), Some(v));
    }
}

#[test]
fn a_release_for_another_model_is_refused() {
    let (vendor, _) = keys();
    let (newer, _) = builds();
    let m = Manifest::for_image("OTHER-9", "9.9", 9, "https://x/i.bin", &newer.image);
    let trusted = [vendor.verifying_key()];
    let trust = Trust {
        keys: &trusted,
        model: "VRB-1",
        running_security_version: 0,
    };
    assert!(matches!(
        verify(&m.sign(&vendor), &newer.image, &trust),
        Err(UpdateError::WrongModel { .. })
    ));
}

fn genuine() -> (Vec<u8>, Vec<u8>, KeyPair) {
    let (vendor, _) = keys();
    let (newer, _) = builds();
    let m = Manifest::for_image("VRB-1", "1.1.0", 3, "https://h/i.bin", &newer.image);
    (m.sign(&vendor), newer.image, vendor)
}

fn accepts(envelope: &[u8], image: &[u8], vendor: &KeyPair) -> bool {
    let trusted = [vendor.verifying_key()];
    let trust = Trust {
        keys: &trusted,
        model: "VRB-1",
        running_security_version: 0,
    };
    verify(envelope, image, &trust).is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_single_byte_change_to_the_image_is_detected(at in 0usize..4096, flip in 1u8..=255) {
        let (envelope, mut image, vendor) = genuine();
        prop_assume!(accepts(&envelope, &image, &vendor));
        image[at] ^= flip;
        prop_assert!(!accepts(&envelope, &image, &vendor));
    }

    #[test]
    fn any_single_byte_change_to_the_signed_manifest_is_detected(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let (mut envelope, image, vendor) = genuine();
        let at = at.index(envelope.len());
        envelope[at] ^= flip;
        // Whitespace between JSON tokens is not signed: a change that leaves the envelope meaning the
        // same is no change at all. Anything else must be refused.
        let same = serde_json::from_slice::<serde_json::Value>(&envelope).ok()
            == serde_json::from_slice::<serde_json::Value>(&genuine().0).ok();
        prop_assume!(!same);
        prop_assert!(!accepts(&envelope, &image, &vendor));
    }
}
