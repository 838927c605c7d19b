//! USB enumeration, identity and interface kinds over recorded descriptor sets of real device models
//! (`tests/fixtures/usb/`), through the fake bus: no USB bus is needed.

use std::path::PathBuf;

use hilt_link::usb::{FakeBus, InterfaceKind, UsbBus, UsbError, UsbIdentity};

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
