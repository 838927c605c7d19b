//! The vocabulary of the mock cloud's flow log, shared by the producers (the MQTT broker, the HTTPS
//! services), the scenario files (`wait_flow = { kind = "publish", … }`), the board profile's
//! declared flows and the checks that judge the log.
//!
//! Each word is parsed once, where it enters (a profile, a scenario, a flow-log line), so a typo is a
//! load error rather than a comparison that silently never matches. The serialised forms are the
//! strings the flow log and the reports have always used.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A word that is not in one of the vocabularies; names the known words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {got:?} (known: {known})")]
pub struct UnknownWord {
    /// Which vocabulary: `flow kind`, `protocol`, `server certificate`.
    pub what: &'static str,
    pub got: String,
    /// The known words, comma-separated.
    pub known: String,
}

/// Defines a closed vocabulary: the enum, `ALL`, `as_str`, `Display` and `FromStr`. The serde form is
/// given by the caller's `rename_all`, and a unit test checks it agrees with `as_str`.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $word:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every word, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word as written in files and logs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }

            /// The known words, comma-separated (for error messages).
            pub fn known() -> String {
                Self::ALL.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|w| w.as_str() == s)
                    .ok_or_else(|| UnknownWord {
                        what: $what,
                        got: s.to_string(),
                        known: Self::known(),
                    })
            }
        }
    };
}

vocabulary! {
    /// What happened in one recorded exchange.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    FlowKind, "flow kind" {
        /// An MQTT session was set up (CONNACK accepted).
        Connect => "connect",
        /// A connection or MQTT CONNECT was refused (limit, outage, bad credentials, …).
        ConnectRefused => "connect-refused",
        /// An MQTT subscription (granted or refused as invalid; `denied` when the ACL forbids it).
        Subscribe => "subscribe",
        Unsubscribe => "unsubscribe",
        /// An MQTT publish the ACL allowed (including a will message).
        Publish => "publish",
        /// A publish or subscription the ACL forbade.
        Denied => "denied",
        /// An MQTT session ended.
        Disconnect => "disconnect",
        /// The TLS handshake failed (the device refused our certificate, or stalled).
        TlsFailed => "tls-failed",
        /// An HTTP request.
        Request => "request",
        /// The mock backend told a third party of a user's erasure.
        ErasureNotice => "erasure-notice",
    }
}

vocabulary! {
    /// The application protocol of a flow, or of a declared flow.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    Protocol, "protocol" {
        #[default]
        Mqtt => "mqtt",
        Http => "http",
    }
}

vocabulary! {
    /// Which server certificate the mock cloud presented on a TLS link.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    ServerCert, "server certificate" {
        /// Issued by the CA the device was provisioned to trust.
        Trusted => "trusted",
        /// From a CA the device must not trust: the man-in-the-middle fault.
        Untrusted => "untrusted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_word<T: Serialize>(w: T) -> String {
        serde_json::to_value(w)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    #[test]
    fn serde_form_is_as_str_and_round_trips() {
        for k in FlowKind::ALL {
            assert_eq!(serde_word(k), k.as_str());
            assert_eq!(k.as_str().parse::<FlowKind>(), Ok(*k));
            assert_eq!(k.to_string(), k.as_str());
        }
        for p in Protocol::ALL {
            assert_eq!(serde_word(p), p.as_str());
            assert_eq!(p.as_str().parse::<Protocol>(), Ok(*p));
        }
        for c in ServerCert::ALL {
            assert_eq!(serde_word(c), c.as_str());
            assert_eq!(c.as_str().parse::<ServerCert>(), Ok(*c));
        }
    }

    #[test]
    fn the_log_keeps_its_json_form() {
        assert_eq!(serde_word(FlowKind::ConnectRefused), "connect-refused");
        assert_eq!(serde_word(FlowKind::TlsFailed), "tls-failed");
        assert_eq!(serde_word(FlowKind::ErasureNotice), "erasure-notice");
        assert_eq!(serde_word(Protocol::Http), "http");
        assert_eq!(serde_word(ServerCert::Untrusted), "untrusted");
    }

    #[test]
    fn unknown_words_list_the_known_ones() {
        let e = "pubish".parse::<FlowKind>().unwrap_err().to_string();
        assert!(e.contains("unknown flow kind \"pubish\""), "{e}");
        assert!(e.contains("publish") && e.contains("tls-failed"), "{e}");
        let e = "coap".parse::<Protocol>().unwrap_err().to_string();
        assert_eq!(e, "unknown protocol \"coap\" (known: mqtt, http)");
        assert!("Trusted".parse::<ServerCert>().is_err());
    }
}
