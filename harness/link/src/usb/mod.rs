//! USB: what is on the bus, described by its descriptors (vendor and product ids, serial number,
//! strings, interfaces with class, subclass and protocol), and which device is which board.
//!
//! The bus sits behind [`UsbBus`]: [`NusbBus`] reads the real one through `nusb`, [`FakeBus`] plays
//! back recorded descriptor sets of real device models (tests, and `hilt selftest` without a bus). A
//! machine without a USB bus (a CI container) is [`UsbError::NoBus`], said plainly, never a panic.
//! [`FileBus`] is a bus a simulated device publishes as a JSON file (the virtual reference board).
//!
//! An interface bound to a tty driver carries the tty's device node, so a console can be found by
//! the board's identity rather than by a `/dev/ttyACMn` name that changes with plug order.

mod fake;
mod file;
mod identity;
mod kind;
#[cfg(target_os = "linux")]
mod sysfs;

pub use fake::FakeBus;
pub use file::{FileBus, MAX_BUS_FILE_BYTES};
pub use identity::UsbIdentity;
pub use kind::InterfaceKind;

use serde::{Deserialize, Serialize};

/// One interface of a device's active configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsbInterface {
    pub number: u8,
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    /// The interface string, when the device gives one.
    #[serde(default)]
    pub name: Option<String>,
    /// The tty device node bound to this interface (`/dev/ttyACM0` for CDC ACM, `/dev/ttyUSB1` for
    /// a usb-serial driver such as ftdi_sio or cp210x), when there is one.
    #[serde(default)]
    pub tty: Option<String>,
}

/// A device on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsbDevice {
    pub vid: u16,
    pub pid: u16,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub manufacturer: Option<String>,
    #[serde(default)]
    pub product: Option<String>,
    /// Device class, subclass and protocol (0 = per interface; 0xEF/2/1 = composite with IADs).
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    /// Where it is plugged in, e.g. `1-1.4` (bus and port chain): stable while it stays in that
    /// port, unlike its address.
    #[serde(default)]
    pub location: String,
    pub interfaces: Vec<UsbInterface>,
}

impl UsbDevice {
    /// `vvvv:pppp[:serial]`, as `lsusb` and probe selectors write it.
    pub fn id(&self) -> String {
        match &self.serial {
            Some(s) => format!("{:04x}:{:04x}:{s}", self.vid, self.pid),
            None => format!("{:04x}:{:04x}", self.vid, self.pid),
        }
    }

    /// What each interface is, in interface order.
    pub fn kinds(&self) -> Vec<(u8, InterfaceKind)> {
        self.interfaces
            .iter()
            .map(|i| (i.number, InterfaceKind::of(self, i)))
            .collect()
    }
}

/// Why the bus could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsbError {
    /// No USB bus on this machine (no `/sys/bus/usb`): nothing can be attached, which is not an error
    /// of the bench's configuration.
    #[error("no USB bus on this machine ({0})")]
    NoBus(String),
    #[error("cannot list USB devices: {0}")]
    List(String),
}

/// A USB bus to list. Each call lists afresh: a device that re-enumerated shows its new state.
pub trait UsbBus {
    fn devices(&self) -> Result<Vec<UsbDevice>, UsbError>;
}

/// The machine's real bus, through `nusb`.
#[derive(Debug, Default, Clone, Copy)]
pub struct NusbBus;

impl UsbBus for NusbBus {
    fn devices(&self) -> Result<Vec<UsbDevice>, UsbError> {
        use nusb::MaybeFuture;
        let list = nusb::list_devices().wait().map_err(|e| {
            let text = e.to_string();
            if std::path::Path::new("/sys/bus/usb").exists() {
                UsbError::List(text)
            } else {
                UsbError::NoBus(text)
            }
        })?;
        Ok(list.map(|d| from_nusb(&d)).collect())
    }
}

fn from_nusb(d: &nusb::DeviceInfo) -> UsbDevice {
    let chain: Vec<String> = d.port_chain().iter().map(u8::to_string).collect();
    #[cfg(target_os = "linux")]
    let ttys = sysfs::interface_ttys(d.sysfs_path());
    #[cfg(not(target_os = "linux"))]
    let ttys = std::collections::BTreeMap::<u8, String>::new();
    UsbDevice {
        vid: d.vendor_id(),
        pid: d.product_id(),
        serial: d.serial_number().map(str::to_string),
        manufacturer: d.manufacturer_string().map(str::to_string),
        product: d.product_string().map(str::to_string),
        class: d.class(),
        subclass: d.subclass(),
        protocol: d.protocol(),
        location: format!("{}-{}", d.busnum(), chain.join(".")),
        interfaces: d
            .interfaces()
            .map(|i| UsbInterface {
                number: i.interface_number(),
                class: i.class(),
                subclass: i.subclass(),
                protocol: i.protocol(),
                name: i.interface_string().map(str::to_string),
                tty: ttys.get(&i.interface_number()).cloned(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_bus_lists_or_says_there_is_none_never_panics() {
        match NusbBus.devices() {
            Ok(devices) => {
                for d in devices {
                    assert!(!d.id().is_empty());
                }
            }
            Err(UsbError::NoBus(why)) => {
                assert!(!std::path::Path::new("/sys/bus/usb").exists(), "{why}")
            }
            Err(UsbError::List(why)) => assert!(!why.is_empty()),
        }
    }
}
