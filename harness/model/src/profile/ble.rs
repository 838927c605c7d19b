//! BLE links: how to find the device in a scan, and which radio to scan with.
//!
//! ```toml
//! [links.ble]
//! kind = "ble"
//! name = "VRB-1"                 # and/or address = "C0:FF:EE:00:00:01", service = "0x180f"
//! radio = "{state}/ble.sock"     # a simulated radio (a Unix socket); the machine's adapter when absent
//! scan_ms = 5000
//! ```
//!
//! At least one of `name`, `address` or `service` must be given: a scan for "any device" in a lab
//! full of radios could pick the wrong one.

use crate::template::Template;

/// How long a scan listens by default: most devices advertise every 100 ms to 1 s.
pub const DEFAULT_SCAN_MS: u64 = 5_000;

#[derive(Debug, Clone)]
pub struct BleLink {
    /// A simulated radio's socket; `None` = the machine's Bluetooth adapter.
    pub radio: Option<Template>,
    pub name: Option<Template>,
    pub address: Option<Template>,
    /// A service UUID the device advertises, as written (checked to be a UUID at load).
    pub service: Option<String>,
    pub scan_ms: u64,
}

#[derive(Debug, Default)]
pub(super) struct RawBle {
    pub radio: Option<Template>,
    pub name: Option<Template>,
    pub address: Option<Template>,
    pub service: Option<String>,
    pub scan_ms: Option<u64>,
}

impl RawBle {
    pub(super) fn into_link(self) -> Result<BleLink, String> {
        if self.name.is_none() && self.address.is_none() && self.service.is_none() {
            return Err("a ble link needs at least one of `name`, `address` or `service` to find the device by".into());
        }
        if let Some(s) = &self.service
            && !is_uuid(s)
        {
            return Err(format!(
                "service {s:?} is not a BLE UUID (a 16-bit id such as \"0x180f\" or a full UUID)"
            ));
        }
        let scan_ms = self.scan_ms.unwrap_or(DEFAULT_SCAN_MS);
        if scan_ms == 0 {
            return Err("scan_ms must be more than 0".into());
        }
        Ok(BleLink {
            radio: self.radio,
            name: self.name,
            address: self.address,
            service: self.service,
            scan_ms,
        })
    }
}

/// `0x180f`, `180f` or `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hilt-link's `BleUuid` parses it).
pub(super) fn is_uuid(s: &str) -> bool {
    let hex = |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_hexdigit());
    let short = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if short.len() == 4 && hex(short) {
        return true;
    }
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]) && groups.iter().all(|g| hex(g))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ble_link_needs_something_to_find_the_device_by_and_a_real_uuid() {
        let err = RawBle::default().into_link().unwrap_err();
        assert!(err.contains("at least one of"), "{err}");
        let bad = RawBle {
            service: Some("0x18f".into()),
            ..RawBle::default()
        };
        assert!(bad.into_link().unwrap_err().contains("is not a BLE UUID"));
        for ok in ["0x180f", "180F", "6e400001-b5a3-f393-e0a9-e50e24dcca9e"] {
            let l = RawBle {
                service: Some(ok.into()),
                ..RawBle::default()
            }
            .into_link()
            .unwrap();
            assert_eq!(l.scan_ms, DEFAULT_SCAN_MS);
        }
    }
}
