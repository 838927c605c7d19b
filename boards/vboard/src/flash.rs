//! The flash image: the board's only persistent state, one file.
//!
//! Layout (little endian): magic `VRBFLASH` (8 bytes), format version (u32),
//! body length (u32), CRC-32 of version+length+body (u32), then a JSON body.
//! Later subsystems add fields to [`FlashState`] with `#[serde(default)]`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::{LoginCounters, PasswordHash};
use crate::privacy::PrivacyState;
use crate::update::UpdateState;

pub const MAGIC: &[u8; 8] = b"VRBFLASH";
pub const VERSION: u32 = 1;
const HEADER_LEN: usize = 20;
/// Refuse absurd images before allocating for them.
const MAX_BODY_LEN: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error("flash image {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("flash image is corrupt: {0}")]
    Corrupt(String),
    #[error("flash image has unsupported format version {0} (this firmware reads {VERSION})")]
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
    /// Users, their personal data, consents and data recipients; empty at the factory.
    #[serde(default)]
    pub privacy: PrivacyState,
}

/// Serialises a state into image bytes.
pub fn encode(state: &FlashState) -> Result<Vec<u8>, FlashError> {
    let body = serde_json::to_vec(state).map_err(|e| FlashError::Corrupt(e.to_string()))?;
    let len =
        u32::try_from(body.len()).map_err(|_| FlashError::Corrupt("state too large".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(VERSION, len, &body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Parses and checks image bytes.
pub fn decode(bytes: &[u8]) -> Result<FlashState, FlashError> {
    let corrupt = |m: &str| FlashError::Corrupt(m.to_string());
    if bytes.len() < HEADER_LEN {
        return Err(corrupt("shorter than its header"));
    }
    if &bytes[..8] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (version, len, crc) = (word(8), word(12), word(16));
    if version != VERSION {
        return Err(FlashError::UnsupportedVersion(version));
    }
    let body = &bytes[HEADER_LEN..];
    if body.len() != len as usize || body.len() > MAX_BODY_LEN {
        return Err(corrupt("length does not match header"));
    }
    if checksum(version, len, body) != crc {
        return Err(corrupt("CRC mismatch"));
    }
    let state: FlashState =
        serde_json::from_slice(body).map_err(|e| FlashError::Corrupt(format!("bad body: {e}")))?;
    let corrupt = |e: &dyn std::fmt::Display| FlashError::Corrupt(e.to_string());
    state.admin_password.validate().map_err(|e| corrupt(&e))?;
    if let Some(factory) = &state.factory_password {
        factory.validate().map_err(|e| corrupt(&e))?;
    }
    state.privacy.validate().map_err(|e| corrupt(&e))?;
    Ok(state)
}

fn checksum(version: u32, len: u32, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&version.to_le_bytes());
    h.update(&len.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// The image file on disk.
#[derive(Debug, Clone)]
pub struct Flash {
    path: PathBuf,
}

impl Flash {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the image; `Ok(None)` when the unit was never provisioned.
    pub fn load(&self) -> Result<Option<FlashState>, FlashError> {
        match fs::read(&self.path) {
            Ok(bytes) => decode(&bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Writes the image atomically so a crash leaves either the old or the new state.
    pub fn store(&self, state: &FlashState) -> Result<(), FlashError> {
        let bytes = encode(state)?;
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
        }
    }

    fn sample_privacy() -> PrivacyState {
        let mut p = PrivacyState::default();
        p.pair("alice").unwrap();
        p.decide(crate::privacy::Purpose::Analytics, true, 1_700_000_000_000);
        p.record_sent("alice", crate::privacy::ANALYTICS);
        p.profile.wifi = Some(crate::privacy::Wifi {
            ssid: "HomeNet".into(),
            psk: crate::privacy::Psk::new("wifi-secret-psk"),
        });
        p
    }

    #[test]
    fn round_trip_through_file() {
        let dir = tempfile::tempdir().unwrap();
        let flash = Flash::new(dir.path().join("flash.img"));
        assert!(flash.load().unwrap().is_none());
        let state = sample();
        flash.store(&state).unwrap();
        assert_eq!(flash.load().unwrap(), Some(state.clone()));
        let bytes = fs::read(flash.path()).unwrap();
        assert_eq!(&bytes[..8], MAGIC);
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("secret-pass"), "password stored in clear");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(flash.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "temp file left behind");
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let bytes = encode(&sample()).unwrap();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(decode(&bad).is_err(), "flip at byte {i} not detected");
        }
    }

    #[test]
    fn truncation_and_garbage_are_errors_not_panics() {
        let bytes = encode(&sample()).unwrap();
        for cut in [0, 7, 19, 20, bytes.len() - 1] {
            assert!(matches!(decode(&bytes[..cut]), Err(FlashError::Corrupt(_))));
        }
        let mut wrong_version = bytes.clone();
        wrong_version[8] = 9;
        assert!(matches!(
            decode(&wrong_version),
            Err(FlashError::UnsupportedVersion(9))
        ));
        let mut long = bytes.clone();
        long.extend_from_slice(b"extra");
        assert!(decode(&long).is_err());
    }

    #[test]
    fn an_image_from_before_updates_boots_the_factory_firmware() {
        let mut body = serde_json::to_value(sample()).unwrap();
        body.as_object_mut().unwrap().remove("update");
        let body = serde_json::to_vec(&body).unwrap();
        let len = body.len() as u32;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&checksum(VERSION, len, &body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let state = decode(&bytes).unwrap();
        assert_eq!(state.update, UpdateState::default());
        assert_eq!(state.update.running.version, crate::FW_VERSION);
        assert!(state.update.auto);
        assert_eq!(state.login, sample().login);
    }

    /// Image bytes around a JSON body, as `encode` would write them.
    fn image_of(body: &serde_json::Value) -> Vec<u8> {
        let body = serde_json::to_vec(body).unwrap();
        let len = body.len() as u32;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&checksum(VERSION, len, &body).to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes
    }

    #[test]
    fn an_image_from_before_privacy_has_no_users_and_no_factory_hash() {
        let old = sample();
        let mut body = serde_json::to_value(&old).unwrap();
        let object = body.as_object_mut().unwrap();
        object.remove("privacy");
        object.remove("factory_password");
        let state = decode(&image_of(&body)).unwrap();
        assert_eq!(state.privacy, PrivacyState::default());
        assert_eq!(state.factory_password, None);
        assert_eq!(state.admin_password, old.admin_password);
    }

    #[test]
    fn bad_privacy_records_and_factory_hashes_are_refused() {
        let mut body = serde_json::to_value(sample()).unwrap();
        body["privacy"]["users"] = serde_json::json!(["../../etc"]);
        assert!(matches!(
            decode(&image_of(&body)),
            Err(FlashError::Corrupt(_))
        ));
        let mut body = serde_json::to_value(sample()).unwrap();
        body["factory_password"]["iterations"] = serde_json::json!(1);
        assert!(matches!(
            decode(&image_of(&body)),
            Err(FlashError::Corrupt(_))
        ));
    }

    #[test]
    fn the_debug_form_of_the_state_shows_no_secret() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("wifi-secret-psk"), "{text}");
        assert!(text.contains("HomeNet"), "{text}");
    }

    #[test]
    fn corrupt_file_gives_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flash.img");
        fs::write(&path, b"not a flash image at all").unwrap();
        let err = Flash::new(&path).load().unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}
