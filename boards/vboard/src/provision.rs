//! Factory provisioning: per-unit password, serial number, printed label.

use std::path::Path;

use crate::auth::{AuthError, LoginCounters, PasswordHash};
use crate::defects::{Defect, DefectSet};
use crate::flash::{FlashState, write_atomic};
use crate::privacy::PrivacyState;
use crate::update::UpdateState;
use crate::{ADMIN_USER, MODEL};

/// No 0/O/1/l/I, so a technician cannot misread the label: 57 symbols.
pub const PASSWORD_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// 12 symbols of 57 give about 70 bits.
pub const PASSWORD_LEN: usize = 12;
/// What the `universal-default-password` defect gives every unit.
pub const UNIVERSAL_PASSWORD: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("no random numbers available: {0}")]
    Random(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot write label {path}: {source}")]
    Label {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

fn random_bytes(buf: &mut [u8]) -> Result<(), ProvisionError> {
    getrandom::fill(buf).map_err(|e| ProvisionError::Random(e.to_string()))
}

/// A fresh random password from [`PASSWORD_ALPHABET`], uniformly distributed.
pub fn generate_password() -> Result<String, ProvisionError> {
    // Rejection sampling: bytes at or above the largest multiple of the
    // alphabet size would bias the first symbols.
    let n = PASSWORD_ALPHABET.len();
    let limit = 256 - (256 % n);
    let mut out = String::with_capacity(PASSWORD_LEN);
    let mut buf = [0u8; 32];
    while out.len() < PASSWORD_LEN {
        random_bytes(&mut buf)?;
        for &b in &buf {
            if (b as usize) < limit && out.len() < PASSWORD_LEN {
                out.push(PASSWORD_ALPHABET[b as usize % n] as char);
            }
        }
    }
    Ok(out)
}

/// `VRB-` followed by 8 random upper-case hex digits.
pub fn generate_serial() -> Result<String, ProvisionError> {
    let mut buf = [0u8; 4];
    random_bytes(&mut buf)?;
    Ok(format!("VRB-{}", hex::encode_upper(buf)))
}

/// Length of a unit's service key, in bytes.
pub const SERVICE_KEY_LEN: usize = 64;

/// The unit's own service key, or (`shared-device-key`) the one built into the firmware, which is
/// the same on every unit: base64.
fn service_key(defects: &DefectSet) -> Result<String, ProvisionError> {
    use base64::Engine;
    let mut key = [0u8; SERVICE_KEY_LEN];
    if defects.has(Defect::SharedDeviceKey) {
        use sha2::Digest;
        key.copy_from_slice(&sha2::Sha512::digest(
            b"hilt vboard firmware 1.0 service key",
        ));
    } else {
        random_bytes(&mut key)?;
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(key))
}

/// The `sequential-passwords` defect's password for the unit numbered `seq` by the factory.
pub fn counter_password(seq: u32) -> String {
    format!("Vrb{}x", 10_000 + u64::from(seq))
}

/// A freshly provisioned unit: what goes to flash and what goes on the label.
pub struct Provisioned {
    pub state: FlashState,
    pub label: String,
}

/// Provisions a unit, the `seq`-th the factory made. The password is only ever in the label, never
/// in flash.
pub fn provision(
    serial: Option<&str>,
    seq: u32,
    defects: &DefectSet,
) -> Result<Provisioned, ProvisionError> {
    let serial = match serial {
        Some(s) => s.to_string(),
        None => generate_serial()?,
    };
    let password = if defects.has(Defect::UniversalDefaultPassword) {
        UNIVERSAL_PASSWORD.to_string()
    } else if defects.has(Defect::SequentialPasswords) {
        counter_password(seq)
    } else if defects.has(Defect::SerialDerivedPassword) {
        // The classic mistake: an unkeyed hash of a printed identifier, which anyone can recompute.
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(serial.as_bytes()))[..PASSWORD_LEN].to_string()
    } else {
        generate_password()?
    };
    let admin_password = PasswordHash::new(password.as_bytes())?;
    let state = FlashState {
        serial: serial.clone(),
        // Kept apart, so an erase can restore the label's password after a `passwd`.
        factory_password: Some(admin_password.clone()),
        admin_password,
        login: LoginCounters::default(),
        update: UpdateState::factory(!defects.has(Defect::AutoUpdateOff)),
        privacy: PrivacyState::default(),
        service_key: Some(service_key(defects)?),
        wifi_history: Vec::new(),
    };
    let label =
        format!("model={MODEL}\nserial={serial}\nusername={ADMIN_USER}\npassword={password}\n");
    Ok(Provisioned { state, label })
}

/// Writes the printed label (mode 0600: it holds the password).
pub fn write_label(path: &Path, label: &str) -> Result<(), ProvisionError> {
    write_atomic(path, label.as_bytes(), 0o600).map_err(|source| ProvisionError::Label {
        path: path.to_path_buf(),
        source,
    })
}

/// Checks a `--serial` value: 1 to 32 printable ASCII characters, no spaces.
pub fn valid_serial(serial: &str) -> bool {
    (1..=32).contains(&serial.len()) && serial.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn passwords_are_long_unambiguous_and_distinct() {
        let serial = generate_serial().unwrap();
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let pw = generate_password().unwrap();
            assert_eq!(pw.len(), PASSWORD_LEN);
            assert!(pw.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)), "{pw}");
            assert!(!pw.contains(['0', 'O', '1', 'l', 'I']), "{pw}");
            assert!(!pw.contains(&serial) && !pw.contains(&serial[4..]), "{pw}");
            assert!(seen.insert(pw), "duplicate password");
        }
        // log2(57) * 12 >= 60 bits.
        assert!((PASSWORD_ALPHABET.len() as f64).log2() * PASSWORD_LEN as f64 >= 60.0);
        let unique: HashSet<_> = PASSWORD_ALPHABET.iter().collect();
        assert_eq!(unique.len(), PASSWORD_ALPHABET.len());
    }

    #[test]
    fn every_symbol_can_appear() {
        let mut seen = HashSet::new();
        for _ in 0..200 {
            seen.extend(generate_password().unwrap().bytes());
        }
        assert_eq!(seen.len(), PASSWORD_ALPHABET.len());
    }

    #[test]
    fn provisioning_writes_label_not_flash_password() {
        let p = provision(Some("SN-1"), 1, &DefectSet::default()).unwrap();
        let pw = p
            .label
            .lines()
            .find_map(|l| l.strip_prefix("password="))
            .unwrap();
        assert_eq!(pw.len(), PASSWORD_LEN);
        assert!(
            p.label
                .starts_with("model=VRB-1\nserial=SN-1\nusername=admin\n")
        );
        assert!(p.state.admin_password.verify(pw.as_bytes()));
        let factory = p
            .state
            .factory_password
            .as_ref()
            .expect("factory hash kept");
        assert!(factory.verify(pw.as_bytes()));
        assert_eq!(p.state.privacy, PrivacyState::default());
        let key = crate::storage::DeviceKey::generate().unwrap();
        let image = crate::flash::encode(&p.state, &key, Default::default()).unwrap();
        assert!(!String::from_utf8_lossy(&image).contains(pw));
        assert!(generate_serial().unwrap().starts_with("VRB-"));
        assert_eq!(generate_serial().unwrap().len(), 12);
    }

    #[test]
    fn universal_password_defect() {
        let mut defects = DefectSet::default();
        defects.insert(Defect::UniversalDefaultPassword);
        let p = provision(None, 1, &defects).unwrap();
        assert!(p.label.ends_with("password=admin\n"));
        assert!(p.state.admin_password.verify(b"admin"));
        assert!(p.state.update.auto, "automatic updates are on by default");
    }

    #[test]
    fn auto_update_off_defect_ships_with_automatic_updates_off() {
        let defects = DefectSet::parse(&["auto-update-off"]).unwrap();
        let p = provision(None, 1, &defects).unwrap();
        assert!(!p.state.update.auto);
        assert_eq!(p.state.update.running.version, crate::FW_VERSION);
    }

    #[test]
    fn serial_validation() {
        assert!(valid_serial("VRB-00AA11BB"));
        assert!(!valid_serial(""));
        assert!(!valid_serial("has space"));
        assert!(!valid_serial(&"x".repeat(33)));
    }

    /// The image each of two units would write, and their service keys.
    fn two_units(defects: &DefectSet) -> [(Vec<u8>, String); 2] {
        use crate::storage::{DeviceKey, Sealing};
        [1, 2].map(|seq| {
            let p = provision(None, seq, defects).unwrap();
            let key = DeviceKey::generate().unwrap();
            let image =
                crate::flash::encode(&p.state, &key, Sealing::for_defects(defects)).unwrap();
            (image, p.state.service_key.unwrap())
        })
    }

    fn contains(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[test]
    fn each_unit_draws_its_own_sealed_service_key_unless_the_firmware_shares_one() {
        let [(a, ka), (b, kb)] = two_units(&DefectSet::default());
        assert_ne!(ka, kb);
        assert_eq!(
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &ka)
                .unwrap()
                .len(),
            SERVICE_KEY_LEN
        );
        assert!(!contains(&a, &ka) && !contains(&b, &kb));
        let shared = DefectSet::parse(&["shared-device-key"]).unwrap();
        let [(a, ka), (b, kb)] = two_units(&shared);
        assert_eq!(ka, kb);
        assert!(contains(&a, &ka) && contains(&b, &kb));
    }

    #[test]
    fn sequential_passwords_count_up_from_the_factory_sequence() {
        let seq = DefectSet::parse(&["sequential-passwords"]).unwrap();
        let label = |n| provision(Some("SN-1"), n, &seq).unwrap().label;
        assert!(label(1).contains("password=Vrb10001x\n"));
        assert!(label(2).contains("password=Vrb10002x\n"));
        let own = provision(Some("SN-1"), 2, &DefectSet::default())
            .unwrap()
            .label;
        assert!(!own.contains("Vrb1000"));
    }
}
