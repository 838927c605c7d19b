//! The channel between the console (a pure state machine on the main thread) and an agent on its own
//! thread (the update agent, the privacy agent): requests one way, events the other, a snapshot of
//! what the agent must know about the device, and a descriptor that wakes the console loop as soon as
//! an event is queued. Also the agent thread itself: a current-thread tokio runtime, so the console's
//! poll loop never waits on the network.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

/// Requests an agent has not taken yet; beyond this the console is told the agent is busy.
pub const REQUEST_CAPACITY: usize = 8;

/// What woke the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake<R> {
    Request(R),
    /// The console published a changed snapshot.
    Changed,
    /// The console is gone.
    Closed,
}

#[derive(Debug)]
struct Shared<E> {
    events: Mutex<VecDeque<E>>,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

impl<E> Shared<E> {
    fn events(&self) -> MutexGuard<'_, VecDeque<E>> {
        // A panic elsewhere while holding the lock leaves plain data behind: still usable.
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, event: E) {
        self.events().push_back(event);
        // A full socket already holds a wake-up; nothing more is needed.
        let _ = (&self.wake_tx).write(&[1]);
    }
}

/// The console's end. Every method only touches memory, except that the loop reads [`Self::wake_fd`].
#[derive(Debug)]
pub struct Link<R, E, S> {
    requests: mpsc::Sender<R>,
    snapshot: Arc<watch::Sender<S>>,
    shared: Arc<Shared<E>>,
}

// Not derived: a derive would needlessly ask R, E and S to be Clone.
impl<R, E, S> Clone for Link<R, E, S> {
    fn clone(&self) -> Self {
        Self {
            requests: self.requests.clone(),
            snapshot: self.snapshot.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// The agent's end.
#[derive(Debug)]
pub struct End<R, E, S> {
    requests: mpsc::Receiver<R>,
    snapshot: watch::Receiver<S>,
    shared: Arc<Shared<E>>,
}

/// The part of the agent's end a second task of the agent can hold: it reads the snapshot and
/// queues events, but takes no requests.
#[derive(Debug)]
pub struct Outbox<E, S> {
    snapshot: watch::Receiver<S>,
    shared: Arc<Shared<E>>,
}

/// The console's end and the agent's end of one channel.
pub type Ends<R, E, S> = (Link<R, E, S>, End<R, E, S>);

/// A connected pair of ends, the agent seeing `initial` until the console publishes.
pub fn channel<R, E, S>(initial: S) -> std::io::Result<Ends<R, E, S>> {
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
        Link {
            requests: req_tx,
            snapshot: Arc::new(snap_tx),
            shared: shared.clone(),
        },
        End {
            requests: req_rx,
            snapshot: snap_rx,
            shared,
        },
    ))
}

impl<R, E, S: PartialEq> Link<R, E, S> {
    /// Queues a request; false when the agent is gone or has too many waiting.
    pub fn request(&self, request: R) -> bool {
        self.requests.try_send(request).is_ok()
    }

    /// Events queued by the agent, oldest first.
    pub fn take_events(&self) -> Vec<E> {
        self.shared.events().drain(..).collect()
    }

    /// Tells the agent the device's current state (only a change wakes it).
    pub fn publish(&self, snapshot: S) {
        self.snapshot.send_if_modified(|s| {
            let changed = *s != snapshot;
            *s = snapshot;
            changed
        });
    }
}

/// A descriptor that wakes the console loop, and how to empty it.
pub trait WakeSource {
    /// Readable when the agent has queued events.
    fn wake_fd(&self) -> BorrowedFd<'_>;
    /// Empties the wake-up descriptor (the events themselves stay queued).
    fn drain_wake(&self);
}

impl<R, E, S> WakeSource for Link<R, E, S> {
    fn wake_fd(&self) -> BorrowedFd<'_> {
        self.shared.wake_rx.as_fd()
    }

    fn drain_wake(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.shared.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
    }
}

impl<R, E, S: Clone> End<R, E, S> {
    /// The next request or snapshot change.
    pub async fn next(&mut self) -> Wake<R> {
        tokio::select! {
            request = self.requests.recv() => request.map_or(Wake::Closed, Wake::Request),
            changed = self.snapshot.changed() => match changed {
                Ok(()) => Wake::Changed,
                Err(_) => Wake::Closed,
            },
        }
    }

    /// The next request; `None` once the console is gone. Snapshot changes do not wake it.
    pub async fn recv(&mut self) -> Option<R> {
        self.requests.recv().await
    }

    /// A request if one is waiting (for tests that play the agent).
    pub fn try_recv(&mut self) -> Option<R> {
        self.requests.try_recv().ok()
    }

    /// Queues an event and wakes the console loop.
    pub fn push(&self, event: E) {
        self.shared.push(event);
    }

    pub fn snapshot(&self) -> S {
        self.snapshot.borrow().clone()
    }

    /// Waits for the console to publish a change; an error once the console is gone.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.snapshot.changed().await
    }

    /// An outbox for another task of the agent, seeing the snapshot as it is now.
    pub fn outbox(&self) -> Outbox<E, S> {
        Outbox {
            snapshot: self.snapshot.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<E, S: Clone> Outbox<E, S> {
    /// Queues an event and wakes the console loop.
    pub fn push(&self, event: E) {
        self.shared.push(event);
    }

    pub fn snapshot(&self) -> S {
        self.snapshot.borrow().clone()
    }

    /// Waits for the console to publish a change; an error once the console is gone.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.snapshot.changed().await
    }
}

/// A running agent thread. Dropping it stops the agent without waiting.
pub struct AgentHandle {
    stop: Option<oneshot::Sender<()>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl AgentHandle {
    /// Stops the agent and waits (at most `wait`) for its thread to finish.
    pub fn shutdown(mut self, wait: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if self.done.recv_timeout(wait).is_err() {
            tracing::debug!("agent did not stop in time");
        }
    }
}

/// Runs `agent` on a current-thread tokio runtime in a new thread called `name`; the future it makes
/// is handed the stop signal. Call after signals are blocked: the new thread inherits the mask, so
/// SIGTERM still reaches the console loop's signalfd.
pub fn spawn_agent<F, Fut>(name: &str, agent: F) -> std::io::Result<AgentHandle>
where
    F: FnOnce(oneshot::Receiver<()>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    // Built here, so a runtime that cannot start is an error of the caller, not a dead thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            runtime.block_on(agent(stop_rx));
            let _ = done_tx.send(());
        })?;
    Ok(AgentHandle {
        stop: Some(stop_tx),
        done: done_rx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestLink = Link<u64, String, bool>;
    type TestEnd = End<u64, String, bool>;

    fn pair() -> (TestLink, TestEnd) {
        channel(false).unwrap()
    }

    #[test]
    fn events_wake_the_console_and_requests_reach_the_agent() {
        let (link, mut agent) = pair();
        let mut buf = [0u8; 1];
        assert!(
            (&link.shared.wake_rx).read(&mut buf).is_err(),
            "no wake-up yet"
        );
        agent.push("hello".into());
        agent.outbox().push("from a task".into());
        assert_eq!((&link.shared.wake_rx).read(&mut buf).unwrap(), 1);
        link.drain_wake();
        assert!((&link.shared.wake_rx).read(&mut buf).is_err(), "drained");
        assert_eq!(link.take_events(), vec!["hello", "from a task"]);
        assert!(link.take_events().is_empty());
        assert!(link.request(1));
        assert_eq!(agent.try_recv(), Some(1));
        assert_eq!(agent.try_recv(), None);
    }

    #[test]
    fn a_flood_of_requests_is_refused_not_queued_without_bound() {
        let (link, _agent) = pair();
        let sent = (0..100).filter(|&id| link.request(id)).count();
        assert_eq!(sent, REQUEST_CAPACITY);
    }

    #[test]
    fn only_a_changed_snapshot_is_seen_as_a_change() {
        let (link, agent) = pair();
        let mut rx = agent.snapshot.clone();
        rx.mark_unchanged();
        link.publish(false);
        assert!(!rx.has_changed().unwrap());
        link.publish(true);
        assert!(rx.has_changed().unwrap());
        assert!(agent.snapshot() && agent.outbox().snapshot());
    }

    #[test]
    fn an_agent_thread_stops_when_told() {
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = spawn_agent("test-agent", move |stop| async move {
            let _ = stop.await;
            let _ = tx.send("stopped");
        })
        .unwrap();
        handle.shutdown(Duration::from_secs(5));
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok("stopped"));
    }
}
