//! The channel between the console (a pure state machine on the main thread) and the update agent
//! (its own thread): requests one way, events the other, a snapshot of what the agent must know about
//! the device, and a descriptor that wakes the console loop as soon as an event is queued.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};

use super::state::{SlotInfo, UpdateState};

/// Requests the agent has not taken yet; beyond this the console is told the agent is busy.
const REQUEST_CAPACITY: usize = 8;

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

/// What woke the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    Request(Request),
    /// The console published a changed snapshot.
    Changed,
    /// The console is gone.
    Closed,
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

#[derive(Debug)]
struct Shared {
    events: Mutex<VecDeque<Event>>,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

impl Shared {
    fn events(&self) -> MutexGuard<'_, VecDeque<Event>> {
        // A panic elsewhere while holding the lock leaves plain data behind: still usable.
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The console's end. Every method only touches memory, except that the loop reads [`Self::wake_fd`].
#[derive(Debug, Clone)]
pub struct UpdateLink {
    requests: mpsc::Sender<Request>,
    snapshot: Arc<watch::Sender<Snapshot>>,
    shared: Arc<Shared>,
}

/// The agent's end.
#[derive(Debug)]
pub struct AgentEnd {
    requests: mpsc::Receiver<Request>,
    snapshot: watch::Receiver<Snapshot>,
    shared: Arc<Shared>,
}

/// A connected pair of ends, the agent seeing `initial` until the console publishes.
pub fn channel(initial: Snapshot) -> std::io::Result<(UpdateLink, AgentEnd)> {
    let (wake_tx, wake_rx) = UnixStream::pair()?;
    wake_tx.set_nonblocking(true)?;
    wake_rx.set_nonblocking(true)?;
    let shared = Arc::new(Shared {
        events: Mutex::new(VecDeque::new()),
        wake_tx,
        wake_rx,
    });
    let (req_tx, req_rx) = mpsc::channel(REQUEST_CAPACITY);
    let (snap_tx, snap_rx) = watch::channel(initial);
    Ok((
        UpdateLink {
            requests: req_tx,
            snapshot: Arc::new(snap_tx),
            shared: shared.clone(),
        },
        AgentEnd {
            requests: req_rx,
            snapshot: snap_rx,
            shared,
        },
    ))
}

impl UpdateLink {
    /// Queues a request; false when the agent is gone or has too many waiting.
    pub fn request(&self, request: Request) -> bool {
        self.requests.try_send(request).is_ok()
    }

    /// Events queued by the agent, oldest first.
    pub fn take_events(&self) -> Vec<Event> {
        self.shared.events().drain(..).collect()
    }

    /// Tells the agent the device's current state (only a change wakes it).
    pub fn publish(&self, snapshot: Snapshot) {
        self.snapshot.send_if_modified(|s| {
            let changed = *s != snapshot;
            *s = snapshot;
            changed
        });
    }

    /// Readable when the agent has queued events.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.shared.wake_rx.as_fd()
    }

    /// Empties the wake-up descriptor (the events themselves stay queued).
    pub fn drain_wake(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.shared.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
    }
}

impl AgentEnd {
    /// The next request or snapshot change.
    pub async fn next(&mut self) -> Wake {
        tokio::select! {
            request = self.requests.recv() => request.map_or(Wake::Closed, Wake::Request),
            changed = self.snapshot.changed() => match changed {
                Ok(()) => Wake::Changed,
                Err(_) => Wake::Closed,
            },
        }
    }

    /// A request if one is waiting (for tests that play the agent).
    pub fn try_recv(&mut self) -> Option<Request> {
        self.requests.try_recv().ok()
    }

    /// Queues an event and wakes the console loop.
    pub fn push(&self, event: Event) {
        self.shared.events().push_back(event);
        // A full socket already holds a wake-up; nothing more is needed.
        let _ = (&self.shared.wake_tx).write(&[1]);
    }

    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// Waits for the console to publish a change; an error once the console is gone.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.snapshot.changed().await
    }
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
    fn events_wake_the_console_and_requests_reach_the_agent() {
        let (link, mut agent) = channel(snapshot(false)).unwrap();
        let mut buf = [0u8; 1];
        assert!(
            (&link.shared.wake_rx).read(&mut buf).is_err(),
            "no wake-up yet"
        );
        agent.push(Event::Print("hello".into()));
        agent.push(Event::Notice("n".into()));
        assert_eq!((&link.shared.wake_rx).read(&mut buf).unwrap(), 1);
        link.drain_wake();
        assert_eq!(
            link.take_events(),
            vec![Event::Print("hello".into()), Event::Notice("n".into())]
        );
        assert!(link.take_events().is_empty());
        assert!(link.request(Request::Check { id: 1 }));
        assert_eq!(agent.try_recv(), Some(Request::Check { id: 1 }));
        assert_eq!(agent.try_recv(), None);
    }

    #[test]
    fn a_flood_of_requests_is_refused_not_queued_without_bound() {
        let (link, _agent) = channel(snapshot(false)).unwrap();
        let sent = (0..100)
            .filter(|&id| link.request(Request::Check { id }))
            .count();
        assert_eq!(sent, REQUEST_CAPACITY);
    }

    #[test]
    fn only_a_changed_snapshot_is_seen_as_a_change() {
        let (link, agent) = channel(snapshot(false)).unwrap();
        let mut rx = agent.snapshot.clone();
        rx.mark_unchanged();
        link.publish(snapshot(false));
        assert!(!rx.has_changed().unwrap());
        link.publish(snapshot(true));
        assert!(rx.has_changed().unwrap());
        assert!(agent.snapshot().session);
    }
}
