//! What a broker serves and who may use it.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// Listeners and logins. `Default` gives a plaintext and a TLS listener on ephemeral loopback ports,
/// no users and no anonymous access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerConfig {
    pub bind: IpAddr,
    /// `Some(0)` = an ephemeral port; `None` = no plaintext listener.
    pub plain_port: Option<u16>,
    /// `Some(0)` = an ephemeral port; `None` = no TLS listener.
    pub tls_port: Option<u16>,
    pub users: Vec<User>,
    /// Client-certificate CNs that may log in without a password.
    pub cert_identities: Vec<CertIdentity>,
    /// Clients with neither credentials nor a known certificate may connect (with full access).
    pub allow_anonymous: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            plain_port: Some(0),
            tls_port: Some(0),
            users: Vec::new(),
            cert_identities: Vec::new(),
            allow_anonymous: false,
        }
    }
}

/// A username/password login.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub password: String,
    pub acl: Acl,
}

// Hand-written so the password never reaches a log through `{:?}`.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("acl", &self.acl)
            .finish()
    }
}

/// A client-certificate login: the certificate's subject CN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertIdentity {
    pub cn: String,
    pub acl: Acl,
}

/// Topic filters (`+`, `#`) an identity may publish to and subscribe to. `{identity}` / `%u` are replaced
/// by the authenticated identity and `{client_id}` / `%c` by the MQTT client id, so one ACL can serve a
/// fleet (`devices/{identity}/#`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

impl Acl {
    /// Everything allowed.
    pub fn allow_all() -> Acl {
        Acl {
            publish: vec!["#".into()],
            subscribe: vec!["#".into()],
        }
    }
}
