//! Key files: generation, permissions, loading and rejection. Compatibility with openssl's key files
//! is in `interop.rs`, which reports itself ignored when openssl is missing.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use ed25519_dalek::pkcs8::spki::EncodePublicKey;
use hilt_report::keys::{
    self, KeyError, KeyPair, key_id, load_private, load_public, public_pem, spki_der, write_keypair,
};

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn writes_keys_with_private_permissions_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let (private, public) = write_keypair(&dir, "lab").unwrap();
    assert_eq!(private, dir.join("lab.key.pem"));
    assert_eq!(public, dir.join("lab.pub.pem"));
    assert_eq!(mode(&dir), 0o700, "created key dir must be private");
    assert_eq!(mode(&private), 0o600);
    assert_eq!(mode(&public), 0o644);
    let text = fs::read_to_string(&private).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
    assert!(
        fs::read_to_string(&public)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );

    let pair = load_private(&private).unwrap();
    let vk = load_public(&public).unwrap();
    assert_eq!(pair.verifying_key(), vk);
    assert_eq!(pair.key_id(), key_id(&vk));
    assert_eq!(fs::read_to_string(&public).unwrap(), public_pem(&vk));
}

#[test]
fn generated_keys_differ() {
    assert_ne!(
        keys::generate().unwrap().key_id(),
        keys::generate().unwrap().key_id()
    );
}

#[test]
fn refuses_to_overwrite_either_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (private, public) = write_keypair(tmp.path(), "a").unwrap();
    let before = fs::read(&private).unwrap();
    assert!(matches!(
        write_keypair(tmp.path(), "a"),
        Err(KeyError::Exists { .. })
    ));
    assert_eq!(fs::read(&private).unwrap(), before, "private key replaced");

    // Only the public file exists: still refused, and no orphan private key is left.
    fs::remove_file(&private).unwrap();
    let err = write_keypair(tmp.path(), "a").unwrap_err();
    assert!(
        matches!(&err, KeyError::Exists { path } if *path == public),
        "{err}"
    );
    assert!(!private.exists());
}

#[test]
fn rejects_bad_stems() {
    let tmp = tempfile::tempdir().unwrap();
    for stem in ["", "..", "a/b"] {
        assert!(matches!(
            write_keypair(tmp.path(), stem),
            Err(KeyError::BadStem(_))
        ));
    }
}

#[test]
fn refuses_group_readable_private_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (private, _) = write_keypair(tmp.path(), "k").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o640)).unwrap();
    let err = load_private(&private).unwrap_err();
    assert!(matches!(
        err,
        KeyError::InsecurePermissions { mode: 0o640, .. }
    ));
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn rejects_garbage_and_swapped_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (private, public) = write_keypair(tmp.path(), "k").unwrap();
    assert!(matches!(
        load_public(&private),
        Err(KeyError::BadPublic { .. })
    ));
    fs::set_permissions(&public, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        load_private(&public),
        Err(KeyError::BadPrivate { .. })
    ));

    let junk = tmp.path().join("junk.pem");
    fs::write(
        &junk,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    fs::set_permissions(&junk, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        load_private(&junk),
        Err(KeyError::BadPrivate { .. })
    ));

    let huge = tmp.path().join("huge.pem");
    fs::File::create(&huge).unwrap().set_len(10 << 20).unwrap();
    assert!(matches!(load_public(&huge), Err(KeyError::TooLarge { .. })));
    assert!(matches!(
        load_public(tmp.path()),
        Err(KeyError::NotAFile { .. } | KeyError::Io { .. })
    ));
}

#[test]
fn debug_never_shows_the_secret() {
    let key = KeyPair::from_seed(&[0x5a; 32]);
    let shown = format!("{key:?}");
    assert!(shown.contains(&key.key_id()), "{shown}");
    let pem = key.private_pem().unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!shown.contains(&body) && !shown.contains("5a5a"), "{shown}");
}

#[test]
fn spki_matches_the_pkcs8_crate_and_key_id_is_its_sha256() {
    let vk = KeyPair::from_seed(&[1; 32]).verifying_key();
    let der = vk.to_public_key_der().unwrap();
    assert_eq!(der.as_bytes(), spki_der(&vk));
    assert_eq!(
        key_id(&vk),
        hilt_report::digest::sha256_bytes(der.as_bytes())
    );
    let pem = vk
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap();
    assert_eq!(pem, public_pem(&vk));
}
