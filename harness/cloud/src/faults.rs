//! Faults a scenario injects into the mock cloud: an outage (connections refused or dropped), presenting
//! the untrusted certificate (a man-in-the-middle), and delayed responses. Servers watch for changes so
//! they can drop live connections when a fault begins.

use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageMode {
    /// New connections are accepted and closed at once, existing ones are closed.
    Refuse,
    /// Like Refuse, but nothing is answered: connections hang until the outage ends (a blackhole).
    Drop,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultState {
    pub outage: Option<(OutageMode, Instant)>,
    pub untrusted_cert: bool,
    pub delay: Duration,
    /// Bumped on every change, so servers can tell a new fault from an old one.
    pub generation: u64,
}

impl FaultState {
    /// The outage in force now, if any.
    pub fn outage_now(&self) -> Option<OutageMode> {
        self.outage
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(m, _)| m)
    }
}

/// Handle on the fault state: cheap to clone, usable from sync and async code.
#[derive(Clone)]
pub struct Faults {
    tx: watch::Sender<FaultState>,
}

impl Default for Faults {
    fn default() -> Self {
        Self::new()
    }
}

impl Faults {
    pub fn new() -> Faults {
        Faults {
            tx: watch::Sender::new(FaultState::default()),
        }
    }

    pub fn current(&self) -> FaultState {
        self.tx.borrow().clone()
    }

    /// Changes, for servers: await `changed()` to drop live connections when a fault starts.
    pub fn subscribe(&self) -> watch::Receiver<FaultState> {
        self.tx.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut FaultState)) {
        self.tx.send_modify(|s| {
            f(s);
            s.generation += 1;
        });
    }

    pub fn outage(&self, mode: OutageMode, length: Duration) {
        self.update(|s| s.outage = Some((mode, Instant::now() + length)));
    }

    pub fn present_untrusted_cert(&self, on: bool) {
        self.update(|s| s.untrusted_cert = on);
    }

    pub fn delay_responses(&self, delay: Duration) {
        self.update(|s| s.delay = delay);
    }

    pub fn clear(&self) {
        self.update(|s| {
            s.outage = None;
            s.untrusted_cert = false;
            s.delay = Duration::ZERO;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_expire_and_changes_are_seen() {
        let f = Faults::new();
        let mut rx = f.subscribe();
        f.outage(OutageMode::Refuse, Duration::from_millis(30));
        assert!(rx.has_changed().unwrap());
        assert_eq!(
            rx.borrow_and_update().outage_now(),
            Some(OutageMode::Refuse)
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(f.current().outage_now(), None);
        f.present_untrusted_cert(true);
        assert!(f.current().untrusted_cert);
        f.clear();
        assert!(!f.current().untrusted_cert);
        assert_eq!(f.current().generation, 3);
    }
}
