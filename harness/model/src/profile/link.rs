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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsbMatch {
    /// Vendor id, hex (`"0x0403"`).
    pub vid: String,
    pub pid: String,
    pub serial: Option<String>,
}

impl UsbMatch {
    pub fn ids(&self) -> Result<(u16, u16), String> {
        let parse = |s: &str| {
            let h = s
                .strip_prefix("0x")
                .or_else(|| s.strip_prefix("0X"))
                .unwrap_or(s);
            u16::from_str_radix(h, 16).map_err(|_| format!("{s:?} is not a 16-bit hex id"))
        };
        Ok((parse(&self.vid)?, parse(&self.pid)?))
    }
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
                if let Some(u) = &s.usb {
                    u.ids()
                        .map_err(|e| src.err(span.clone(), format!("links.{name}.usb: {e}")))?;
                }
                Ok(())
            }
            Link::Cloud(_) => Ok(()),
        }
    }
}
