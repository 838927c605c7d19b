//! Link declarations: how the harness reaches the device.

use serde::Deserialize;
use std::ops::Range;

use super::memory::{MemoryLink, RawMemory, RegionDecl};
use crate::error::{LoadError, Source};
use crate::template::Template;

/// A declared link. Later kinds (usb, ble, probe, cloud) add their own fields; a plain struct rather
/// than a tagged enum keeps serde's spans, so errors point at the offending line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    kind: String,
    path: Option<Template>,
    usb: Option<UsbMatch>,
    #[serde(default = "default_baud")]
    baud: u32,
    #[serde(default)]
    char_delay_us: u64,
    // Memory links (see [`super::memory`]).
    source: Option<String>,
    address: Option<Template>,
    probe: Option<String>,
    chip: Option<String>,
    command: Option<Vec<Template>>,
    output: Option<Template>,
    regions: Option<Vec<RegionDecl>>,
    #[serde(default)]
    keep_bytes: bool,
    max_bytes: Option<u64>,
    timeout_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub enum Link {
    Serial(SerialLink),
    /// The device talks to hilt's mock cloud (MQTT and HTTPS): `hilt run` starts one for the board.
    Cloud(CloudLink),
    /// The device's storage or memory, read into snapshots.
    Memory(MemoryLink),
}

impl RawLink {
    /// Whether any memory-link field is set (a serial or cloud link takes none).
    fn has_memory_fields(&self) -> bool {
        self.source.is_some()
            || self.address.is_some()
            || self.probe.is_some()
            || self.chip.is_some()
            || self.command.is_some()
            || self.output.is_some()
            || self.regions.is_some()
            || self.keep_bytes
            || self.max_bytes.is_some()
            || self.timeout_ms.is_some()
    }

    fn into_memory(self) -> Result<MemoryLink, String> {
        if self.usb.is_some() {
            return Err("a memory link takes no usb".into());
        }
        RawMemory {
            source: self.source,
            path: self.path,
            address: self.address,
            probe: self.probe,
            chip: self.chip,
            command: self.command,
            output: self.output,
            regions: self.regions,
            keep_bytes: self.keep_bytes,
            max_bytes: self.max_bytes,
            timeout_ms: self.timeout_ms,
        }
        .into_link()
    }
}

/// A mock-cloud link. Its endpoints and the unit's credentials become `{cloud.*}` variables.
#[derive(Debug, Clone, Default)]
pub struct CloudLink {}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawLink::deserialize(d)?;
        if raw.kind != "memory" && raw.has_memory_fields() {
            return Err(serde::de::Error::custom(format!(
                "a {} link takes no memory fields (source, address, probe, chip, command, output, regions, keep_bytes, max_bytes, timeout_ms)",
                raw.kind
            )));
        }
        match raw.kind.as_str() {
            "serial" => Ok(Link::Serial(SerialLink {
                path: raw.path,
                usb: raw.usb,
                baud: raw.baud,
                char_delay_us: raw.char_delay_us,
            })),
            "cloud" if raw.path.is_none() && raw.usb.is_none() => Ok(Link::Cloud(CloudLink {})),
            "cloud" => Err(serde::de::Error::custom(
                "a cloud link takes no path or usb",
            )),
            "memory" => raw
                .into_memory()
                .map(Link::Memory)
                .map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "unknown link kind {other:?} (known: serial, cloud, memory)"
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SerialLink {
    /// An explicit device path (may use `{launch.NAME}`), or …
    pub path: Option<Template>,
    /// … a USB match resolved at run time (survives re-enumeration, unlike /dev/ttyUSBn).
    pub usb: Option<UsbMatch>,
    pub baud: u32,
    /// Pause between written bytes, for UARTs without flow control that drop input.
    pub char_delay_us: u64,
}

fn default_baud() -> u32 {
    115_200
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsbMatch {
    /// Vendor id, written in hex (`"0x0403"`), parsed at load.
    #[serde(deserialize_with = "hex_id")]
    pub vid: u16,
    /// Product id, written in hex (`"0x6001"`), parsed at load.
    #[serde(deserialize_with = "hex_id")]
    pub pid: u16,
    pub serial: Option<String>,
}

/// A 16-bit USB id written in hex, with or without `0x`.
fn parse_hex_id(s: &str) -> Result<u16, String> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let bad = || format!("{s:?} is not a 16-bit hex id (e.g. \"0x0403\")");
    if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u16::from_str_radix(h, 16).map_err(|_| bad())
}

fn hex_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let s = String::deserialize(d)?;
    parse_hex_id(&s).map_err(serde::de::Error::custom)
}

/// Where a serial link is.
#[derive(Debug, Clone)]
pub enum SerialTarget<'a> {
    Path(&'a Template),
    Usb(&'a UsbMatch),
}

impl SerialLink {
    pub fn target(&self) -> SerialTarget<'_> {
        match (&self.path, &self.usb) {
            (Some(p), _) => SerialTarget::Path(p),
            (None, Some(u)) => SerialTarget::Usb(u),
            (None, None) => unreachable!("validated at load"),
        }
    }
}

impl Link {
    pub(crate) fn validate(
        &self,
        src: &Source,
        span: Range<usize>,
        name: &str,
    ) -> Result<(), LoadError> {
        match self {
            Link::Serial(s) => {
                if s.path.is_some() == s.usb.is_some() {
                    return Err(src.err(
                        span,
                        format!("links.{name}: give exactly one of `path` or `usb`"),
                    ));
                }
                Ok(())
            }
            Link::Cloud(_) | Link::Memory(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_parse_with_or_without_prefix() {
        assert_eq!(parse_hex_id("0x0403"), Ok(0x0403));
        assert_eq!(parse_hex_id("0XFFFF"), Ok(0xffff));
        assert_eq!(parse_hex_id("6001"), Ok(0x6001));
        for bad in ["0x10000", "0xzz", "", "0x", "-1", "+403", "0x+403"] {
            assert!(parse_hex_id(bad).is_err(), "{bad}");
        }
    }
}
