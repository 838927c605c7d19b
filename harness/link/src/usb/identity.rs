//! A board's USB identity, as its profile declares it: vendor and product id, and the serial number
//! and interface that tell one unit and one function of a composite device from the others. Parsed
//! once; matching a device never guesses: a declared serial must be the device's exactly.
//!
//! Resolving an identity to its tty goes through a [`UsbBus`], so a console is found by what the
//! board is, whatever `/dev/ttyACMn` name it got this time.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{UsbBus, UsbDevice};
use crate::LinkError;

/// At most this many present devices are listed in a "not found" error.
const SEEN_MAX: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsbIdentity {
    pub vid: u16,
    pub pid: u16,
    #[serde(default)]
    pub serial: Option<String>,
    /// For a composite device: which interface is meant. For a CDC ACM console that is its control
    /// interface, the one Linux hangs the tty off.
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

    /// The tty of this device on `bus`: see [`UsbIdentity::tty_in`]. A bus that cannot be listed
    /// (none on this machine, a malformed bus file) is [`LinkError::UsbNotFound`] saying why.
    pub fn resolve_tty(&self, bus: &dyn UsbBus) -> Result<PathBuf, LinkError> {
        let devices = bus.devices().map_err(|e| LinkError::UsbNotFound {
            wanted: self.to_string(),
            seen: e.to_string(),
        })?;
        self.tty_in(&devices)
    }

    /// The tty of the one device among `devices` that is this one: the declared interface's, or,
    /// with no interface declared, that of the only interface that has one.
    pub fn tty_in(&self, devices: &[UsbDevice]) -> Result<PathBuf, LinkError> {
        let wanted = || self.to_string();
        let device = match self.find(devices).as_slice() {
            [one] => *one,
            [] => {
                return Err(LinkError::UsbNotFound {
                    wanted: wanted(),
                    seen: seen(devices),
                });
            }
            many => {
                return Err(LinkError::UsbAmbiguous {
                    wanted: wanted(),
                    matches: many.iter().map(|d| describe(d)).collect(),
                    add: "serial number",
                });
            }
        };
        let with_tty: Vec<(u8, &str)> = device
            .interfaces
            .iter()
            .filter_map(|i| Some((i.number, i.tty.as_deref()?)))
            .collect();
        let found = match self.interface {
            Some(n) => with_tty.iter().find(|(number, _)| *number == n),
            None if with_tty.len() > 1 => {
                return Err(LinkError::UsbAmbiguous {
                    wanted: wanted(),
                    matches: with_tty
                        .iter()
                        .map(|(n, tty)| format!("interface {n} ({tty})"))
                        .collect(),
                    add: "interface number",
                });
            }
            None => with_tty.first(),
        };
        match found {
            Some((_, tty)) => {
                tracing::debug!(wanted = %self, tty, "resolved USB identity");
                Ok(PathBuf::from(tty))
            }
            None => Err(LinkError::UsbNoTty {
                device: describe_short(device),
                interface: self.interface,
                has: if with_tty.is_empty() {
                    "it has none".into()
                } else {
                    let list: Vec<String> = with_tty
                        .iter()
                        .map(|(n, tty)| format!("interface {n} ({tty})"))
                        .collect();
                    format!("these have one: {}", list.join(", "))
                },
            }),
        }
    }
}

/// `vvvv:pppp[:serial] at 1-1.4`.
fn describe_short(d: &UsbDevice) -> String {
    if d.location.is_empty() {
        d.id()
    } else {
        format!("{} at {}", d.id(), d.location)
    }
}

/// A device and its interfaces with their ttys: `1366:1015:0006 at 1-1.1 (interfaces 0
/// /dev/ttyACM0, 1, 2, 3)`.
fn describe(d: &UsbDevice) -> String {
    let interfaces: Vec<String> = d
        .interfaces
        .iter()
        .map(|i| match &i.tty {
            Some(tty) => format!("{} {tty}", i.number),
            None => i.number.to_string(),
        })
        .collect();
    format!(
        "{} (interfaces {})",
        describe_short(d),
        if interfaces.is_empty() {
            "none".into()
        } else {
            interfaces.join(", ")
        }
    )
}

/// What is present, for a "not found" error.
fn seen(devices: &[UsbDevice]) -> String {
    if devices.is_empty() {
        return "no USB devices are present".into();
    }
    let mut list: Vec<String> = devices.iter().take(SEEN_MAX).map(describe).collect();
    if devices.len() > SEEN_MAX {
        list.push(format!("and {} more", devices.len() - SEEN_MAX));
    }
    format!("present: {}", list.join("; "))
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
