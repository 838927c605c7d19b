//! Slots: how many cases may run at once across a whole run (every board of a campaign, every
//! defect of a selftest). A counting semaphore whose waits end when the run is cancelled.

use hilt_link::Cancel;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// How often a wait looks at the cancellation flag.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct Slots {
    capacity: usize,
    free: Mutex<usize>,
    freed: Condvar,
}

/// A held slot, given back when dropped.
#[derive(Debug)]
pub struct Slot<'a>(&'a Slots);

impl Slots {
    /// At least one slot, whatever is asked.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Slots {
            capacity,
            free: Mutex::new(capacity),
            freed: Condvar::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Wait for a free slot; `None` once `cancel` is set.
    pub fn acquire(&self, cancel: &Cancel) -> Option<Slot<'_>> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            if *free > 0 {
                *free -= 1;
                return Some(Slot(self));
            }
            free = self
                .freed
                .wait_timeout(free, POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_holders_than_slots() {
        let slots = Slots::new(3);
        let cancel = Cancel::new();
        let (now, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| {
                    let _slot = slots.acquire(&cancel).expect("not cancelled");
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    now.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=3).contains(&peak), "peak {peak}");
        assert_eq!(*slots.free.lock().unwrap(), 3, "every slot given back");
    }

    #[test]
    fn a_cancelled_wait_ends() {
        let slots = Slots::new(1);
        let cancel = Cancel::new();
        let held = slots.acquire(&cancel).unwrap();
        let stopper = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            stopper.cancel(2);
        });
        assert!(slots.acquire(&cancel).is_none());
        drop(held);
        assert_eq!(Slots::new(0).capacity(), 1);
    }
}
