//! The broker's protocol-neutral view of MQTT packets. `v4.rs` and `v5.rs` translate between these and
//! rumqttc's codecs, so session logic is written once for both protocol levels.

use bytes::{Bytes, BytesMut};
use rumqttc::v5::mqttbytes::v5::PublishProperties;

/// Largest packet accepted from a client (and announced to MQTT 5 clients).
pub const MAX_PACKET: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V4,
    V5,
}

impl Version {
    pub fn label(self) -> &'static str {
        match self {
            Version::V4 => "3.1.1",
            Version::V5 => "5",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("packet of {0} bytes exceeds the {MAX_PACKET}-byte limit")]
    TooLarge(usize),
    #[error("malformed packet: {0}")]
    Malformed(String),
}

/// A message travelling through the broker.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// MQTT 5 properties forwarded to MQTT 5 subscribers (topic alias and subscription ids removed).
    pub props: Option<PublishProperties>,
}

pub struct ConnectInfo {
    pub version: Version,
    pub client_id: String,
    pub clean: bool,
    pub keep_alive: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub will: Option<Message>,
    /// MQTT 5: most unacknowledged QoS>0 deliveries the client accepts.
    pub receive_maximum: Option<u16>,
    pub max_packet_size: Option<u32>,
    /// MQTT 5 Session Expiry Interval (seconds); MQTT 3.1.1 maps clean=false to "forever".
    pub session_expiry: u32,
    /// MQTT 5 enhanced authentication, which this broker does not offer.
    pub auth_method: Option<String>,
}

// Hand-written so the password can never reach a log through `{:?}`.
impl std::fmt::Debug for ConnectInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectInfo")
            .field("version", &self.version)
            .field("client_id", &self.client_id)
            .field("clean", &self.clean)
            .field("keep_alive", &self.keep_alive)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("will_topic", &self.will.as_ref().map(|w| &w.topic))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct SubRequest {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0 = send retained on every subscribe, 1 = only if new, 2 = never.
    pub retain_handling: u8,
}

#[derive(Debug)]
pub enum Inbound {
    /// `topic_alias` (MQTT 5) is resolved by the session; `msg.topic` may be empty when it is set.
    Publish {
        msg: Message,
        pkid: u16,
        topic_alias: Option<u16>,
    },
    PubAck(u16),
    PubRec {
        pkid: u16,
        ok: bool,
    },
    PubRel(u16),
    PubComp(u16),
    Subscribe {
        pkid: u16,
        filters: Vec<SubRequest>,
    },
    Unsubscribe {
        pkid: u16,
        filters: Vec<String>,
    },
    PingReq,
    /// `will`: MQTT 5 "disconnect with will message".
    Disconnect {
        will: bool,
    },
    /// A packet a client must not send here (a second CONNECT, a CONNACK, AUTH, …).
    Unexpected(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnCode {
    Accepted,
    UnsupportedVersion,
    BadClientId,
    BadCredentials,
    NotAuthorized,
    BadAuthMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubCode {
    Granted(u8),
    NotAuthorized,
    InvalidFilter,
    SharedNotSupported,
}

/// MQTT 5 DISCONNECT reason codes the broker sends.
pub mod reason {
    pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
    pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    pub const SESSION_TAKEN_OVER: u8 = 0x8E;
    pub const PROTOCOL_ERROR: u8 = 0x82;
    pub const MALFORMED: u8 = 0x81;
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
}

#[derive(Debug)]
pub enum Outbound<'a> {
    /// `assigned_id`: the client id the broker chose for an MQTT 5 client that sent an empty one.
    ConnAck {
        session_present: bool,
        code: ConnCode,
        assigned_id: Option<&'a str>,
    },
    PubAck {
        pkid: u16,
        denied: bool,
    },
    PubRec {
        pkid: u16,
        denied: bool,
    },
    PubRel(u16),
    PubComp(u16),
    SubAck {
        pkid: u16,
        codes: Vec<SubCode>,
    },
    UnsubAck {
        pkid: u16,
        existed: Vec<bool>,
    },
    PingResp,
    /// `qos`: the delivery QoS (the message's, capped by the subscription's).
    Publish {
        msg: &'a Message,
        qos: u8,
        pkid: u16,
        dup: bool,
        retain: bool,
    },
    /// MQTT 5 only; ignored for 3.1.1, which has no server DISCONNECT.
    Disconnect(u8),
}

/// The protocol level of a framed CONNECT at the start of `buf`, without consuming it. `Ok(None)`:
/// more bytes are needed. Only the fixed header and protocol name are read here; rumqttc decodes the rest.
pub fn peek_connect_level(buf: &BytesMut) -> Result<Option<u8>, WireError> {
    // Checked before framing so garbage is refused at once rather than awaited as a "long packet".
    match buf.first() {
        None => return Ok(None),
        Some(0x10) => {}
        Some(_) => {
            return Err(WireError::Malformed(
                "the first packet is not CONNECT".into(),
            ));
        }
    }
    match rumqttc::mqttbytes::check(buf.iter(), MAX_PACKET) {
        Ok(_) => {}
        Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => return Ok(None),
        Err(rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(n)) => {
            return Err(WireError::TooLarge(n));
        }
        Err(e) => return Err(WireError::Malformed(e.to_string())),
    }
    // Skip byte 1 and the remaining-length varint (at most 4 bytes, already validated by `check`).
    let varint = buf
        .iter()
        .skip(1)
        .take(4)
        .position(|b| b & 0x80 == 0)
        .map(|p| p + 1)
        .unwrap_or(4);
    let at = 1 + varint;
    let name_len = match (buf.get(at), buf.get(at + 1)) {
        (Some(h), Some(l)) => u16::from_be_bytes([*h, *l]) as usize,
        _ => return Err(WireError::Malformed("CONNECT too short".into())),
    };
    let level = buf
        .get(at + 2 + name_len)
        .copied()
        .ok_or_else(|| WireError::Malformed("CONNECT too short".into()))?;
    let name = buf.get(at + 2..at + 2 + name_len).unwrap_or_default();
    if name != b"MQTT" && name != b"MQIsdp" {
        return Err(WireError::Malformed("not an MQTT protocol name".into()));
    }
    Ok(Some(level))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_protocol_levels_and_rejects_garbage() {
        let mut b = BytesMut::new();
        let c = rumqttc::mqttbytes::v4::Connect::new("x");
        c.write(&mut b).unwrap();
        assert_eq!(peek_connect_level(&b).unwrap(), Some(4));
        let half = BytesMut::from(&b[..5]);
        assert_eq!(peek_connect_level(&half).unwrap(), None);
        let garbage = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]);
        assert!(peek_connect_level(&garbage).is_err());
        let huge = BytesMut::from(&[0x10u8, 0xff, 0xff, 0xff, 0x7f][..]);
        assert!(matches!(
            peek_connect_level(&huge),
            Err(WireError::TooLarge(_))
        ));
    }
}
