//! USB enumeration, identity, interface kinds and tty resolution over recorded descriptor sets of
//! real device models (`tests/fixtures/usb/`), through the fake bus and a bus file: no USB bus is
//! needed.

use std::path::{Path, PathBuf};

use hilt_link::LinkError;
use hilt_link::usb::{FakeBus, FileBus, InterfaceKind, UsbBus, UsbError, UsbIdentity};

fn fixture(name: &str) -> hilt_link::usb::UsbDevice {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/usb")
        .join(name);
    FakeBus::recorded(&p).unwrap()
}

fn bench() -> FakeBus {
    FakeBus::new(
        [
            "ftdi-ft232r.json",
            "cp2102.json",
            "esp32s3-usb-serial-jtag.json",
            "nrf52840dk-jlink.json",
        ]
        .map(fixture)
        .to_vec(),
    )
}

#[test]
fn each_recorded_model_is_told_by_its_interfaces() {
    use InterfaceKind::*;
    let kinds = |f: &str| -> Vec<InterfaceKind> {
        fixture(f).kinds().into_iter().map(|(_, k)| k).collect()
    };
    assert_eq!(kinds("ftdi-ft232r.json"), [Serial]);
    assert_eq!(kinds("cp2102.json"), [Serial]);
    assert_eq!(
        kinds("esp32s3-usb-serial-jtag.json"),
        [Serial, Serial, Debug]
    );
    assert_eq!(
        kinds("nrf52840dk-jlink.json"),
        [Serial, Serial, Debug, MassStorage]
    );
    assert!(Debug.is_debug_or_loader() && !Serial.is_debug_or_loader());
}

#[test]
fn an_identity_finds_its_unit_only() {
    let devices = bench().devices().unwrap();
    let jlink = UsbIdentity {
        vid: 0x1366,
        pid: 0x1015,
        serial: Some("000683000001".into()),
        interface: Some(0),
    };
    let found = jlink.find(&devices);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id(), "1366:1015:000683000001");
    assert_eq!(jlink.to_string(), "1366:1015:000683000001 interface 0");
    // Another unit of the same model is not this one, nor is a missing interface.
    let other = UsbIdentity {
        serial: Some("000683000002".into()),
        ..jlink.clone()
    };
    assert!(other.find(&devices).is_empty());
    let no_such_interface = UsbIdentity {
        interface: Some(7),
        ..jlink
    };
    assert!(no_such_interface.find(&devices).is_empty());
}

#[test]
fn an_identity_without_a_serial_is_ambiguous_with_two_units() {
    let bus = bench();
    let mut second = fixture("ftdi-ft232r.json");
    second.serial = Some("A50285BJ".into());
    bus.plug(second);
    let any_ftdi = UsbIdentity {
        vid: 0x0403,
        pid: 0x6001,
        serial: None,
        interface: None,
    };
    assert_eq!(any_ftdi.find(&bus.devices().unwrap()).len(), 2);
    assert_eq!(bus.unplug(|d| d.vid == 0x0403), 2);
    assert!(any_ftdi.find(&bus.devices().unwrap()).is_empty());
}

#[test]
fn a_machine_without_a_bus_says_so() {
    let e = FakeBus::without_bus().devices().unwrap_err();
    assert!(matches!(e, UsbError::NoBus(_)));
    assert!(
        e.to_string().starts_with("no USB bus on this machine"),
        "{e}"
    );
}

fn jlink(interface: Option<u8>) -> UsbIdentity {
    UsbIdentity {
        vid: 0x1366,
        pid: 0x1015,
        serial: Some("000683000001".into()),
        interface,
    }
}

#[test]
fn the_composite_jlink_resolves_to_its_cdc_tty() {
    let bus = bench();
    // Declared: the CDC ACM control interface, where the tty is.
    assert_eq!(
        jlink(Some(0)).resolve_tty(&bus).unwrap(),
        Path::new("/dev/ttyACM0")
    );
    // Not declared: the only interface with a tty.
    assert_eq!(
        jlink(None).resolve_tty(&bus).unwrap(),
        Path::new("/dev/ttyACM0")
    );
    // The J-Link's own interface is no serial port; the error says which one is.
    let err = jlink(Some(2)).resolve_tty(&bus).unwrap_err();
    assert!(
        matches!(
            &err,
            LinkError::UsbNoTty {
                interface: Some(2),
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("1366:1015:000683000001 at 1-1.1")
            && text.contains("on interface 2")
            && text.contains("interface 0 (/dev/ttyACM0)"),
        "{text}"
    );
}

#[test]
fn a_missing_interface_is_not_found_and_says_what_is_there() {
    let err = jlink(Some(7)).resolve_tty(&bench()).unwrap_err();
    let LinkError::UsbNotFound { wanted, seen } = &err else {
        panic!("{err}")
    };
    assert_eq!(wanted, "1366:1015:000683000001 interface 7");
    assert!(
        seen.contains("1366:1015:000683000001 at 1-1.1 (interfaces 0 /dev/ttyACM0, 1, 2, 3)"),
        "{seen}"
    );
    assert!(seen.contains("0403:6001:A50285BI at 1-1.2"), "{seen}");
    let err = jlink(Some(0)).resolve_tty(&FakeBus::default()).unwrap_err();
    assert!(
        err.to_string().ends_with("no USB devices are present"),
        "{err}"
    );
}

#[test]
fn resolving_without_a_serial_is_ambiguous_with_two_units() {
    let bus = bench();
    let mut second = fixture("ftdi-ft232r.json");
    second.serial = Some("A50285BJ".into());
    second.location = "1-1.5".into();
    second.interfaces[0].tty = Some("/dev/ttyUSB2".into());
    bus.plug(second);
    let any_ftdi = UsbIdentity {
        vid: 0x0403,
        pid: 0x6001,
        serial: None,
        interface: None,
    };
    let err = any_ftdi.resolve_tty(&bus).unwrap_err();
    let LinkError::UsbAmbiguous { matches, add, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(matches.len(), 2);
    assert_eq!(*add, "serial number");
    assert!(err.to_string().contains("/dev/ttyUSB2"), "{err}");
    let one = UsbIdentity {
        serial: Some("A50285BJ".into()),
        ..any_ftdi
    };
    assert_eq!(one.resolve_tty(&bus).unwrap(), Path::new("/dev/ttyUSB2"));
}

#[test]
fn two_ttys_on_one_device_need_the_interface() {
    // A device with two CDC ACM consoles (as a J-Link OB with two VCOMs has).
    let mut two = fixture("nrf52840dk-jlink.json");
    two.interfaces[2].class = 2;
    two.interfaces[2].subclass = 2;
    two.interfaces[2].tty = Some("/dev/ttyACM1".into());
    let bus = FakeBus::new(vec![two]);
    let err = jlink(None).resolve_tty(&bus).unwrap_err();
    assert!(
        matches!(
            &err,
            LinkError::UsbAmbiguous {
                add: "interface number",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("interface 0 (/dev/ttyACM0); interface 2 (/dev/ttyACM1)"),
        "{err}"
    );
    assert_eq!(
        jlink(Some(2)).resolve_tty(&bus).unwrap(),
        Path::new("/dev/ttyACM1")
    );
}

#[test]
fn bus_errors_become_link_errors_with_their_text() {
    let err = jlink(None)
        .resolve_tty(&FakeBus::without_bus())
        .unwrap_err();
    assert!(matches!(err, LinkError::UsbNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("no USB bus on this machine"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.json");
    std::fs::write(&path, "[{").unwrap();
    let err = jlink(None)
        .resolve_tty(&FileBus::new(path.clone()))
        .unwrap_err();
    assert!(err.to_string().contains("bus.json:1:"), "{err}");
}

#[test]
fn a_bus_file_of_recorded_devices_resolves_like_the_bus() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.json");
    let bus = FileBus::new(path.clone());
    // Not written yet: the device is not there, which is not an error of the bus.
    assert_eq!(bus.devices().unwrap(), []);
    assert!(matches!(
        jlink(Some(0)).resolve_tty(&bus),
        Err(LinkError::UsbNotFound { .. })
    ));
    let devices = bench().devices().unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&devices).unwrap()).unwrap();
    assert_eq!(bus.devices().unwrap(), devices);
    assert_eq!(
        jlink(Some(0)).resolve_tty(&bus).unwrap(),
        Path::new("/dev/ttyACM0")
    );
}
