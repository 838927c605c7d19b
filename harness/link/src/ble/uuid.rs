//! BLE UUIDs, parsed once: 16-bit SIG-assigned ids (`"180a"`, `"0x180A"`) are expanded onto the
//! Bluetooth base UUID, full UUIDs are taken as written; shown short when they are SIG ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `0000xxxx-0000-1000-8000-00805f9b34fb` with `xxxx` the 16-bit id.
const BASE_TAIL: u128 = 0x0000_0000_0000_1000_8000_0080_5f9b_34fb;
const SHORT_MASK: u128 = 0xffff_ffff_0000_0000_0000_0000_0000_0000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BleUuid(pub u128);

impl BleUuid {
    pub const fn from_u16(id: u16) -> Self {
        BleUuid(((id as u128) << 96) | BASE_TAIL)
    }

    /// The 16-bit id, when this is a SIG-assigned UUID on the base.
    pub fn short(&self) -> Option<u16> {
        (self.0 & !SHORT_MASK == BASE_TAIL && self.0 >> 112 == 0).then_some((self.0 >> 96) as u16)
    }

    /// The full form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub fn full(&self) -> String {
        let h = format!("{:032x}", self.0);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl fmt::Display for BleUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.short() {
            Some(s) => write!(f, "0x{s:04x}"),
            None => f.write_str(&self.full()),
        }
    }
}

impl FromStr for BleUuid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not a BLE UUID (a 16-bit id such as \"0x180a\" or a full UUID such as \"6e400001-b5a3-f393-e0a9-e50e24dcca9e\")"
            )
        };
        let t = s.trim();
        let h = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        if h.len() == 4 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return u16::from_str_radix(h, 16)
                .map(BleUuid::from_u16)
                .map_err(|_| bad());
        }
        let groups: Vec<&str> = t.split('-').collect();
        let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if lens != [8, 4, 4, 4, 12]
            || !groups
                .iter()
                .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(bad());
        }
        u128::from_str_radix(&groups.concat(), 16)
            .map(BleUuid)
            .map_err(|_| bad())
    }
}

impl Serialize for BleUuid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for BleUuid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_full_forms_parse_to_one_value_and_show_short() {
        let a: BleUuid = "0x180A".parse().unwrap();
        let b: BleUuid = "180a".parse().unwrap();
        let c: BleUuid = "0000180a-0000-1000-8000-00805f9b34fb".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_string(), "0x180a");
        assert_eq!(a.short(), Some(0x180a));
        let nus: BleUuid = "6E400001-B5A3-F393-E0A9-E50E24DCCA9E".parse().unwrap();
        assert_eq!(nus.short(), None);
        assert_eq!(nus.to_string(), "6e400001-b5a3-f393-e0a9-e50e24dcca9e");
        for bad in [
            "",
            "18a",
            "0x18a0a",
            "zzzz",
            "6e400001-b5a3-f393-e0a9",
            "6e400001b5a3f393e0a9e50e24dcca9e",
        ] {
            let err = bad.parse::<BleUuid>().unwrap_err();
            assert!(err.contains("is not a BLE UUID"), "{bad}: {err}");
        }
    }
}
