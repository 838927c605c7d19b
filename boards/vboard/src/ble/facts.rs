//! What the radio tells about the unit, kept current by the console (on the main thread) and read by
//! the radio's connection threads.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::flash::FlashState;

/// The unit's live state, as far as the radio can show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFacts {
    pub serial: String,
    /// The running firmware's version.
    pub firmware: String,
    /// The owner's name as entered on the console (`set name`).
    pub owner_name: Option<String>,
}

impl DeviceFacts {
    pub fn of(state: &FlashState) -> Self {
        Self {
            serial: state.serial.clone(),
            firmware: state.update.running.version.clone(),
            owner_name: state.privacy.profile.name.clone(),
        }
    }
}

/// [`DeviceFacts`] shared between the console and the radio.
#[derive(Debug, Clone, Default)]
pub struct SharedFacts(Arc<Mutex<DeviceFacts>>);

impl SharedFacts {
    pub fn new(facts: DeviceFacts) -> Self {
        Self(Arc::new(Mutex::new(facts)))
    }

    /// Replaces the facts.
    pub fn set(&self, facts: &DeviceFacts) {
        let mut held = self.lock();
        if *held != *facts {
            *held = facts.clone();
        }
    }

    pub fn get(&self) -> DeviceFacts {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, DeviceFacts> {
        // A panic elsewhere while holding the lock leaves plain data behind: still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
