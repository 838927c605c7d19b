//! Getting a console's link back after its device went away and came back: a USB device that
//! re-enumerates (a reset, a firmware update, a brown-out) gets a new tty, often under a new name.
//!
//! A [`Reattach`] tells the [`crate::Console`] how to reopen the link and how long to wait; the
//! console decides when (see [`crate::Console::set_reattach`]). [`Reattach::usb`] reopens the
//! serial port of the same USB device, found again by its identity through a [`UsbBus`].

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use super::port::{Port, SerialPort};
use crate::LinkError;
use crate::usb::{UsbBus, UsbDevice, UsbError, UsbIdentity};

/// Tries to reopen a link: `Ok(Some((path, port)))` = back at `path`; `Ok(None)` = not back yet
/// (try again shortly); `Err(why)` = it will not come back, stop waiting now.
pub type Reopen = Box<dyn FnMut() -> Reopened + Send>;

/// What one [`Reopen`] attempt gives.
pub type Reopened = Result<Option<(PathBuf, Box<dyn Port>)>, String>;

/// How a console gets its link back after the device end went away.
pub struct Reattach {
    /// Longest wait for the device to return, each time the link is lost.
    pub within: Duration,
    /// Called about every 50 ms while waiting (and at least once).
    pub reopen: Reopen,
}

impl fmt::Debug for Reattach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reattach")
            .field("within", &self.within)
            .finish_non_exhaustive()
    }
}

impl Reattach {
    /// Reopen the tty of the USB device `identity` names, at `baud`, wherever it re-enumerates.
    ///
    /// "The same device" is pinned now: an identity without a serial number takes the serial of
    /// the one device it matches at this moment, or, for a device without one, its port on the
    /// hub (its `location`), so a different unit of the same model is never taken for it.
    ///
    /// Not back yet (tried again): the device is absent or a different one; it has no tty yet (the
    /// driver binds it a moment after enumeration); its tty cannot be opened yet (busy, e.g. a
    /// modem manager probing it, or not yet given its permissions); the bus cannot be listed (a bus
    /// file being rewritten). Gives up at once when the machine has no USB bus or several devices
    /// are the same one.
    pub fn usb(
        identity: UsbIdentity,
        bus: Arc<dyn UsbBus + Send + Sync>,
        baud: u32,
        within: Duration,
    ) -> Reattach {
        let (identity, location) = pin(identity, bus.as_ref());
        let reopen = move || -> Reopened {
            let Some(path) = locate(&identity, location.as_deref(), bus.as_ref())? else {
                return Ok(None);
            };
            let port = match SerialPort::open(&path, baud) {
                Ok(p) => p,
                Err(e) => {
                    debug!(error = %e, "the device's tty cannot be opened yet");
                    return Ok(None);
                }
            };
            // Between resolving and opening the name may have gone to another device: check again.
            if locate(&identity, location.as_deref(), bus.as_ref())?.as_ref() != Some(&path) {
                debug!(path = %path.display(), "the tty changed hands while opening it");
                return Ok(None);
            }
            Ok(Some((path, Box::new(port) as Box<dyn Port>)))
        };
        Reattach {
            within,
            reopen: Box::new(reopen),
        }
    }
}

/// `identity` with a serial number to insist on if it has none, else the location to insist on.
fn pin(mut identity: UsbIdentity, bus: &dyn UsbBus) -> (UsbIdentity, Option<String>) {
    if identity.serial.is_some() {
        return (identity, None);
    }
    let Ok(devices) = bus.devices() else {
        return (identity, None);
    };
    let location = match identity.find(&devices).as_slice() {
        [one] => match &one.serial {
            Some(s) => {
                identity.serial = Some(s.clone());
                None
            }
            None if !one.location.is_empty() => Some(one.location.clone()),
            None => None,
        },
        _ => None,
    };
    (identity, location)
}

/// The device's tty now; `Ok(None)` = not there (yet).
fn locate(
    identity: &UsbIdentity,
    location: Option<&str>,
    bus: &dyn UsbBus,
) -> Result<Option<PathBuf>, String> {
    let devices: Vec<UsbDevice> = match bus.devices() {
        Ok(d) => d,
        Err(e @ UsbError::NoBus(_)) => return Err(e.to_string()),
        Err(e) => {
            debug!(error = %e, "the USB bus cannot be listed now");
            return Ok(None);
        }
    };
    let devices: Vec<UsbDevice> = match location {
        Some(at) => devices.into_iter().filter(|d| d.location == at).collect(),
        None => devices,
    };
    match identity.tty_in(&devices) {
        Ok(path) => Ok(Some(path)),
        Err(e @ LinkError::UsbAmbiguous { .. }) => Err(e.to_string()),
        Err(e) => {
            debug!(error = %e, "the device is not back yet");
            Ok(None)
        }
    }
}

/// The port a console holds while its device is away: the old tty is closed at once (a USB tty
/// still held open keeps its name, pushing the returning device to another one).
pub(crate) struct Gone;

impl Port for Gone {
    fn read_timeout(&mut self, _buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the device is gone",
        ))
    }
    fn write_all(&mut self, _data: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the device is gone",
        ))
    }
}
