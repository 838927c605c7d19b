//! Ed25519 signing keys stored as PEM files that openssl and other tools read: the private key as
//! PKCS#8 v1 (RFC 8410, the form `openssl genpkey -algorithm ed25519` writes), the public key as
//! SubjectPublicKeyInfo. A key's id is the lowercase hex SHA-256 of its SPKI DER.
//!
//! Policy: `load_private` refuses a key file that group or others can read (like ssh), because a
//! leaked signing key lets anyone forge conformance reports; a warning would be ignored in CI logs.

use std::fmt;
use std::fs::{self, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::spki::DecodePublicKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{Signature, Signer, SigningKey};
use tracing::{debug, info};

pub use ed25519_dalek::VerifyingKey;

use crate::atomic::{create_private_dir, sync_dir};
use crate::digest::sha256_bytes;

/// DER of an Ed25519 SubjectPublicKeyInfo up to the 32 key bytes (RFC 8410 §4: OID 1.3.101.112).
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// Key files are tiny; anything bigger is not a key and is not read into memory.
const MAX_KEY_FILE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot get randomness from the operating system: {0}")]
    Random(String),
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid key file stem {0:?}: use a plain file name without '/'")]
    BadStem(String),
    #[error("{}: already exists; refusing to overwrite a key", path.display())]
    Exists { path: PathBuf },
    #[error(
        "{}: private key is readable by group or others (mode {mode:03o}); run `chmod 600` on it",
        path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("{}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("{}: larger than {MAX_KEY_FILE} bytes, not a key file", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}: not a PKCS#8 PEM Ed25519 private key: {reason}", path.display())]
    BadPrivate { path: PathBuf, reason: String },
    #[error("{}: not a SubjectPublicKeyInfo PEM Ed25519 public key: {reason}", path.display())]
    BadPublic { path: PathBuf, reason: String },
    #[error("cannot encode the private key as PKCS#8: {0}")]
    Encode(String),
}

/// An Ed25519 signing key. Its `Debug` shows only the key id, so it can never leak into logs.
pub struct KeyPair {
    signing: SigningKey,
}

impl KeyPair {
    /// Derives the key from a 32-byte seed (RFC 8032 secret key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        KeyPair {
            signing: SigningKey::from_bytes(seed),
        }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    pub fn key_id(&self) -> String {
        key_id(&self.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }

    /// PKCS#8 v1 PEM of the private key (zeroized when dropped).
    pub fn private_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let bytes = KeypairBytes {
            secret_key: self.signing.to_bytes(),
            public_key: None,
        };
        bytes
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// A new key from the operating system's CSPRNG.
pub fn generate() -> Result<KeyPair, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(KeyPair::from_seed(&seed))
}

/// Generates a key and writes `DIR/STEM.key.pem` (0600) and `DIR/STEM.pub.pem` (0644); returns
/// (private path, public path). `DIR` is created 0700 if missing. Existing files are never replaced.
pub fn write_keypair(dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), KeyError> {
    write_key_files(dir, stem, &generate()?)
}

/// Writes the given key as in [`write_keypair`].
pub fn write_key_files(
    dir: &Path,
    stem: &str,
    key: &KeyPair,
) -> Result<(PathBuf, PathBuf), KeyError> {
    if stem.is_empty() || stem == "." || stem == ".." || stem.contains(['/', '\0']) {
        return Err(KeyError::BadStem(stem.to_string()));
    }
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    create_private_dir(dir).map_err(io_err(dir))?;
    let private_path = dir.join(format!("{stem}.key.pem"));
    let public_path = dir.join(format!("{stem}.pub.pem"));
    for path in [&private_path, &public_path] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(KeyError::Exists { path: path.clone() });
        }
    }
    let private_pem = key.private_pem()?;
    // The temp file is created 0600, so the secret is never readable by others, and
    // persist_noclobber (link/rename-noreplace) refuses to replace a file that appeared meanwhile.
    place_new_file(dir, &private_path, private_pem.as_bytes(), 0o600)?;
    let public = public_pem(&key.verifying_key());
    if let Err(e) = place_new_file(dir, &public_path, public.as_bytes(), 0o644) {
        // Leave no half-written pair behind: the private key we just created is useless alone.
        let _ = fs::remove_file(&private_path);
        return Err(e);
    }
    sync_dir(dir).map_err(io_err(dir))?;
    info!(key_id = %key.key_id(), path = %private_path.display(), "wrote signing key pair");
    Ok((private_path, public_path))
}

fn place_new_file(dir: &Path, path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let io_err = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".hilt-key-")
        .tempfile_in(dir)
        .map_err(io_err)?;
    tmp.write_all(bytes).map_err(io_err)?;
    tmp.as_file()
        .set_permissions(Permissions::from_mode(mode))
        .map_err(io_err)?;
    tmp.as_file().sync_all().map_err(io_err)?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            io_err(e.error)
        }
    })?;
    Ok(())
}

/// Reads a small text file, refusing non-files and oversized ones. Returns it with its mode.
fn read_key_file(path: &Path) -> Result<(Zeroizing<String>, u32), KeyError> {
    let io_err = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Not File::open: opening a FIFO would wait for a writer forever. The checks apply to the
    // opened handle, so they hold for what is actually read.
    let (file, meta) = hilt_model::fsread::open_regular(path).map_err(|e| match e {
        hilt_model::fsread::ReadError::Io { error, .. } => io_err(error),
        _ => KeyError::NotAFile {
            path: path.to_path_buf(),
        },
    })?;
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(io_err)?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok((text, meta.permissions().mode() & 0o7777))
}

/// Loads a PKCS#8 PEM Ed25519 private key; refuses one readable by group or others.
pub fn load_private(path: &Path) -> Result<KeyPair, KeyError> {
    let (text, mode) = read_key_file(path)?;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    let signing = SigningKey::from_pkcs8_pem(&text).map_err(|e| KeyError::BadPrivate {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let key = KeyPair { signing };
    debug!(key_id = %key.key_id(), path = %path.display(), "loaded signing key");
    Ok(key)
}

/// Loads a SubjectPublicKeyInfo PEM Ed25519 public key.
pub fn load_public(path: &Path) -> Result<VerifyingKey, KeyError> {
    let (text, _) = read_key_file(path)?;
    let bad = |reason: String| KeyError::BadPublic {
        path: path.to_path_buf(),
        reason,
    };
    let key = VerifyingKey::from_public_key_pem(&text).map_err(|e| bad(e.to_string()))?;
    if key.is_weak() {
        return Err(bad("small-order (weak) point".into()));
    }
    Ok(key)
}

/// DER SubjectPublicKeyInfo of an Ed25519 public key (always 44 bytes).
pub fn spki_der(key: &VerifyingKey) -> [u8; 44] {
    let mut der = [0u8; 44];
    der[..12].copy_from_slice(&SPKI_ED25519_PREFIX);
    der[12..].copy_from_slice(key.as_bytes());
    der
}

/// Lowercase hex SHA-256 of the SPKI DER: the DSSE `keyid`.
pub fn key_id(key: &VerifyingKey) -> String {
    sha256_bytes(&spki_der(key))
}

/// `-----BEGIN PUBLIC KEY-----` PEM of the key (60 base64 characters fit one line).
pub fn public_pem(key: &VerifyingKey) -> String {
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(spki_der(key))
    )
}
