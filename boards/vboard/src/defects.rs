//! Named defects: each switches the board to exactly one non-conformance.
//!
//! Adding a defect is one entry in the `defects!` list plus the behaviour that checks it.

use std::collections::BTreeSet;

/// One registry entry: the defect, its command-line name and a one-line description.
#[derive(Debug)]
pub struct DefectInfo {
    pub defect: Defect,
    pub name: &'static str,
    pub description: &'static str,
}

/// Declares the [`Defect`] enum and its [`REGISTRY`] from one line per defect.
macro_rules! defects {
    ($($variant:ident => $name:literal, $description:literal;)*) => {
        /// A non-conformance the board can be launched with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Defect {
            $($variant,)*
        }

        /// Every known defect, in the order `hilt-vboard defects` lists them.
        pub const REGISTRY: &[DefectInfo] = &[
            $(DefectInfo { defect: Defect::$variant, name: $name, description: $description },)*
        ];

        impl Defect {
            /// The registry entry of this defect.
            pub fn info(self) -> &'static DefectInfo {
                match self {
                    $(Defect::$variant => &DefectInfo {
                        defect: Defect::$variant,
                        name: $name,
                        description: $description,
                    },)*
                }
            }
        }
    };
}

defects! {
    UniversalDefaultPassword => "universal-default-password",
        "factory provisioning gives every unit the same password 'admin'";
    NoLoginRateLimit => "no-login-rate-limit",
        "no lockout and no delay after failed login attempts";
    AcceptsUntrustedCert => "accepts-untrusted-cert",
        "the TLS client accepts any server certificate (man-in-the-middle)";
    PlaintextMqtt => "plaintext-mqtt",
        "connects to the cloud's plaintext MQTT listener (--mqtt-plain-url): credentials and personal data in the clear";
    UndeclaredFlow => "undeclared-flow",
        "also publishes nearby Wi-Fi networks (location-revealing) to an undeclared topic";
    SerialDerivedPassword => "serial-derived-password",
        "the unit password is the first 12 hex digits of SHA-256 of the serial number (an unkeyed hash)";
    WrongModelDesignation => "wrong-model-designation",
        "the console shows the internal codename 'VRB' instead of the label's model designation 'VRB-1'";
    ReconnectStorm => "reconnect-storm",
        "retries the cloud every 10 ms without back-off when the connection fails";
    LockoutBypass => "lockout-bypass",
        "while locked out after failed logins, the console still accepts the right password (wrong ones are answered locked)";
    SkipsImageDigest => "skips-image-digest",
        "the update agent does not check the image against the manifest's SHA-256 and size";
    TrustsAnyKey => "trusts-any-key",
        "the update agent accepts a manifest signed by a key it was not provisioned with";
    AcceptsUnsigned => "accepts-unsigned",
        "the update agent accepts a manifest without any signature";
    AllowsDowngrade => "allows-downgrade",
        "the update agent installs releases with a lower security version (no anti-rollback)";
    FollowsPlainHttp => "follows-plain-http",
        "the update agent downloads images over plain HTTP";
    SilentUpdate => "silent-update",
        "no notices that a security update is available or was installed, neither on the console nor to the cloud";
    AutoUpdateOff => "auto-update-off",
        "automatic updates are off by default (factory provisioning sets autoupdate off)";
    IgnoresAutoUpdateOff => "ignores-auto-update-off",
        "the update agent installs releases by itself even after the user switched automatic updates off";
    NoSupportPeriod => "no-support-period",
        "the console does not show until when the device receives security updates";
    NoPeriodicCheck => "no-periodic-check",
        "the update agent checks for updates once after boot and never again";
    SendsBeforeConsent => "sends-before-consent",
        "usage analytics go to the third-party processor from pairing on, before the owner opted in (a withdrawal still stops them)";
    IgnoresConsentWithdrawal => "ignores-consent-withdrawal",
        "once the owner granted analytics consent, analytics keep going after it is withdrawn (the console and the cloud are still told 'withdrawn')";
    EraseKeepsUserData => "erase-keeps-user-data",
        "erase keeps the personal data (name, e-mail, Wi-Fi) while wiping everything else and confirming";
    EraseSkipsThirdParties => "erase-skips-third-parties",
        "erase does not tell the third parties that received a user's data (the cloud is still told, the data still wiped)";
    NoticeToOwnerOnly => "notice-to-owner-only",
        "privacy notices and privacy-change notices go to the owner only: household members are never told";
    ExportLeaksOtherUser => "export-leaks-other-user",
        "a user's data export also holds every other paired user's entry (ids, roles, the owner's personal data)";
    WithdrawalHarder => "withdrawal-harder",
        "withdrawing analytics consent asks for a confirmation that giving it never does";
    IgnoresAppConsent => "ignores-app-consent",
        "consent given or withdrawn in the companion app is never adopted: only the console's decisions count (analytics go on after a withdrawal in the app)";
    PrivacyNeedsLogin => "privacy-needs-login",
        "'privacy' at the login prompt is taken as a user name (password prompt, a failed login): the privacy information is only shown after a login";
    ConsentRecordUnstamped => "consent-record-unstamped",
        "consent decisions are stored without when they were made: the consent record holds no time";
    SharedDeviceKey => "shared-device-key",
        "every unit carries the firmware's one service key, in the clear in flash, instead of its own sealed one";
    SequentialPasswords => "sequential-passwords",
        "unit passwords come from the factory's counter (Vrb10001x, Vrb10002x, …) instead of a CSPRNG";
    EraseKeepsWifiHistory => "erase-keeps-wifi-history",
        "the device lists the Wi-Fi networks it joined in the clear in flash, and its erase function leaves the list";
    EraseKeepsPresenceName => "erase-keeps-presence-name",
        "after an erase, presence reports to the cloud still carry the erased owner's name (the cloud session keeps its own copy)";
    PlaintextWifiPsk => "plaintext-wifi-psk",
        "the Wi-Fi SSID and PSK are also stored unencrypted in the flash image, beside the sealed user data (a driver keeps its own copy)";
    ObfuscatedSecrets => "obfuscated-secrets",
        "the user data in flash (names, e-mail, Wi-Fi credentials, consents) is only base64-encoded, not encrypted";
    DebugPortOpen => "debug-port-open",
        "the debug port (--debug-port) answers memory reads: anyone on it can dump the flash";
    UsbDfuExposed => "usb-dfu-exposed",
        "the USB device (--usb-bus) also has a DFU runtime interface: a firmware loader left on in production";
    BleLeaksSerial => "ble-leaks-serial",
        "the BLE serial number characteristic (0x2a25) is readable without pairing";
    BleAdvertisesOwner => "ble-advertises-owner",
        "once an owner name is set, the BLE advertisement's local name is \"<owner name>'s VRB\" (broadcast to anyone in range)";
    BleExtraService => "ble-extra-service",
        "the BLE GATT table also has an undeclared factory-test service with a characteristic anyone may write";
}

/// Why a list of defect names was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DefectError {
    #[error("unknown defect '{name}' (known: {known})")]
    Unknown { name: String, known: String },
    #[error("defect '{0}' given more than once")]
    Duplicate(String),
}

impl Defect {
    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn from_name(name: &str) -> Result<Self, DefectError> {
        REGISTRY
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.defect)
            .ok_or_else(|| DefectError::Unknown {
                name: name.to_string(),
                known: known_names(),
            })
    }
}

fn known_names() -> String {
    REGISTRY
        .iter()
        .map(|d| d.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The defects switched on for one run. Empty means conformant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefectSet(BTreeSet<Defect>);

impl DefectSet {
    /// Parses command-line names; unknown or repeated names are refused.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, DefectError> {
        let mut set = BTreeSet::new();
        for name in names {
            let defect = Defect::from_name(name.as_ref())?;
            if !set.insert(defect) {
                return Err(DefectError::Duplicate(name.as_ref().to_string()));
            }
        }
        Ok(Self(set))
    }

    pub fn has(&self, defect: Defect) -> bool {
        self.0.contains(&defect)
    }

    pub fn iter(&self) -> impl Iterator<Item = Defect> + '_ {
        self.0.iter().copied()
    }

    pub fn insert(&mut self, defect: Defect) {
        self.0.insert(defect);
    }
}

/// The text of `hilt-vboard defects`: `NAME<TAB>description` per line.
pub fn listing() -> String {
    REGISTRY
        .iter()
        .map(|d| format!("{}\t{}\n", d.name, d.description))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_and_variants_are_unique() {
        let names: BTreeSet<_> = REGISTRY.iter().map(|d| d.name).collect();
        assert_eq!(names.len(), REGISTRY.len(), "duplicate defect name");
        let variants: BTreeSet<_> = REGISTRY.iter().map(|d| d.defect).collect();
        assert_eq!(variants.len(), REGISTRY.len(), "duplicate defect variant");
        for d in REGISTRY {
            assert_eq!(Defect::from_name(d.name), Ok(d.defect));
            assert_eq!(d.defect.name(), d.name);
        }
    }

    #[test]
    fn parse_refuses_unknown_and_duplicates() {
        let err = DefectSet::parse(&["no-such-thing"]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("no-such-thing") && msg.contains("no-login-rate-limit"),
            "{msg}"
        );
        assert_eq!(
            DefectSet::parse(&["no-login-rate-limit", "no-login-rate-limit"]),
            Err(DefectError::Duplicate("no-login-rate-limit".into()))
        );
        let set = DefectSet::parse(&["no-login-rate-limit"]).unwrap();
        assert!(set.has(Defect::NoLoginRateLimit));
        assert!(!set.has(Defect::UniversalDefaultPassword));
    }

    #[test]
    fn listing_is_name_tab_description() {
        let text = listing();
        assert_eq!(text.lines().count(), REGISTRY.len());
        for line in text.lines() {
            let (name, desc) = line.split_once('\t').expect("tab");
            assert!(Defect::from_name(name).is_ok());
            assert!(!desc.is_empty());
        }
    }
}
