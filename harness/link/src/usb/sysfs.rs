//! Which tty the Linux kernel bound to each interface of a USB device, read from sysfs.
//!
//! A device's directory (`/sys/bus/usb/devices/1-1.4`) holds one directory per interface of its
//! active configuration, `<dev>:<config>.<iface>` (`1-1.4:1.0`). A tty-class driver (CDC ACM) puts
//! its tty under `tty/` there (`1-1.4:1.0/tty/ttyACM0`); a usb-serial driver (ftdi_sio, cp210x,
//! ch341, pl2303) puts a port directory beside it (`1-1.2:1.0/ttyUSB0`). Either way the name is the
//! node under `/dev`. Anything unreadable is simply "no tty": listing never fails for it.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Interface number → `/dev/<tty>` for the interfaces of the device at `dev` that have a tty.
pub(crate) fn interface_ttys(dev: &Path) -> BTreeMap<u8, String> {
    let mut out = BTreeMap::new();
    let Some(prefix) = dev
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| format!("{n}:"))
    else {
        return out;
    };
    let Ok(entries) = fs::read_dir(dev) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with(&prefix)) {
            continue;
        }
        let dir = entry.path();
        let Some(number) = fs::read_to_string(dir.join("bInterfaceNumber"))
            .ok()
            .and_then(|s| u8::from_str_radix(s.trim(), 16).ok())
        else {
            continue;
        };
        if let Some(tty) = tty_of(&dir) {
            out.insert(number, format!("/dev/{tty}"));
        }
    }
    out
}

/// The tty bound to one interface directory: the first by name, so the answer is stable.
fn tty_of(iface: &Path) -> Option<String> {
    // CDC ACM and other tty-class drivers.
    if let Some(name) = first_tty(&iface.join("tty")) {
        return Some(name);
    }
    // usb-serial drivers: a `ttyUSBn` port directory in the interface directory itself.
    first_tty(iface)
}

fn first_tty(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        // `tty` itself is the class directory, not a device.
        .filter(|n| n.starts_with("tty") && n.len() > 3)
        .collect();
    names.sort();
    names.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkdir(p: &Path) {
        fs::create_dir_all(p).unwrap();
    }

    fn iface(dev: &Path, name: &str, number: &str) -> std::path::PathBuf {
        let d = dev.join(name);
        mkdir(&d);
        fs::write(d.join("bInterfaceNumber"), format!("{number}\n")).unwrap();
        d
    }

    #[test]
    fn finds_cdc_acm_and_usb_serial_ttys_by_interface_number() {
        let root = tempfile::tempdir().unwrap();
        // A composite CDC ACM device: the tty hangs off the control interface.
        let acm = root.path().join("1-1.4");
        mkdir(&acm.join("power"));
        mkdir(&iface(&acm, "1-1.4:1.0", "00").join("tty/ttyACM3"));
        iface(&acm, "1-1.4:1.1", "01");
        iface(&acm, "1-1.4:1.2", "02");
        // Another device's interface directory in the same place is not this device's.
        mkdir(&iface(&acm, "1-1.40:1.0", "00").join("tty/ttyACM9"));
        let got = interface_ttys(&acm);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[&0], "/dev/ttyACM3");

        // A usb-serial bridge: the port directory sits in the interface directory.
        let ftdi = root.path().join("1-1.2");
        let i0 = iface(&ftdi, "1-1.2:1.0", "00");
        mkdir(&i0.join("ttyUSB1/tty/ttyUSB1"));
        mkdir(&i0.join("power"));
        // Interface numbers are hex in sysfs.
        mkdir(&iface(&ftdi, "1-1.2:1.10", "0a").join("ttyUSB2"));
        let got = interface_ttys(&ftdi);
        assert_eq!(got[&0], "/dev/ttyUSB1");
        assert_eq!(got[&10], "/dev/ttyUSB2");
    }

    #[test]
    fn unreadable_or_odd_trees_give_no_ttys() {
        assert!(interface_ttys(Path::new("/nonexistent/1-1")).is_empty());
        assert!(interface_ttys(Path::new("/")).is_empty());
        let root = tempfile::tempdir().unwrap();
        let dev = root.path().join("2-1");
        // No interface number, or an empty tty class directory: no tty.
        mkdir(&dev.join("2-1:1.0/tty/ttyACM0"));
        mkdir(&iface(&dev, "2-1:1.1", "01").join("tty"));
        assert!(interface_ttys(&dev).is_empty());
    }
}
