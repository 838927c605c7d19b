//! BLE: find a device in a bounded scan (by name, address or advertised service), connect, list its
//! GATT services and characteristics, and read, write and subscribe.
//!
//! The radio sits behind [`BleCentral`] and a connection behind [`BlePeripheral`]: `btleplug` drives
//! a real adapter (BlueZ over D-Bus, built from vendored source), `fake` plays back recorded GATT
//! tables of real device models, and `socket` speaks [`wire`] to a simulated peripheral (the virtual
//! reference board's radio). A machine without Bluetooth is [`BleError::NoAdapter`], said plainly.

pub mod att;
mod bluez;
mod console;
mod fake;
mod socket;
mod uuid;
pub mod wire;

pub use self::bluez::{BtleplugCentral, BtleplugPeripheral};
pub use self::console::GattPort;
pub use self::fake::{FakeCentral, FakePeripheral, RecordedDevice, Written};
pub use self::socket::{SocketCentral, SocketPeripheral};
pub use self::uuid::BleUuid;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Cancel;

/// One advertisement (with its scan response) as a scan saw it: evidence of what the device tells
/// anyone in radio range without a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advert {
    /// The device address as the central reports it (`AA:BB:CC:DD:EE:FF`).
    pub address: String,
    #[serde(default)]
    pub local_name: Option<String>,
    #[serde(default)]
    pub rssi: Option<i16>,
    #[serde(default)]
    pub tx_power: Option<i16>,
    /// Advertised service UUIDs.
    #[serde(default)]
    pub services: Vec<BleUuid>,
    /// Manufacturer-specific data by company id, in hex.
    #[serde(default)]
    pub manufacturer_data: BTreeMap<u16, String>,
    /// Service data by service UUID, in hex.
    #[serde(default)]
    pub service_data: BTreeMap<BleUuid, String>,
}

impl Advert {
    /// Every byte string the advertisement carries, for checks that look for leaked values: the
    /// name, and the manufacturer and service data decoded from hex.
    pub fn payloads(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = self
            .local_name
            .iter()
            .map(|n| n.as_bytes().to_vec())
            .collect();
        for h in self
            .manufacturer_data
            .values()
            .chain(self.service_data.values())
        {
            out.push(hex::decode(h).unwrap_or_else(|_| h.as_bytes().to_vec()));
        }
        out
    }
}

/// What a characteristic allows, as its declaration's property bits say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CharProperty {
    Broadcast,
    Read,
    WriteWithoutResponse,
    Write,
    Notify,
    Indicate,
    AuthenticatedSignedWrites,
    ExtendedProperties,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GattCharacteristic {
    pub uuid: BleUuid,
    pub properties: Vec<CharProperty>,
    /// Descriptor UUIDs (e.g. 0x2902, the client configuration of a notifying characteristic).
    #[serde(default)]
    pub descriptors: Vec<BleUuid>,
}

impl GattCharacteristic {
    pub fn can(&self, p: CharProperty) -> bool {
        self.properties.contains(&p)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GattService {
    pub uuid: BleUuid,
    #[serde(default = "yes")]
    pub primary: bool,
    pub characteristics: Vec<GattCharacteristic>,
}

fn yes() -> bool {
    true
}

/// Which device a scan is for: every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanFilter {
    /// The advertised local name, exactly.
    #[serde(default)]
    pub name: Option<String>,
    /// The address, compared case-insensitively.
    #[serde(default)]
    pub address: Option<String>,
    /// A service UUID the device advertises.
    #[serde(default)]
    pub service: Option<BleUuid>,
}

impl ScanFilter {
    pub fn matches(&self, a: &Advert) -> bool {
        self.name
            .as_ref()
            .is_none_or(|n| a.local_name.as_deref() == Some(n.as_str()))
            && self
                .address
                .as_ref()
                .is_none_or(|x| x.eq_ignore_ascii_case(&a.address))
            && self.service.as_ref().is_none_or(|s| a.services.contains(s))
    }
}

impl std::fmt::Display for ScanFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(n) = &self.name {
            parts.push(format!("name {n:?}"));
        }
        if let Some(a) = &self.address {
            parts.push(format!("address {a}"));
        }
        if let Some(s) = &self.service {
            parts.push(format!("service {s}"));
        }
        if parts.is_empty() {
            f.write_str("any device")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Why a BLE operation did not happen. `Refused` is the device's answer (an ATT error such as
/// insufficient authentication): evidence about the device, not trouble on the bench.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BleError {
    /// No Bluetooth on this machine (no D-Bus system bus, no bluetoothd, no adapter).
    #[error("no Bluetooth adapter on this machine ({0})")]
    NoAdapter(String),
    #[error("no device matching {wanted} seen in a {waited_ms} ms scan{}", seen_list(.seen))]
    NotFound {
        wanted: String,
        waited_ms: u64,
        seen: Vec<String>,
    },
    #[error("{wanted} matches several devices: {}", .seen.join(", "))]
    Ambiguous { wanted: String, seen: Vec<String> },
    #[error("the device has no characteristic {0}")]
    NoSuchCharacteristic(BleUuid),
    /// The device refused: an ATT error (e.g. `insufficient-authentication`, `read-not-permitted`).
    #[error("the device refused {op} of {char}: {att}")]
    Refused {
        op: String,
        char: BleUuid,
        att: String,
    },
    /// The connection dropped or could not be made.
    #[error("cannot reach the device: {0}")]
    Unreachable(String),
    #[error("no answer within {0} ms")]
    Timeout(u64),
    #[error("BLE protocol error: {0}")]
    Protocol(String),
    #[error("cancelled")]
    Cancelled,
}

fn seen_list(seen: &[String]) -> String {
    if seen.is_empty() {
        " (no devices seen)".into()
    } else {
        format!(" (seen: {})", seen.join(", "))
    }
}

/// A radio that scans and connects.
pub trait BleCentral: Send + Sync {
    /// Advertisements heard within `within` (ends early on `cancel`), one per address, the latest.
    fn scan(&self, within: Duration, cancel: &Cancel) -> Result<Vec<Advert>, BleError>;
    /// Connects to the device at `address` (as a scan reported it).
    fn connect(&self, address: &str, within: Duration) -> Result<Box<dyn BlePeripheral>, BleError>;

    /// The one device matching `filter` in a scan of `within`: its advertisement.
    fn find(
        &self,
        filter: &ScanFilter,
        within: Duration,
        cancel: &Cancel,
    ) -> Result<Advert, BleError> {
        let seen = self.scan(within, cancel)?;
        let mut hits: Vec<&Advert> = seen.iter().filter(|a| filter.matches(a)).collect();
        let describe = |a: &Advert| match &a.local_name {
            Some(n) => format!("{} ({n})", a.address),
            None => a.address.clone(),
        };
        match hits.len() {
            1 => Ok(hits.remove(0).clone()),
            0 => Err(BleError::NotFound {
                wanted: filter.to_string(),
                waited_ms: within.as_millis() as u64,
                seen: seen.iter().map(describe).collect(),
            }),
            _ => Err(BleError::Ambiguous {
                wanted: filter.to_string(),
                seen: hits.iter().map(|a| describe(a)).collect(),
            }),
        }
    }
}

/// One connection to a device.
pub trait BlePeripheral: Send {
    /// The GATT table: services with their characteristics (discovered once, then cached).
    fn services(&mut self) -> Result<Vec<GattService>, BleError>;
    fn read(&mut self, char: &BleUuid, within: Duration) -> Result<Vec<u8>, BleError>;
    fn write(
        &mut self,
        char: &BleUuid,
        value: &[u8],
        with_response: bool,
        within: Duration,
    ) -> Result<(), BleError>;
    /// Turns on notifications (or indications) of `char`.
    fn subscribe(&mut self, char: &BleUuid, within: Duration) -> Result<(), BleError>;
    /// The next value notified on `char`, waiting at most `within`; `Ok(None)` = none came.
    fn notification(
        &mut self,
        char: &BleUuid,
        within: Duration,
    ) -> Result<Option<Vec<u8>>, BleError>;
    fn disconnect(&mut self);
}
