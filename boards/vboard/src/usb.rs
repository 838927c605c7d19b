//! The board's USB device, as a host would enumerate it: a CDC ACM console (ESP32-S3-style native
//! USB) under the pid.codes test id, published as a JSON list of one [`UsbDevice`] in a bus file
//! (`--usb-bus`) that stands in for the host's view of the bus.
//!
//! With `--usb-reenumerate` a reboot drops the device off the bus and brings it back with its console
//! on a new tty, as a native-USB console does when the chip resets. The `usb-dfu-exposed` defect adds
//! a DFU runtime interface: a firmware loader left on in production.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hilt_link::usb::{UsbDevice, UsbInterface};

use crate::MODEL;
use crate::defects::{Defect, DefectSet};
use crate::flash::write_atomic;
use crate::pty::{Pty, PtyError, open_raw};

/// pid.codes' vendor id, and its test product id.
pub const VID: u16 = 0x1209;
pub const PID: u16 = 0x0001;
pub const MANUFACTURER: &str = "hilt project";
/// Where the board is plugged in (bus 1, port 1).
pub const LOCATION: &str = "1-1";
/// How long the device is off the bus while it reboots.
pub const REENUMERATE_GAP: Duration = Duration::from_millis(200);
/// Longest a reset waits for the host to read what the device said before it (its USB FIFO
/// draining): a host that is reading gets it all, however loaded the machine; one that is not loses
/// it, as on a chip that resets.
pub const RESET_GRACE: Duration = Duration::from_millis(1000);
/// USB classes: communications (CDC), CDC data, application specific (DFU).
const CLASS_CDC: u8 = 0x02;
const CLASS_CDC_DATA: u8 = 0x0a;
const CLASS_APPLICATION: u8 = 0xfe;

/// What `--usb-bus` and `--usb-reenumerate` ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbOptions {
    pub bus: PathBuf,
    pub reenumerate: bool,
}

/// The board's USB device as it publishes it: the descriptors and the bus file they go to.
#[derive(Debug, Clone)]
pub struct UsbLink {
    bus: PathBuf,
    serial: String,
    dfu: bool,
    reenumerate: bool,
}

impl UsbLink {
    pub fn new(opts: &UsbOptions, serial: &str, defects: &DefectSet) -> Self {
        Self {
            bus: opts.bus.clone(),
            serial: serial.to_string(),
            dfu: defects.has(Defect::UsbDfuExposed),
            reenumerate: opts.reenumerate,
        }
    }

    /// Whether a reboot re-enumerates the device (its console comes back on a new tty).
    pub fn reenumerates(&self) -> bool {
        self.reenumerate
    }

    /// The bus file.
    pub fn bus(&self) -> &Path {
        &self.bus
    }

    /// The device with its console on `tty`.
    pub fn device(&self, tty: &Path) -> UsbDevice {
        device(&self.serial, tty, self.dfu)
    }

    /// Puts the device on the bus with its console on `tty`.
    pub fn plug(&self, tty: &Path) -> std::io::Result<()> {
        publish(&self.bus, &[self.device(tty)])
    }

    /// Takes the device off the bus.
    pub fn unplug(&self) -> std::io::Result<()> {
        publish(&self.bus, &[])
    }

    /// A reboot as a native-USB console does it: off the bus, the old tty gone, and back after a
    /// moment on a new one, which replaces `pty`. The new pty is opened before the old one closes,
    /// so the kernel cannot hand out the same path again; its slave is held open (as at power-on)
    /// so the boot output waits in it until the host opens the new tty. If no new pty can be
    /// opened, the device comes back on the old one.
    pub fn reenumerate(&self, pty: &mut Pty) -> Result<(), PtyError> {
        drain(pty, RESET_GRACE);
        self.log_bus_error(self.unplug());
        let new = match open_raw() {
            Ok(new) => new,
            Err(e) => {
                self.log_bus_error(self.plug(&pty.slave_path));
                return Err(e);
            }
        };
        drop(std::mem::replace(pty, new));
        std::thread::sleep(REENUMERATE_GAP);
        self.log_bus_error(self.plug(&pty.slave_path));
        tracing::info!(tty = %pty.slave_path.display(), "USB device re-enumerated");
        Ok(())
    }

    /// A bus file that cannot be written is the host's view going stale, not the board failing.
    fn log_bus_error(&self, result: std::io::Result<()>) {
        if let Err(e) = result {
            tracing::warn!(bus = %self.bus.display(), error = %e, "cannot write the USB bus file");
        }
    }
}

/// The descriptor set: a CDC ACM console (communication and data interfaces) on `tty`, and with
/// `dfu` a DFU runtime interface as well.
pub fn device(serial: &str, tty: &Path, dfu: bool) -> UsbDevice {
    let mut interfaces = vec![
        UsbInterface {
            tty: Some(tty.display().to_string()),
            ..interface(0, CLASS_CDC, 0x02, 0x01, None)
        },
        interface(1, CLASS_CDC_DATA, 0, 0, None),
    ];
    if dfu {
        let name = format!("{MODEL} DFU");
        interfaces.push(interface(2, CLASS_APPLICATION, 0x01, 0x01, Some(name)));
    }
    UsbDevice {
        vid: VID,
        pid: PID,
        serial: Some(serial.to_string()),
        manufacturer: Some(MANUFACTURER.to_string()),
        product: Some(MODEL.to_string()),
        class: CLASS_CDC,
        subclass: 0,
        protocol: 0,
        location: LOCATION.to_string(),
        interfaces,
    }
}

fn interface(
    number: u8,
    class: u8,
    subclass: u8,
    protocol: u8,
    name: Option<String>,
) -> UsbInterface {
    UsbInterface {
        number,
        class,
        subclass,
        protocol,
        name,
        tty: None,
    }
}

/// Writes `devices` to the bus file atomically: a reader sees the old list or the new one.
pub fn publish(bus: &Path, devices: &[UsbDevice]) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(devices).map_err(std::io::Error::other)?;
    write_atomic(bus, &json, 0o644)
}

/// Waits, at most `within`, until the host has read everything queued on the console's tty.
fn drain(pty: &Pty, within: Duration) {
    let until = std::time::Instant::now() + within;
    while unread(pty) > 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Bytes queued on the tty that no host has read yet (0 when it cannot be told).
fn unread(pty: &Pty) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD stores one int through the pointer, which outlives the call.
    let rc = unsafe { nix::libc::ioctl(pty.slave.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
    if rc != 0 {
        return 0;
    }
    usize::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_link::usb::InterfaceKind;

    fn read(bus: &Path) -> Vec<UsbDevice> {
        serde_json::from_slice(&std::fs::read(bus).unwrap()).unwrap()
    }

    #[test]
    fn the_conformant_device_is_a_cdc_console_only() {
        let d = device("VRB-00000001", Path::new("/dev/pts/7"), false);
        assert_eq!(d.id(), "1209:0001:VRB-00000001");
        assert_eq!(
            (d.manufacturer.as_deref(), d.product.as_deref()),
            (Some("hilt project"), Some("VRB-1"))
        );
        assert_eq!((d.class, d.location.as_str()), (0x02, "1-1"));
        let kinds: Vec<_> = d.kinds().into_iter().map(|(_, k)| k).collect();
        assert_eq!(kinds, [InterfaceKind::Serial, InterfaceKind::Serial]);
        let acm = &d.interfaces[0];
        assert_eq!((acm.class, acm.subclass, acm.protocol), (2, 2, 1));
        assert_eq!(acm.tty.as_deref(), Some("/dev/pts/7"));
        assert_eq!(d.interfaces[1].tty, None);
    }

    #[test]
    fn the_dfu_defect_adds_one_loader_interface_and_nothing_else() {
        let tty = Path::new("/dev/pts/7");
        let good = device("SN", tty, false);
        let bad = device("SN", tty, true);
        assert_eq!(bad.interfaces.len(), 3);
        let dfu = &bad.interfaces[2];
        assert_eq!(
            (dfu.number, dfu.class, dfu.subclass, dfu.protocol),
            (2, 0xfe, 1, 1)
        );
        assert_eq!(dfu.name.as_deref(), Some("VRB-1 DFU"));
        assert!(bad.kinds()[2].1.is_debug_or_loader());
        let mut trimmed = bad.clone();
        trimmed.interfaces.truncate(2);
        assert_eq!(trimmed, good);
    }

    #[test]
    fn plug_and_unplug_rewrite_the_bus_file() {
        let dir = tempfile::tempdir().unwrap();
        let opts = UsbOptions {
            bus: dir.path().join("usb.json"),
            reenumerate: false,
        };
        let link = UsbLink::new(&opts, "SN", &DefectSet::default());
        link.plug(Path::new("/dev/pts/9")).unwrap();
        assert_eq!(read(link.bus()), [link.device(Path::new("/dev/pts/9"))]);
        link.unplug().unwrap();
        assert!(read(link.bus()).is_empty());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn reenumeration_brings_the_console_back_on_a_new_tty() {
        let dir = tempfile::tempdir().unwrap();
        let opts = UsbOptions {
            bus: dir.path().join("usb.json"),
            reenumerate: true,
        };
        let link = UsbLink::new(&opts, "SN", &DefectSet::default());
        let mut pty = open_raw().unwrap();
        let old_path = pty.slave_path.clone();
        link.plug(&old_path).unwrap();
        link.reenumerate(&mut pty).unwrap();
        assert_ne!(pty.slave_path, old_path);
        let tty = read(link.bus())[0].interfaces[0].tty.clone();
        assert_eq!(tty.as_deref(), pty.slave_path.to_str());
    }
}
