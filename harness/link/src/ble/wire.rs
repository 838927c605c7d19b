//! The radio between hilt and a simulated peripheral (the virtual reference board's BLE): JSON
//! lines over a Unix stream socket, one connection per BLE connection. Every request gets exactly
//! one [`Reply`] in order; notifications of subscribed characteristics arrive between replies as
//! [`Line::Notify`]. Lines are bounded ([`MAX_LINE`]) on both sides.
//!
//! A simulated radio has one device in range: `advertise` returns its advertisement, as a scan
//! would hear it; `connect` is implicit in opening the socket.

use serde::{Deserialize, Serialize};

use super::{Advert, BleUuid, GattService};

/// The longest line either side accepts (a GATT table of a few dozen services fits many times).
pub const MAX_LINE: usize = 256 * 1024;

/// A request from the central.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// The advertisement (and scan response) the device is sending now.
    Advertise,
    /// The GATT table.
    Services,
    Read {
        char: BleUuid,
    },
    Write {
        char: BleUuid,
        /// The value in hex.
        value: String,
        with_response: bool,
    },
    Subscribe {
        char: BleUuid,
    },
}

/// A peripheral's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    Done,
    Advert(Advert),
    Services(Vec<GattService>),
    /// A read value in hex.
    Value(String),
    /// An ATT error, by its name in the Core Specification (kebab-case), e.g.
    /// `insufficient-authentication`, `read-not-permitted`, `attribute-not-found`.
    Att(String),
}

/// One line from the peripheral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Line {
    Reply(Reply),
    Notify { char: BleUuid, value: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_as_json() {
        let req = Request::Read {
            char: BleUuid::from_u16(0x2a25),
        };
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(text, r#"{"op":"read","char":"0x2a25"}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), req);
        let line = Line::Reply(Reply::Att("insufficient-authentication".into()));
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), line);
        let n = Line::Notify {
            char: BleUuid::from_u16(0x2a37),
            value: "0648".into(),
        };
        let text = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), n);
    }
}
