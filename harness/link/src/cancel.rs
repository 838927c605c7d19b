//! A cancellation flag shared between whoever stops a run (a signal handler, a time budget) and the
//! links blocked waiting on a device, so an interrupted wait ends within a poll interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often a blocking wait looks at the flag.
pub const POLL: Duration = Duration::from_millis(50);

/// Zero = go on; any other value = stop (a signal handler stores the signal number).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicUsize>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Share an existing flag, e.g. one that `signal_hook::flag::register_usize` sets.
    pub fn from_flag(flag: Arc<AtomicUsize>) -> Self {
        Cancel(flag)
    }

    pub fn flag(&self) -> Arc<AtomicUsize> {
        self.0.clone()
    }

    /// Ask everything sharing this flag to stop, with a non-zero reason code.
    pub fn cancel(&self, code: usize) {
        self.0.store(code.max(1), Ordering::SeqCst);
    }

    /// The reason code, if cancelled.
    pub fn reason(&self) -> Option<usize> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    /// Sleep for `d`, waking early when cancelled; true when the whole time passed.
    pub fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if self.is_cancelled() {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(POLL));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_wakes_when_cancelled_from_another_thread() {
        let c = Cancel::new();
        let other = c.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            other.cancel(2);
        });
        let started = Instant::now();
        assert!(!c.sleep(Duration::from_secs(30)));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(c.reason(), Some(2));
        t.join().unwrap();
        assert!(Cancel::new().sleep(Duration::from_millis(1)));
    }
}
