//! The flash image: the board's only persistent state, one file, a fixed-size flash partition.
//!
//! Layout (little endian), [`FLASH_SIZE`] bytes: magic `VRBFLASH` (8 bytes), format version (u32),
//! body length (u32), CRC-32 of version+length+body (u32), then a JSON body, then erased flash
//! (0xFF) to the end of the partition, which reading ignores.
//!
//! The body is [`FlashState`] with its `privacy` part (users, their personal data, Wi-Fi
//! credentials, consents) sealed under the per-unit device key, which lives outside the image
//! ([`crate::storage`]): `"privacy_sealed": {"nonce": hex, "ciphertext": base64}`. The rest (serial,
//! password hashes, login counters, update state) is not secret and stays in the clear. Later
//! subsystems add fields to [`FlashState`] with `#[serde(default)]`.
//!
//! Version 1 images (earlier firmware: as long as their body, privacy in the clear) are still read;
//! the board writes them back in this format at boot.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{LoginCounters, PasswordHash};
use crate::privacy::PrivacyState;
use crate::storage::{DeviceKey, Sealed, Sealing};
use crate::update::UpdateState;

pub const MAGIC: &[u8; 8] = b"VRBFLASH";
/// The format this firmware writes: fixed-size partition, privacy sealed.
pub const VERSION: u32 = 2;
/// The format of earlier firmware (variable length, privacy in the clear): read, never written.
pub const LEGACY_VERSION: u32 = 1;
/// The flash partition: every image written is exactly this long.
pub const FLASH_SIZE: usize = 256 * 1024;
/// What erased flash reads as: the padding after the body.
pub const ERASED: u8 = 0xFF;
const HEADER_LEN: usize = 20;
/// The most body a partition holds.
const MAX_BODY_LEN: usize = FLASH_SIZE - HEADER_LEN;
/// Refuse absurd legacy images before allocating for them.
const MAX_LEGACY_BODY_LEN: usize = 1 << 20;

/// Body fields that carry the privacy part in its stored forms.
const PRIVACY_PLAIN: &str = "privacy";
const PRIVACY_SEALED: &str = "privacy_sealed";
/// The `obfuscated-secrets` defect's form: base64 of the JSON.
const PRIVACY_ENCODED: &str = "privacy_encoded";
/// The `plaintext-wifi-psk` defect's extra copy of the Wi-Fi credentials.
const WIFI_CACHE: &str = "wifi_cache";
/// The unit's service key: inside the sealed section, or (`shared-device-key`) in the body.
const SERVICE_KEY: &str = "service_key";

#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error("flash image {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("flash image is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "flash image has unsupported format version {0} (this firmware reads {LEGACY_VERSION} and {VERSION})"
    )]
    UnsupportedVersion(u32),
}

/// Everything the board keeps across reboots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashState {
    pub serial: String,
    /// The `admin` account's password, hashed.
    pub admin_password: PasswordHash,
    #[serde(default)]
    pub login: LoginCounters,
    /// Firmware slots and update settings; images written before updates existed get the factory state.
    #[serde(default)]
    pub update: UpdateState,
    /// The hash of the password on the unit label, which an erase restores. Images provisioned
    /// before erase existed lack it: an erase then keeps the current password.
    #[serde(default)]
    pub factory_password: Option<PasswordHash>,
    /// Users, their personal data, consents and data recipients; empty at the factory. Sealed in
    /// the image (see the module docs); in the clear only here, in memory.
    #[serde(default)]
    pub privacy: PrivacyState,
    /// The unit's key for its service communication (64 bytes, base64), drawn at provisioning and
    /// sealed with the privacy section; `None` in images provisioned before it existed.
    #[serde(default)]
    pub service_key: Option<String>,
    /// Networks joined, in the clear: kept only by the `erase-keeps-wifi-history` defect, which an
    /// erase does not clear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wifi_history: Vec<String>,
}

fn corrupt(m: impl std::fmt::Display) -> FlashError {
    FlashError::Corrupt(m.to_string())
}

/// Serialises a state into a partition image ([`FLASH_SIZE`] bytes), its privacy part stored as
/// `sealing` says (sealed under `key` unless a defect weakens it).
pub fn encode(
    state: &FlashState,
    key: &DeviceKey,
    sealing: Sealing,
) -> Result<Vec<u8>, FlashError> {
    let mut body = serde_json::to_value(state).map_err(corrupt)?;
    let object = body
        .as_object_mut()
        .ok_or_else(|| corrupt("state is not a JSON object"))?;
    object.remove(PRIVACY_PLAIN);
    object.remove(SERVICE_KEY);
    let mut secrets = serde_json::to_value(&state.privacy).map_err(corrupt)?;
    if let (Some(key), Some(fields)) = (&state.service_key, secrets.as_object_mut()) {
        let into = if sealing.service_key_in_clear {
            &mut *object
        } else {
            fields
        };
        into.insert(SERVICE_KEY.into(), Value::String(key.clone()));
    }
    let privacy = serde_json::to_vec(&secrets).map_err(corrupt)?;
    if sealing.base64_only {
        let encoded = crate::storage::obfuscate(&privacy);
        object.insert(PRIVACY_ENCODED.into(), Value::String(encoded));
    } else {
        let sealed = crate::storage::seal(key, &privacy)?;
        let sealed = serde_json::to_value(sealed).map_err(corrupt)?;
        object.insert(PRIVACY_SEALED.into(), sealed);
    }
    if sealing.plain_wifi_copy
        && let Some(wifi) = &state.privacy.profile.wifi
    {
        let wifi = serde_json::to_value(wifi).map_err(corrupt)?;
        object.insert(WIFI_CACHE.into(), wifi);
    }
    let body = serde_json::to_vec(&body).map_err(corrupt)?;
    if body.len() > MAX_BODY_LEN {
        return Err(corrupt(format!(
            "state of {} bytes does not fit the {FLASH_SIZE}-byte partition",
            body.len()
        )));
    }
    let len = body.len() as u32;
    let mut out = Vec::with_capacity(FLASH_SIZE);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(VERSION, len, &body).to_le_bytes());
    out.extend_from_slice(&body);
    out.resize(FLASH_SIZE, ERASED);
    Ok(out)
}

/// The format version in an image's header, once its magic is checked.
pub fn image_version(bytes: &[u8]) -> Result<u32, FlashError> {
    if bytes.len() < HEADER_LEN {
        return Err(corrupt("shorter than its header"));
    }
    if &bytes[..8] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    Ok(word(bytes, 8))
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks the header, the size and the CRC; the version and the body.
fn frame(bytes: &[u8]) -> Result<(u32, &[u8]), FlashError> {
    let version = image_version(bytes)?;
    let (len, crc) = (word(bytes, 12), word(bytes, 16));
    let body = match version {
        VERSION => {
            if bytes.len() != FLASH_SIZE {
                return Err(corrupt(format!(
                    "{} bytes, not the {FLASH_SIZE}-byte partition",
                    bytes.len()
                )));
            }
            if len as usize > MAX_BODY_LEN {
                return Err(corrupt("length in header exceeds the partition"));
            }
            &bytes[HEADER_LEN..HEADER_LEN + len as usize]
        }
        LEGACY_VERSION => {
            let body = &bytes[HEADER_LEN..];
            if body.len() != len as usize || body.len() > MAX_LEGACY_BODY_LEN {
                return Err(corrupt("length does not match header"));
            }
            body
        }
        other => return Err(FlashError::UnsupportedVersion(other)),
    };
    if checksum(version, len, body) != crc {
        return Err(corrupt("CRC mismatch"));
    }
    Ok((version, body))
}

/// Parses and checks image bytes, opening the privacy part with `key`. The padding after the body
/// is ignored. A wrong key is a corrupt image, as is anything this firmware would never have
/// written.
pub fn decode(bytes: &[u8], key: &DeviceKey) -> Result<FlashState, FlashError> {
    let (version, body) = frame(bytes)?;
    let state = if version == LEGACY_VERSION {
        serde_json::from_slice(body).map_err(|e| corrupt(format!("bad body: {e}")))?
    } else {
        decode_body(body, key)?
    };
    state.admin_password.validate().map_err(corrupt)?;
    if let Some(factory) = &state.factory_password {
        factory.validate().map_err(corrupt)?;
    }
    state.privacy.validate().map_err(corrupt)?;
    Ok(state)
}

fn decode_body(body: &[u8], key: &DeviceKey) -> Result<FlashState, FlashError> {
    let bad = |e: serde_json::Error| corrupt(format!("bad body: {e}"));
    let mut value: Value = serde_json::from_slice(body).map_err(bad)?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| corrupt("bad body: not a JSON object"))?;
    if object.contains_key(PRIVACY_PLAIN) {
        return Err(corrupt("privacy section stored in the clear"));
    }
    // A copy a defective driver kept: the sealed section is what counts.
    object.remove(WIFI_CACHE);
    let clear_key = object.remove(SERVICE_KEY);
    let plain = match (
        object.remove(PRIVACY_SEALED),
        object.remove(PRIVACY_ENCODED),
    ) {
        (Some(sealed), None) => {
            let sealed: Sealed = serde_json::from_value(sealed).map_err(bad)?;
            crate::storage::open(key, &sealed)?
        }
        (None, Some(Value::String(encoded))) => crate::storage::deobfuscate(&encoded)?,
        (None, None) => return Err(corrupt("no privacy section")),
        _ => return Err(corrupt("bad privacy section")),
    };
    let mut secrets: Value =
        serde_json::from_slice(&plain).map_err(|e| corrupt(format!("bad privacy section: {e}")))?;
    let sealed_key = secrets.as_object_mut().and_then(|o| o.remove(SERVICE_KEY));
    let privacy: PrivacyState = serde_json::from_value(secrets)
        .map_err(|e| corrupt(format!("bad privacy section: {e}")))?;
    let mut state: FlashState = serde_json::from_value(value).map_err(bad)?;
    state.privacy = privacy;
    state.service_key = match sealed_key.or(clear_key) {
        Some(Value::String(k)) => Some(k),
        None => None,
        Some(_) => return Err(corrupt("bad service key")),
    };
    Ok(state)
}

fn checksum(version: u32, len: u32, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&version.to_le_bytes());
    h.update(&len.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// The image file on disk, with the unit's device key that seals its privacy part.
#[derive(Debug, Clone)]
pub struct Flash {
    path: PathBuf,
    key: DeviceKey,
    sealing: Sealing,
}

impl Flash {
    /// The image at `path`, sealed (conformant) under `key`.
    pub fn new(path: impl Into<PathBuf>, key: DeviceKey) -> Self {
        Self {
            path: path.into(),
            key,
            sealing: Sealing::default(),
        }
    }

    /// Stores the privacy part as `sealing` says (the storage defects weaken it).
    pub fn with_sealing(mut self, sealing: Sealing) -> Self {
        self.sealing = sealing;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn sealing(&self) -> Sealing {
        self.sealing
    }

    /// Reads the image; `Ok(None)` when the unit was never provisioned.
    pub fn load(&self) -> Result<Option<FlashState>, FlashError> {
        match fs::read(&self.path) {
            Ok(bytes) => decode(&bytes, &self.key).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Writes the image atomically so a crash leaves either the old or the new state.
    pub fn store(&self, state: &FlashState) -> Result<(), FlashError> {
        let bytes = encode(state, &self.key, self.sealing)?;
        write_atomic(&self.path, &bytes, 0o600).map_err(|e| self.io(e))
    }

    fn io(&self, source: std::io::Error) -> FlashError {
        FlashError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// Writes `bytes` to a temp file beside `path`, fsyncs it, renames it over
/// `path` and fsyncs the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;

    const PSK: &str = "wifi-secret-psk";
    const SSID: &str = "HomeNet-Canary";
    const NAME: &str = "Alice Canary-Owner";
    const EMAIL: &str = "alice.canary@example.org";

    fn key() -> DeviceKey {
        DeviceKey::from_bytes([0x42; crate::storage::KEY_LEN])
    }

    fn sample() -> FlashState {
        FlashState {
            serial: "VRB-0011AABB".into(),
            admin_password: PasswordHash::new(b"secret-pass").unwrap(),
            login: LoginCounters {
                failures: 2,
                locked_until_ms: 1234,
            },
            update: UpdateState::factory(false),
            factory_password: Some(PasswordHash::new(b"label-pass").unwrap()),
            privacy: sample_privacy(),
            service_key: Some("c2VydmljZS1rZXktb2YtdGhpcy11bml0".into()),
            wifi_history: vec!["OldNet".into()],
        }
    }

    fn sample_privacy() -> PrivacyState {
        let mut p = PrivacyState::default();
        p.pair("alice").unwrap();
        p.decide(crate::privacy::Purpose::Analytics, true, 1_700_000_000_000);
        p.record_sent("alice", crate::privacy::ANALYTICS);
        p.profile.name = Some(NAME.into());
        p.profile.email = Some(EMAIL.into());
        p.profile.wifi = Some(crate::privacy::Wifi {
            ssid: SSID.into(),
            psk: crate::privacy::Psk::new(PSK),
        });
        p
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// The base64 text of `needle` at each of the three alignments it can have inside a longer
    /// base64-encoded text (only the characters that depend on `needle` alone), as a scan does.
    fn base64_fragments(needle: &[u8]) -> Vec<String> {
        (0..3)
            .map(|shift| {
                let mut bytes = vec![0u8; shift];
                bytes.extend_from_slice(needle);
                let text = BASE64.encode(&bytes);
                let from = (shift * 8).div_ceil(6);
                let to = bytes.len() / 3 * 4;
                text[from..to].to_string()
            })
            .collect()
    }

    fn contains_base64(haystack: &[u8], needle: &str) -> bool {
        base64_fragments(needle.as_bytes())
            .iter()
            .any(|f| contains(haystack, f.as_bytes()))
    }

    fn sealed() -> Sealing {
        Sealing::default()
    }

    fn plain_psk() -> Sealing {
        Sealing {
            plain_wifi_copy: true,
            ..Sealing::default()
        }
    }

    fn base64_only() -> Sealing {
        Sealing {
            base64_only: true,
            ..Sealing::default()
        }
    }

    #[test]
    fn round_trip_through_file() {
        let dir = tempfile::tempdir().unwrap();
        let flash = Flash::new(dir.path().join("flash.img"), key());
        assert!(flash.load().unwrap().is_none());
        let state = sample();
        flash.store(&state).unwrap();
        assert_eq!(flash.load().unwrap(), Some(state.clone()));
        let bytes = fs::read(flash.path()).unwrap();
        assert_eq!(bytes.len(), FLASH_SIZE, "not a fixed-size partition");
        assert_eq!(&bytes[..8], MAGIC);
        assert_eq!(
            *bytes.last().unwrap(),
            ERASED,
            "not padded with erased flash"
        );
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("secret-pass"), "password stored in clear");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(flash.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "temp file left behind");
    }

    #[test]
    fn sealed_images_hold_no_personal_data_in_any_encoding() {
        let state = sample();
        let image = encode(&state, &key(), sealed()).unwrap();
        assert_eq!(image.len(), FLASH_SIZE);
        assert!(!contains(&image, b"alice"), "user id in the clear");
        for canary in [PSK, SSID, NAME, EMAIL] {
            assert!(
                !contains(&image, canary.as_bytes()),
                "{canary} in the clear"
            );
            assert!(!contains_base64(&image, canary), "{canary} in base64");
            assert!(
                !contains(&image, hex::encode(canary).as_bytes()),
                "{canary} in hex"
            );
        }
        assert!(contains(&image, b"\"privacy_sealed\""));
        assert!(
            contains(&image, state.serial.as_bytes()),
            "serial stays clear"
        );
        assert_eq!(decode(&image, &key()).unwrap(), state);
        // A fresh nonce each write: the same state never seals to the same bytes.
        assert_ne!(encode(&state, &key(), sealed()).unwrap(), image);
    }

    #[test]
    fn plaintext_wifi_psk_keeps_a_clear_copy_of_the_wifi_credentials_only() {
        let state = sample();
        let image = encode(&state, &key(), plain_psk()).unwrap();
        assert_eq!(image.len(), FLASH_SIZE);
        assert!(contains(&image, PSK.as_bytes()), "PSK not in the clear");
        assert!(contains(&image, SSID.as_bytes()), "SSID not in the clear");
        for canary in [NAME, EMAIL] {
            assert!(
                !contains(&image, canary.as_bytes()),
                "{canary} in the clear"
            );
            assert!(!contains_base64(&image, canary), "{canary} in base64");
        }
        assert_eq!(decode(&image, &key()).unwrap(), state);
        // Without Wi-Fi credentials there is nothing to copy.
        let mut no_wifi = state.clone();
        no_wifi.privacy.profile.wifi = None;
        let image = encode(&no_wifi, &key(), plain_psk()).unwrap();
        assert!(!contains(&image, WIFI_CACHE.as_bytes()));
        assert_eq!(decode(&image, &key()).unwrap(), no_wifi);
    }

    #[test]
    fn obfuscated_secrets_are_base64_not_encrypted() {
        let state = sample();
        let image = encode(&state, &key(), base64_only()).unwrap();
        assert_eq!(image.len(), FLASH_SIZE);
        for canary in [PSK, SSID, NAME, EMAIL] {
            assert!(
                !contains(&image, canary.as_bytes()),
                "{canary} in the clear"
            );
            assert!(
                contains_base64(&image, canary),
                "{canary} not found in base64"
            );
        }
        assert!(!contains(&image, b"privacy_sealed"));
        // Base64 is no protection: any key (or none) reads it.
        let other = DeviceKey::from_bytes([1; crate::storage::KEY_LEN]);
        assert_eq!(decode(&image, &other).unwrap(), state);
        assert_eq!(decode(&image, &key()).unwrap(), state);
        // Both defects at once: base64 section and a clear Wi-Fi copy.
        let both = Sealing {
            base64_only: true,
            plain_wifi_copy: true,
            service_key_in_clear: false,
        };
        let image = encode(&state, &key(), both).unwrap();
        assert!(contains(&image, PSK.as_bytes()) && contains_base64(&image, NAME));
        assert_eq!(decode(&image, &key()).unwrap(), state);
    }

    #[test]
    fn a_wrong_key_is_a_clear_error() {
        let image = encode(&sample(), &key(), sealed()).unwrap();
        let other = DeviceKey::from_bytes([1; crate::storage::KEY_LEN]);
        let err = decode(&image, &other).unwrap_err();
        assert!(matches!(err, FlashError::Corrupt(_)), "{err}");
        assert!(err.to_string().contains("device key"), "{err}");
    }

    #[test]
    fn the_key_file_is_apart_from_the_image() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key_path = crate::storage::key_path(dir.path());
        let key = DeviceKey::create(&key_path).unwrap();
        let flash = Flash::new(dir.path().join("flash.img"), key.clone());
        let state = sample();
        flash.store(&state).unwrap();
        let image = fs::read(flash.path()).unwrap();
        let key_bytes = fs::read(&key_path).unwrap();
        assert_eq!(key_bytes.len(), crate::storage::KEY_LEN);
        assert!(!contains(&image, &key_bytes), "the key is inside the image");
        assert!(!contains(&image, hex::encode(&key_bytes).as_bytes()));
        assert!(!contains(&image, BASE64.encode(&key_bytes).as_bytes()));
        let mode = fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(flash.load().unwrap(), Some(state));
    }

    #[test]
    fn every_single_byte_flip_is_detected_and_the_padding_is_ignored() {
        let state = sample();
        let bytes = encode(&state, &key(), sealed()).unwrap();
        let used = HEADER_LEN + word(&bytes, 12) as usize;
        for i in 0..used {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(
                decode(&bad, &key()).is_err(),
                "flip at byte {i} not detected"
            );
        }
        let mut padding = bytes.clone();
        padding[used] = 0;
        padding[FLASH_SIZE - 1] = 0x5A;
        assert_eq!(decode(&padding, &key()).unwrap(), state);
    }

    #[test]
    fn truncation_and_garbage_are_errors_not_panics() {
        let bytes = encode(&sample(), &key(), sealed()).unwrap();
        let used = HEADER_LEN + word(&bytes, 12) as usize;
        for cut in [0, 7, 19, 20, used, bytes.len() - 1] {
            assert!(matches!(
                decode(&bytes[..cut], &key()),
                Err(FlashError::Corrupt(_))
            ));
        }
        let mut wrong_version = bytes.clone();
        wrong_version[8] = 9;
        assert!(matches!(
            decode(&wrong_version, &key()),
            Err(FlashError::UnsupportedVersion(9))
        ));
        let mut long = bytes.clone();
        long.extend_from_slice(b"extra");
        assert!(decode(&long, &key()).is_err());
        let mut huge_len = bytes.clone();
        huge_len[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&huge_len, &key()),
            Err(FlashError::Corrupt(_))
        ));
    }

    /// A version-2 image around any JSON body, as `encode` frames them.
    fn image_of(body: &serde_json::Value) -> Vec<u8> {
        let body = serde_json::to_vec(body).unwrap();
        let len = body.len() as u32;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&checksum(VERSION, len, &body).to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes.resize(FLASH_SIZE, ERASED);
        bytes
    }

    /// A version-1 image (earlier firmware: as long as its body, privacy in the clear).
    fn legacy_image_of(body: &serde_json::Value) -> Vec<u8> {
        let body = serde_json::to_vec(body).unwrap();
        let len = body.len() as u32;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&LEGACY_VERSION.to_le_bytes());
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&checksum(LEGACY_VERSION, len, &body).to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes
    }

    /// The body `encode` writes, as JSON.
    fn body_of(image: &[u8]) -> serde_json::Value {
        let len = word(image, 12) as usize;
        serde_json::from_slice(&image[HEADER_LEN..HEADER_LEN + len]).unwrap()
    }

    #[test]
    fn version_1_images_are_still_read() {
        let state = sample();
        let old = legacy_image_of(&serde_json::to_value(&state).unwrap());
        assert_eq!(decode(&old, &key()).unwrap(), state);
        assert_eq!(image_version(&old).unwrap(), LEGACY_VERSION);
        // And written back sealed, at the partition size.
        let dir = tempfile::tempdir().unwrap();
        let flash = Flash::new(dir.path().join("flash.img"), key());
        fs::write(flash.path(), &old).unwrap();
        let loaded = flash.load().unwrap().unwrap();
        flash.store(&loaded).unwrap();
        let new = fs::read(flash.path()).unwrap();
        assert_eq!(new.len(), FLASH_SIZE);
        assert_eq!(image_version(&new).unwrap(), VERSION);
        assert!(!contains(&new, PSK.as_bytes()));
        assert_eq!(flash.load().unwrap(), Some(state));
    }

    #[test]
    fn an_image_from_before_updates_boots_the_factory_firmware() {
        let mut body = serde_json::to_value(sample()).unwrap();
        body.as_object_mut().unwrap().remove("update");
        let state = decode(&legacy_image_of(&body), &key()).unwrap();
        assert_eq!(state.update, UpdateState::default());
        assert_eq!(state.update.running.version, crate::FW_VERSION);
        assert!(state.update.auto);
        assert_eq!(state.login, sample().login);
    }

    #[test]
    fn an_image_from_before_privacy_has_no_users_and_no_factory_hash() {
        let old = sample();
        let mut body = serde_json::to_value(&old).unwrap();
        let object = body.as_object_mut().unwrap();
        object.remove("privacy");
        object.remove("factory_password");
        let state = decode(&legacy_image_of(&body), &key()).unwrap();
        assert_eq!(state.privacy, PrivacyState::default());
        assert_eq!(state.factory_password, None);
        assert_eq!(state.admin_password, old.admin_password);
    }

    #[test]
    fn bad_privacy_records_and_factory_hashes_are_refused() {
        let mut body = serde_json::to_value(sample()).unwrap();
        body["privacy"]["users"] = serde_json::json!(["../../etc"]);
        assert!(matches!(
            decode(&legacy_image_of(&body), &key()),
            Err(FlashError::Corrupt(_))
        ));
        // The same record sealed properly under the right key is refused as well.
        let mut bad = serde_json::to_value(sample_privacy()).unwrap();
        bad["users"] = serde_json::json!(["../../etc"]);
        let resealed = crate::storage::seal(&key(), &serde_json::to_vec(&bad).unwrap()).unwrap();
        let mut body = body_of(&encode(&sample(), &key(), sealed()).unwrap());
        body[PRIVACY_SEALED] = serde_json::to_value(resealed).unwrap();
        assert!(matches!(
            decode(&image_of(&body), &key()),
            Err(FlashError::Corrupt(_))
        ));
        let mut body = body_of(&encode(&sample(), &key(), sealed()).unwrap());
        body["factory_password"]["iterations"] = serde_json::json!(1);
        assert!(matches!(
            decode(&image_of(&body), &key()),
            Err(FlashError::Corrupt(_))
        ));
    }

    #[test]
    fn a_current_image_never_carries_privacy_in_the_clear_or_without_it() {
        let state = sample();
        let good = body_of(&encode(&state, &key(), sealed()).unwrap());
        assert_eq!(decode(&image_of(&good), &key()).unwrap(), state);
        let mut plain = good.clone();
        plain[PRIVACY_PLAIN] = serde_json::to_value(sample_privacy()).unwrap();
        let err = decode(&image_of(&plain), &key()).unwrap_err();
        assert!(err.to_string().contains("clear"), "{err}");
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove(PRIVACY_SEALED);
        assert!(decode(&image_of(&missing), &key()).is_err());
        let mut both = good.clone();
        both[PRIVACY_ENCODED] = serde_json::json!("e30=");
        assert!(decode(&image_of(&both), &key()).is_err());
        let mut not_text = missing.clone();
        not_text[PRIVACY_ENCODED] = serde_json::json!(5);
        assert!(decode(&image_of(&not_text), &key()).is_err());
        let mut not_base64 = missing.clone();
        not_base64[PRIVACY_ENCODED] = serde_json::json!("!!");
        assert!(decode(&image_of(&not_base64), &key()).is_err());
        let mut bad_seal = good.clone();
        bad_seal[PRIVACY_SEALED] = serde_json::json!({"nonce": 1});
        assert!(decode(&image_of(&bad_seal), &key()).is_err());
        assert!(decode(&image_of(&serde_json::json!([1, 2])), &key()).is_err());
    }

    #[test]
    fn a_state_too_large_for_the_partition_is_refused() {
        let mut state = sample();
        state.serial = "x".repeat(FLASH_SIZE);
        let err = encode(&state, &key(), sealed()).unwrap_err();
        assert!(err.to_string().contains("partition"), "{err}");
    }

    #[test]
    fn the_debug_form_of_the_state_shows_no_secret() {
        let text = format!("{:?}", sample());
        assert!(!text.contains(PSK), "{text}");
        assert!(text.contains(SSID), "{text}");
    }

    #[test]
    fn corrupt_file_gives_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flash.img");
        fs::write(&path, b"not a flash image at all").unwrap();
        let err = Flash::new(&path, key()).load().unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}
