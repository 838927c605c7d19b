//! The encrypted user-secret store: the per-unit device key and the sealing of the privacy section
//! of the flash image.
//!
//! The device key stands in for an eFuse bank or a secure element: 256 random bits drawn at the
//! first boot, kept in [`KEY_FILE`] beside the flash image (mode 0600) and never inside it, so a
//! dump of the flash alone reveals none of the users' personal data. The privacy section is sealed
//! with ChaCha20-Poly1305 under that key, a fresh random nonce on every write.
//!
//! [`Sealing`] says how the section is written: sealed, as a conformant unit does, or weakened by
//! the `plaintext-wifi-psk` and `obfuscated-secrets` defects.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::defects::{Defect, DefectSet};
use crate::flash::{FlashError, write_atomic};

/// The device key's file in the state directory (never inside the flash image).
pub const KEY_FILE: &str = "efuse.key";
/// 256 bits.
pub const KEY_LEN: usize = 32;
/// What the seal is bound to besides the key: this purpose and format.
const AAD: &[u8] = b"hilt-vboard flash privacy v2";

/// How the privacy section (users, personal data, Wi-Fi credentials, consents) is written to flash.
/// The default is conformant: sealed, and nothing of it elsewhere in the clear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sealing {
    /// `obfuscated-secrets`: the section is only base64-encoded, not encrypted.
    pub base64_only: bool,
    /// `plaintext-wifi-psk`: the Wi-Fi SSID and PSK are also kept in the clear outside the section
    /// (a driver keeps its own copy).
    pub plain_wifi_copy: bool,
    /// `shared-device-key`: the service key is the firmware's own, kept in the clear beside it.
    pub service_key_in_clear: bool,
}

impl Sealing {
    /// The policy the unit's defects ask for.
    pub fn for_defects(defects: &DefectSet) -> Self {
        Sealing {
            base64_only: defects.has(Defect::ObfuscatedSecrets),
            plain_wifi_copy: defects.has(Defect::PlaintextWifiPsk),
            service_key_in_clear: defects.has(Defect::SharedDeviceKey),
        }
    }
}

/// The per-unit 256-bit key that seals the privacy section.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey([u8; KEY_LEN]);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

impl DeviceKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, FlashError> {
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| FlashError::Corrupt("no random numbers for the device key".into()))?;
        Ok(Self(key))
    }

    /// Reads the key file; `Ok(None)` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<Self>, FlashError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(FlashError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let key = <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
            FlashError::Corrupt(format!(
                "device key {} is {} bytes, not {KEY_LEN}",
                path.display(),
                bytes.len()
            ))
        })?;
        Ok(Some(Self(key)))
    }

    /// Draws a new key and writes it (atomically, mode 0600) to `path`, which must not exist yet:
    /// a unit's key is never replaced, or its sealed data would be lost.
    pub fn create(path: &Path) -> Result<Self, FlashError> {
        let io = |source| FlashError::Io {
            path: path.to_path_buf(),
            source,
        };
        if fs::symlink_metadata(path).is_ok() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a device key already exists",
            )));
        }
        let key = Self::generate()?;
        write_atomic(path, &key.0, 0o600).map_err(io)?;
        Ok(key)
    }

    fn aead(&self) -> Result<LessSafeKey, FlashError> {
        // ChaCha20-Poly1305 takes a 32-byte key, which this always is: never an error in practice.
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &self.0)
            .map_err(|_| FlashError::Corrupt("device key unusable for ChaCha20-Poly1305".into()))?;
        Ok(LessSafeKey::new(unbound))
    }
}

/// Where a unit keeps its device key: `{state}/efuse.key`.
pub fn key_path(state_dir: &Path) -> PathBuf {
    state_dir.join(KEY_FILE)
}

/// The unit's device key: read from `{state}/efuse.key`, or drawn and written there when the unit
/// has none yet (its first boot, before provisioning writes the image; or an image of earlier
/// firmware, which sealed nothing). A key missing beside an image that needs one is an error: the
/// sealed data cannot be opened, and a new key would never open it either.
pub fn unit_key(state_dir: &Path, image: &Path) -> Result<DeviceKey, FlashError> {
    let path = key_path(state_dir);
    if let Some(key) = DeviceKey::load(&path)? {
        return Ok(key);
    }
    match fs::read(image) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(FlashError::Io {
                path: image.to_path_buf(),
                source,
            });
        }
        Ok(bytes) => {
            // A damaged header is reported as such; only a readable image of earlier firmware goes
            // without a key.
            if crate::flash::image_version(&bytes)? != crate::flash::LEGACY_VERSION {
                return Err(FlashError::Corrupt(format!(
                    "the device key {} is missing: the user data sealed in {} cannot be opened",
                    path.display(),
                    image.display()
                )));
            }
            tracing::info!("image of earlier firmware: provisioning a device key to seal it");
        }
    }
    tracing::info!(path = %path.display(), "provisioning the device key");
    DeviceKey::create(&path)
}

/// The privacy section as sealed in the image body: `{"nonce": hex, "ciphertext": base64}`, the
/// ciphertext carrying the Poly1305 tag at its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub nonce: String,
    pub ciphertext: String,
}

/// Encrypts `plaintext` under `key` with a fresh random nonce.
pub fn seal(key: &DeviceKey, plaintext: &[u8]) -> Result<Sealed, FlashError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| FlashError::Corrupt("no random numbers for a nonce".into()))?;
    let mut in_out = plaintext.to_vec();
    key.aead()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(AAD),
            &mut in_out,
        )
        .map_err(|_| FlashError::Corrupt("cannot seal the privacy section".into()))?;
    Ok(Sealed {
        nonce: hex::encode(nonce),
        ciphertext: BASE64.encode(in_out),
    })
}

/// Decrypts and authenticates a sealed section; any damage or the wrong key is a corrupt image.
pub fn open(key: &DeviceKey, sealed: &Sealed) -> Result<Vec<u8>, FlashError> {
    let corrupt = |m: &str| FlashError::Corrupt(format!("sealed privacy section: {m}"));
    let nonce = hex::decode(&sealed.nonce)
        .ok()
        .and_then(|n| <[u8; NONCE_LEN]>::try_from(n).ok())
        .ok_or_else(|| corrupt("bad nonce"))?;
    let mut in_out = BASE64
        .decode(&sealed.ciphertext)
        .map_err(|_| corrupt("ciphertext is not base64"))?;
    let plain = key
        .aead()?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(AAD),
            &mut in_out,
        )
        .map_err(|_| {
            corrupt("cannot be opened with this unit's device key (wrong key, or damaged)")
        })?;
    Ok(plain.to_vec())
}

/// The `obfuscated-secrets` form: base64 of the plaintext.
pub fn obfuscate(plaintext: &[u8]) -> String {
    BASE64.encode(plaintext)
}

/// Undoes [`obfuscate`].
pub fn deobfuscate(text: &str) -> Result<Vec<u8>, FlashError> {
    BASE64
        .decode(text)
        .map_err(|_| FlashError::Corrupt("encoded privacy section is not base64".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_fresh_nonces() {
        let key = DeviceKey::generate().unwrap();
        let a = seal(&key, b"wifi-secret-psk").unwrap();
        let b = seal(&key, b"wifi-secret-psk").unwrap();
        assert_ne!(a.nonce, b.nonce, "a nonce was reused");
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(open(&key, &a).unwrap(), b"wifi-secret-psk");
        assert!(!a.ciphertext.contains("wifi"));
    }

    #[test]
    fn wrong_key_or_damage_is_an_error() {
        let key = DeviceKey::from_bytes([7; KEY_LEN]);
        let sealed = seal(&key, b"secret").unwrap();
        let other = DeviceKey::from_bytes([8; KEY_LEN]);
        let err = open(&other, &sealed).unwrap_err();
        assert!(err.to_string().contains("device key"), "{err}");
        let mut bad = sealed.clone();
        bad.nonce = "00".into();
        assert!(open(&key, &bad).is_err());
        let mut bad = sealed.clone();
        bad.ciphertext = "!!".into();
        assert!(open(&key, &bad).is_err());
        let mut raw = BASE64.decode(&sealed.ciphertext).unwrap();
        raw[0] ^= 1;
        let bad = Sealed {
            ciphertext: BASE64.encode(raw),
            ..sealed
        };
        assert!(open(&key, &bad).is_err());
    }

    #[test]
    fn unit_key_is_provisioned_once_and_never_beside_a_sealed_image() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("flash.img");
        let key = unit_key(dir.path(), &image).unwrap();
        assert_eq!(unit_key(dir.path(), &image).unwrap(), key, "key not kept");
        let state = crate::provision::provision(Some("SN-1"), 1, &DefectSet::default())
            .unwrap()
            .state;
        crate::flash::Flash::new(&image, key.clone())
            .store(&state)
            .unwrap();
        fs::remove_file(key_path(dir.path())).unwrap();
        let err = unit_key(dir.path(), &image).unwrap_err();
        assert!(matches!(err, FlashError::Corrupt(_)), "{err}");
        assert!(err.to_string().contains("efuse.key"), "{err}");
        assert!(!key_path(dir.path()).exists(), "a new key was drawn");
        // A damaged image says so, rather than blaming the key.
        fs::write(&image, b"VRBFLASH garbage").unwrap();
        let err = unit_key(dir.path(), &image).unwrap_err();
        assert!(err.to_string().contains("header"), "{err}");
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(dir.path());
        assert!(DeviceKey::load(&path).unwrap().is_none());
        let key = DeviceKey::create(&path).unwrap();
        assert_eq!(DeviceKey::load(&path).unwrap(), Some(key.clone()));
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), KEY_LEN as u64);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(DeviceKey::create(&path).is_err(), "a key was replaced");
        assert_eq!(DeviceKey::load(&path).unwrap(), Some(key.clone()));
        let other = DeviceKey::create(&dir.path().join("other.key")).unwrap();
        assert_ne!(other, key, "keys are per unit");
        assert_eq!(format!("{key:?}"), "DeviceKey(..)");
        fs::write(&path, b"short").unwrap();
        let err = DeviceKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("not 32"), "{err}");
    }
}
