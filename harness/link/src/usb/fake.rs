//! A USB bus played back from recorded descriptor sets: `tests/fixtures/usb/*.json`, each one real
//! device model as `lsusb -v` shows it (ids, strings, interfaces). Devices can be unplugged and
//! plugged back, so code that keeps hold of a board can be tested without one.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{UsbBus, UsbDevice, UsbError};

/// A bus whose devices the test controls.
#[derive(Debug, Clone, Default)]
pub struct FakeBus {
    devices: Arc<Mutex<Vec<UsbDevice>>>,
    /// `Some(why)`: the machine has no bus at all.
    no_bus: Option<String>,
}

impl FakeBus {
    pub fn new(devices: Vec<UsbDevice>) -> Self {
        FakeBus {
            devices: Arc::new(Mutex::new(devices)),
            no_bus: None,
        }
    }

    /// A machine without a USB bus, as nusb reports it there.
    pub fn without_bus() -> Self {
        FakeBus {
            no_bus: Some("/sys/bus/usb/devices/ not found".into()),
            ..FakeBus::default()
        }
    }

    /// Reads a recorded device (one JSON object) from `path`.
    pub fn recorded(path: &Path) -> Result<UsbDevice, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn plug(&self, d: UsbDevice) {
        self.lock().push(d);
    }

    /// Removes every device matching `pred`; how many were removed.
    pub fn unplug(&self, pred: impl Fn(&UsbDevice) -> bool) -> usize {
        let mut devices = self.lock();
        let before = devices.len();
        devices.retain(|d| !pred(d));
        before - devices.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<UsbDevice>> {
        self.devices.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl UsbBus for FakeBus {
    fn devices(&self) -> Result<Vec<UsbDevice>, UsbError> {
        match &self.no_bus {
            Some(why) => Err(UsbError::NoBus(why.clone())),
            None => Ok(self.lock().clone()),
        }
    }
}
