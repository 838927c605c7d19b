//! The records the harness reads back from [`super::CloudState`].

use serde::Serialize;
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("no such user: {0}")]
    UnknownUser(String),
    #[error("user {0} has been erased")]
    Erased(String),
    #[error("no such third-party recipient: {0}")]
    UnknownRecipient(String),
    #[error("no randomness for a token: {0}")]
    Random(String),
    #[error("not a servable update path: {0:?} (must be /update/… with plain, non-empty segments)")]
    BadPath(String),
    /// A device spoke for a user it is not paired with (or whose account is erased).
    #[error("user {user} is not linked to device {device}")]
    NotLinked { device: String, user: String },
}

/// A companion-app account, as the harness sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub created: String,
    /// When the account was erased (RFC 3339), if it was.
    pub erased: Option<String>,
    /// Devices (serial numbers) the user is linked to.
    pub devices: Vec<String>,
}

/// One consent decision; a purpose's history is the list of these, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentEvent {
    pub granted: bool,
    pub time: String,
}

/// A privacy notice: delivered to a user's inbox, or (with the same shape) as a device posted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub id: u64,
    pub device: String,
    pub text: String,
    pub time: String,
}

/// A consent decision a device reported as made on it (`PUT /device/consents/{purpose}`), kept per
/// device so the harness can compare what the device said with what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceConsent {
    pub user: String,
    pub purpose: String,
    pub granted: bool,
    pub time: String,
}

/// A device's report that it was erased (factory reset), with the users it named as they were named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceErasure {
    pub users: Vec<String>,
    pub time: String,
}

/// What the state did on a device's erasure report: the users actually unlinked (those it was linked
/// to), and for each of them the recipients the mock backend notified (none unless propagation is on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErasureReport {
    pub unlinked: Vec<String>,
    pub notified: Vec<(String, Vec<String>)>,
}

/// What a third-party recipient was sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Received {
    /// The user the data is about (the JSON body's `user` field), if it named one.
    pub user: Option<String>,
    pub body: Value,
    pub payload_sha256: String,
    pub time: String,
}

/// A new account's id and bearer token. The token is a secret: `Debug` does not show it.
#[derive(Clone)]
pub struct NewAccount {
    pub id: String,
    pub token: String,
}

impl fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccount")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .finish()
    }
}
