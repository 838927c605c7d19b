//! What the console and the update agent say to each other over their [`crate::agent_link`]
//! channel: requests one way, events the other, and a snapshot of what the agent must know.

use super::state::{SlotInfo, UpdateState};
use crate::agent_link::{End, Link};

/// The console's end of the update agent's channel.
pub type UpdateLink = Link<Request, Event, Snapshot>;
/// The update agent's end.
pub type AgentEnd = End<Request, Event, Snapshot>;
/// What woke the update agent.
pub type Wake = crate::agent_link::Wake<Request>;

/// What the console asks of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `update check`: check now and answer with one line.
    Check { id: u64 },
    /// `update install`: install what the last check found, or say there is nothing.
    Install { id: u64 },
    /// The console restarted: the device booted, so check once.
    Booted,
}

/// What the agent tells the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The one-line answer to request `id`.
    Reply { id: u64, line: String },
    /// Text printed on the console as it arrives (the restart warning).
    Print(String),
    /// A device notice to keep in flash.
    Notice(String),
    /// `info` was written to the standby slot: switch to it, keep `notice`, restart.
    Installed {
        info: SlotInfo,
        notice: Option<String>,
    },
}

/// What the agent knows about the device: its update state and whether a user is logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub update: UpdateState,
    pub session: bool,
}

/// A connected pair of ends, the agent seeing `initial` until the console publishes.
pub fn channel(initial: Snapshot) -> std::io::Result<(UpdateLink, AgentEnd)> {
    crate::agent_link::channel(initial)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(session: bool) -> Snapshot {
        Snapshot {
            update: UpdateState::default(),
            session,
        }
    }

    #[test]
    fn update_events_and_requests_cross_the_channel() {
        let (link, mut agent) = channel(snapshot(false)).unwrap();
        agent.push(Event::Print("hello".into()));
        agent.push(Event::Notice("n".into()));
        assert_eq!(
            link.take_events(),
            vec![Event::Print("hello".into()), Event::Notice("n".into())]
        );
        assert!(link.request(Request::Check { id: 1 }));
        assert_eq!(agent.try_recv(), Some(Request::Check { id: 1 }));
        link.publish(snapshot(true));
        assert!(agent.snapshot().session);
    }
}
