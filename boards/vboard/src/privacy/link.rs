//! What the console and the privacy agent say to each other over their [`crate::agent_link`]
//! channel: requests one way, events the other, and a snapshot of what the agent must know.

use super::state::{Decision, PrivacyState, Purpose};
use super::sync::CloudDecision;
use crate::agent_link::{End, Link, Outbox};

/// The console's end of the privacy agent's channel.
pub type PrivacyLink = Link<Request, Event, Snapshot>;
/// The privacy agent's end.
pub type PrivacyEnd = End<Request, Event, Snapshot>;
/// What the privacy agent's analytics task holds.
pub type PrivacyOutbox = Outbox<Event, Snapshot>;

/// What the console asks of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `pair`: link `user` to the device in the cloud, then answer.
    Pair { id: u64, user: String },
    /// A consent decision made on the device, reported to the cloud (no answer).
    ReportConsent {
        user: String,
        purpose: Purpose,
        granted: bool,
    },
    /// A privacy notice for `users` (each linked to the device), delivered by the cloud (no answer).
    Notify { text: String, users: Vec<String> },
    /// `erase`: tell each (recipient, user) of `third_parties`, then the cloud about `users`.
    Erase {
        id: u64,
        third_parties: Vec<(String, String)>,
        users: Vec<String>,
    },
}

/// What the agent tells the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The answer to `Pair { id, user }`: the cloud linked the user, or why not.
    Paired {
        id: u64,
        user: String,
        result: Result<(), String>,
    },
    /// The answer to `Erase { id }`: the recipients that could not be told.
    Erased { id: u64, not_told: Vec<String> },
    /// `user`'s data is being sent to `recipient` (recorded so an erase can tell it).
    Sent { user: String, recipient: String },
    /// The latest decision of `user` on `purpose` in the cloud's history, which differed from the
    /// device's when the agent asked: the console decides whether to adopt it.
    CloudConsent {
        user: String,
        purpose: Purpose,
        latest: CloudDecision,
    },
}

/// What the agent knows about the device: the owner (none while an erase is under way) and the
/// owner's analytics decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub owner: Option<String>,
    pub analytics: Decision,
}

impl Snapshot {
    /// What `state` tells the agent.
    pub fn of(state: &PrivacyState) -> Self {
        Self {
            owner: state.owner().map(str::to_string),
            analytics: state.owner_decision(Purpose::Analytics).unwrap_or_default(),
        }
    }
}

/// A connected pair of ends, the agent seeing `initial` until the console publishes.
pub fn channel(initial: Snapshot) -> std::io::Result<(PrivacyLink, PrivacyEnd)> {
    crate::agent_link::channel(initial)
}
