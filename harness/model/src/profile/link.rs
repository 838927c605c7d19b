//! Link declarations: how the harness reaches the device.

use serde::Deserialize;
use std::ops::Range;

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
}

#[derive(Debug, Clone)]
pub enum Link {
    Serial(SerialLink),
    /// The device talks to hilt's mock cloud (MQTT and HTTPS): `hilt run` starts one for the board.
    Cloud(CloudLink),
}

/// A mock-cloud link. Its endpoints and the unit's credentials become `{cloud.*}` variables.
#[derive(Debug, Clone, Default)]
pub struct CloudLink {}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawLink::deserialize(d)?;
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
            other => Err(serde::de::Error::custom(format!(
                "unknown link kind {other:?} (known: serial, cloud)"
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
            Link::Cloud(_) => Ok(()),
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
