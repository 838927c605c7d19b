//! Link declarations: how the harness reaches the device.

use serde::Deserialize;
use std::ops::Range;

use super::ble::{BleLink, RawBle};
use super::memory::{MemoryLink, RawMemory, RegionDecl};
use super::netserial::{Flow, LineSettings, NetSerial};
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
    // Network serial (see [`super::netserial`]).
    net: Option<Template>,
    line: Option<String>,
    flow: Option<String>,
    // USB (serial and usb links).
    bus: Option<Template>,
    reattach_ms: Option<u64>,
    // BLE links (see [`super::ble`]).
    radio: Option<Template>,
    name: Option<Template>,
    service: Option<String>,
    scan_ms: Option<u64>,
    // Power links.
    via: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Link {
    Serial(SerialLink),
    /// The device talks to hilt's mock cloud (MQTT and HTTPS): `hilt run` starts one for the board.
    Cloud(CloudLink),
    /// The device's storage or memory, read into snapshots.
    Memory(MemoryLink),
    /// The device's USB port: its descriptors as the host enumerates them.
    Usb(UsbLink),
    /// The device's BLE radio: advertisement and GATT.
    Ble(BleLink),
    /// The device's power supply, switched by the lab.
    Power(PowerLink),
}

impl Link {
    /// The `kind` it was declared with.
    pub fn kind(&self) -> &'static str {
        match self {
            Link::Serial(_) => "serial",
            Link::Cloud(_) => "cloud",
            Link::Memory(_) => "memory",
            Link::Usb(_) => "usb",
            Link::Ble(_) => "ble",
            Link::Power(_) => "power",
        }
    }
}

/// A power link: what switches the device's supply off and on.
///
/// ```toml
/// [links.power]
/// kind = "power"
/// via = "labgrid"   # the power port of the profile's [labgrid] place
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerLink {
    pub via: PowerVia,
}

/// What switches a power link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerVia {
    /// `labgrid-client power cycle` on the profile's place (its first power resource).
    Labgrid,
}

impl PowerVia {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "labgrid" => Ok(PowerVia::Labgrid),
            other => Err(format!(
                "unknown power link `via` {other:?} (known: labgrid)"
            )),
        }
    }
}

/// A usb link: which device on which bus.
///
/// ```toml
/// [links.usb]
/// kind = "usb"
/// usb = { vid = "0x303a", pid = "0x1001", serial = "{unit.serial}" }
/// bus = "{state}/usb.json"   # a simulated bus published as a file; the machine's bus when absent
/// ```
#[derive(Debug, Clone)]
pub struct UsbLink {
    pub usb: UsbMatch,
    pub bus: Option<Template>,
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

    fn has_ble_fields(&self) -> bool {
        self.radio.is_some()
            || self.name.is_some()
            || self.service.is_some()
            || self.scan_ms.is_some()
    }

    /// A power link takes `via` and nothing else.
    fn into_power(self) -> Result<PowerLink, String> {
        let others = self.path.is_some()
            || self.usb.is_some()
            || self.has_memory_fields()
            || self.net.is_some()
            || self.line.is_some()
            || self.flow.is_some()
            || self.bus.is_some()
            || self.reattach_ms.is_some()
            || self.address.is_some();
        if others {
            return Err("a power link takes only `via`".into());
        }
        let via = self
            .via
            .as_deref()
            .ok_or("a power link needs `via` (known: labgrid)")?;
        Ok(PowerLink {
            via: PowerVia::parse(via)?,
        })
    }

    fn into_ble(mut self) -> Result<BleLink, String> {
        let address = self.address.take();
        if self.has_memory_fields() {
            return Err("a ble link takes no memory fields but `address`".into());
        }
        if self.usb.is_some()
            || self.path.is_some()
            || self.bus.is_some()
            || self.reattach_ms.is_some()
        {
            return Err("a ble link takes no path, usb, bus or reattach_ms".into());
        }
        RawBle {
            radio: self.radio,
            name: self.name,
            address,
            service: self.service,
            scan_ms: self.scan_ms,
        }
        .into_link()
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
        if raw.kind != "ble" && raw.has_ble_fields() {
            return Err(serde::de::Error::custom(format!(
                "a {} link takes no ble fields (radio, name, service, scan_ms)",
                raw.kind
            )));
        }
        if raw.kind == "ble" {
            return raw
                .into_ble()
                .map(Link::Ble)
                .map_err(serde::de::Error::custom);
        }
        if raw.kind == "power" {
            return raw
                .into_power()
                .map(Link::Power)
                .map_err(serde::de::Error::custom);
        }
        if raw.via.is_some() {
            return Err(serde::de::Error::custom(format!(
                "a {} link takes no `via` (power links only)",
                raw.kind
            )));
        }
        if !matches!(raw.kind.as_str(), "serial" | "usb")
            && (raw.bus.is_some() || raw.reattach_ms.is_some())
        {
            return Err(serde::de::Error::custom(format!(
                "a {} link takes no bus or reattach_ms (USB only)",
                raw.kind
            )));
        }
        if raw.kind != "serial" && (raw.net.is_some() || raw.line.is_some() || raw.flow.is_some()) {
            return Err(serde::de::Error::custom(format!(
                "a {} link takes no net, line or flow (serial links only)",
                raw.kind
            )));
        }
        if raw.kind != "memory" && raw.has_memory_fields() {
            return Err(serde::de::Error::custom(format!(
                "a {} link takes no memory fields (source, address, probe, chip, command, output, regions, keep_bytes, max_bytes, timeout_ms)",
                raw.kind
            )));
        }
        match raw.kind.as_str() {
            "serial" => {
                if raw.usb.is_none() && (raw.bus.is_some() || raw.reattach_ms.is_some()) {
                    return Err(serde::de::Error::custom(
                        "bus and reattach_ms go with `usb` (a console found by USB identity)",
                    ));
                }
                let net = raw
                    .net
                    .as_ref()
                    .map(NetSerial::parse)
                    .transpose()
                    .map_err(serde::de::Error::custom)?;
                let line = raw
                    .line
                    .as_deref()
                    .map(LineSettings::parse)
                    .transpose()
                    .map_err(serde::de::Error::custom)?
                    .unwrap_or_default();
                let flow = raw
                    .flow
                    .as_deref()
                    .map(Flow::parse)
                    .transpose()
                    .map_err(serde::de::Error::custom)?
                    .unwrap_or_default();
                Ok(Link::Serial(SerialLink {
                    path: raw.path,
                    usb: raw.usb,
                    net,
                    line,
                    flow,
                    bus: raw.bus,
                    reattach_ms: raw.reattach_ms.unwrap_or(DEFAULT_REATTACH_MS),
                    baud: raw.baud,
                    char_delay_us: raw.char_delay_us,
                }))
            }
            "usb" => match (raw.usb, raw.path, raw.reattach_ms) {
                (Some(usb), None, None) => Ok(Link::Usb(UsbLink { usb, bus: raw.bus })),
                (None, _, _) => Err(serde::de::Error::custom(
                    "a usb link needs `usb = { vid, pid, serial }`",
                )),
                _ => Err(serde::de::Error::custom(
                    "a usb link takes no path or reattach_ms",
                )),
            },
            "cloud" if raw.path.is_none() && raw.usb.is_none() => Ok(Link::Cloud(CloudLink {})),
            "cloud" => Err(serde::de::Error::custom(
                "a cloud link takes no path or usb",
            )),
            "memory" => raw
                .into_memory()
                .map(Link::Memory)
                .map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "unknown link kind {other:?} (known: serial, cloud, memory, usb, ble, power)"
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SerialLink {
    /// An explicit device path (may use `{launch.NAME}`), or …
    pub path: Option<Template>,
    /// … a USB match resolved at run time (survives re-enumeration, unlike /dev/ttyUSBn), or …
    pub usb: Option<UsbMatch>,
    /// … a port exported over the network (ser2net, labgrid's `NetworkSerialPort`).
    pub net: Option<NetSerial>,
    /// Data bits, parity and stop bits (set by hilt over RFC 2217; a tty's are 8N1).
    pub line: LineSettings,
    pub flow: Flow,
    /// Where the USB bus is listed: a simulated bus published as a file, or the machine's (None).
    pub bus: Option<Template>,
    /// How long a console found by USB identity that vanishes (a reboot re-enumerates it) is waited
    /// for to come back, as the same device, before the case gives up on it.
    pub reattach_ms: u64,
    pub baud: u32,
    /// Pause between written bytes, for UARTs without flow control that drop input.
    pub char_delay_us: u64,
}

/// A board's USB console is back within a few seconds of a reset.
pub const DEFAULT_REATTACH_MS: u64 = 5_000;

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
    /// Compared exactly; may use variables (`{unit.serial}`).
    pub serial: Option<Template>,
    /// For a composite device: which interface (e.g. a CDC console's communication interface).
    pub interface: Option<u8>,
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
    Net(&'a NetSerial),
}

impl SerialLink {
    pub fn target(&self) -> SerialTarget<'_> {
        match (&self.path, &self.usb, &self.net) {
            (Some(p), _, _) => SerialTarget::Path(p),
            (None, Some(u), _) => SerialTarget::Usb(u),
            (None, None, Some(n)) => SerialTarget::Net(n),
            (None, None, None) => unreachable!("validated at load"),
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
                let given = [s.path.is_some(), s.usb.is_some(), s.net.is_some()];
                if given.iter().filter(|g| **g).count() != 1 {
                    return Err(src.err(
                        span,
                        format!("links.{name}: give exactly one of `path`, `usb` or `net`"),
                    ));
                }
                Ok(())
            }
            Link::Cloud(_) | Link::Memory(_) | Link::Usb(_) | Link::Ble(_) | Link::Power(_) => {
                Ok(())
            }
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
