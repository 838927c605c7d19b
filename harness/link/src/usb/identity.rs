//! A board's USB identity, as its profile declares it: vendor and product id, and the serial number
//! and interface that tell one unit and one function of a composite device from the others. Parsed
//! once; matching a device never guesses: a declared serial must be the device's exactly.

use serde::{Deserialize, Serialize};

use super::UsbDevice;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsbIdentity {
    pub vid: u16,
    pub pid: u16,
    #[serde(default)]
    pub serial: Option<String>,
    /// For a composite device: which interface is meant (e.g. the CDC data interface of a console).
    #[serde(default)]
    pub interface: Option<u8>,
}

impl UsbIdentity {
    /// Whether `d` is this device: same ids, the declared serial exactly, and the declared
    /// interface present.
    pub fn matches(&self, d: &UsbDevice) -> bool {
        d.vid == self.vid
            && d.pid == self.pid
            && self
                .serial
                .as_ref()
                .is_none_or(|s| d.serial.as_deref() == Some(s.as_str()))
            && self
                .interface
                .is_none_or(|n| d.interfaces.iter().any(|i| i.number == n))
    }

    /// The devices among `devices` that are this one; more than one means the identity is
    /// ambiguous (no serial declared, several units attached).
    pub fn find<'a>(&self, devices: &'a [UsbDevice]) -> Vec<&'a UsbDevice> {
        devices.iter().filter(|d| self.matches(d)).collect()
    }
}

impl std::fmt::Display for UsbIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vid, self.pid)?;
        if let Some(s) = &self.serial {
            write!(f, ":{s}")?;
        }
        if let Some(n) = self.interface {
            write!(f, " interface {n}")?;
        }
        Ok(())
    }
}
