//! The exposed-interface cases (`ex.usb.interfaces-declared`, `ex.ble.*`) judged against recorded
//! devices of real models, through the fakes at the USB bus and BLE radio traits: the scenarios and
//! checks the suite ships, run by the real executor, with no USB bus or Bluetooth on the machine.

use std::path::Path;
use std::sync::Arc;

use hilt::fake::FakeBench;
use hilt_link::usb::{FakeBus, UsbBus, UsbDevice};
use hilt_model::Verdict;
use hilt_model::profile::BoardProfile;

mod common;
use common::{case, inline_case, judge, judge_run, root};

fn usb_fixture(name: &str) -> UsbDevice {
    FakeBus::recorded(&root().join("harness/link/tests/fixtures/usb").join(name)).unwrap()
}

/// A one-unit board with a usb link for `vid:pid:serial` and the IXIT lines given.
fn usb_profile(d: &UsbDevice, ixit: &str) -> BoardProfile {
    let serial = d
        .serial
        .as_ref()
        .map(|s| format!(", serial = \"{s}\""))
        .unwrap_or_default();
    let text = format!(
        r#"
schema = 1
[board]
name = "recorded"
[identity]
manufacturer = "Test"
model = "REC-1"
hardware_version = "1"
firmware_version = "1"
[[unit]]
serial = "REC-0001"
[links.usb]
kind = "usb"
usb = {{ vid = "{:#06x}", pid = "{:#06x}"{serial} }}
[bindings.list-usb]
link = "usb"
[ics.features]
q = true
[ics.provisions]
"5.6-3" = {{ support = "Y", detail = "d" }}
"5.6-4A" = {{ support = "Y", detail = "d" }}
{ixit}
"#,
        d.vid, d.pid
    );
    BoardProfile::parse(Path::new("recorded.toml"), &text).expect("test profile")
}

const SERIAL_ONLY: &str = r#"
[ixit."15-Intf".usb]
"Description" = { description = "console", interfaces = ["serial"] }
"Debug Interface" = { description = "none", protected = [] }
"#;

fn usb_case(fixture: &str, ixit: &str) -> (Verdict, String) {
    let d = usb_fixture(fixture);
    let bench = FakeBench::new(usb_profile(&d, ixit)).usb_bus(
        "usb",
        Arc::new(FakeBus::new(vec![d])) as Arc<dyn UsbBus + Send + Sync>,
    );
    judge(
        &bench,
        &case("exposed-interfaces/usb-interfaces-declared.toml"),
    )
}

#[test]
fn a_usb_uart_bridge_declared_as_a_console_passes() {
    for f in ["ftdi-ft232r.json", "cp2102.json"] {
        let (v, why) = usb_case(f, SERIAL_ONLY);
        assert_eq!(v, Verdict::Pass, "{f}: {why}");
        assert!(why.contains("0:serial"), "{why}");
    }
}

#[test]
fn a_debug_probe_and_a_drive_on_a_board_that_declares_a_console_fail() {
    let (v, why) = usb_case("nrf52840dk-jlink.json", SERIAL_ONLY);
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("interface 2 (debug"), "{why}");
    assert!(why.contains("interface 3 (mass-storage"), "{why}");
}

#[test]
fn a_debug_interface_passes_only_when_declared_protected() {
    let declared_open = r#"
[ixit."15-Intf".usb]
"Description" = { description = "console and JTAG", interfaces = ["serial", "debug"] }
"Debug Interface" = { description = "JTAG open", protected = [] }
"#;
    let (v, why) = usb_case("esp32s3-usb-serial-jtag.json", declared_open);
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("not declared protected"), "{why}");
    let protected = declared_open.replace("protected = []", "protected = [\"debug\"]");
    let (v, why) = usb_case("esp32s3-usb-serial-jtag.json", &protected);
    assert_eq!(v, Verdict::Pass, "{why}");
}

#[test]
fn no_device_no_bus_or_no_declaration_is_not_tested_never_pass() {
    let d = usb_fixture("ftdi-ft232r.json");
    let c = case("exposed-interfaces/usb-interfaces-declared.toml");
    for (bus, says) in [
        (FakeBus::new(vec![]), "no USB device 0403:6001"),
        (FakeBus::without_bus(), "no USB bus on this machine"),
        (
            FakeBus::new(vec![usb_fixture("cp2102.json")]),
            "present: 10c4:ea60",
        ),
    ] {
        let bench = FakeBench::new(usb_profile(&d, SERIAL_ONLY))
            .usb_bus("usb", Arc::new(bus) as Arc<dyn UsbBus + Send + Sync>);
        let (v, why) = judge(&bench, &c);
        assert_eq!(v, Verdict::NotTested, "{why}");
        assert!(why.contains(says), "{why}");
    }
    let bench = FakeBench::new(usb_profile(&d, "")).usb_bus(
        "usb",
        Arc::new(FakeBus::new(vec![d.clone()])) as Arc<dyn UsbBus + Send + Sync>,
    );
    let (v, why) = judge(&bench, &c);
    assert_eq!(v, Verdict::NotTested, "{why}");
    assert!(
        why.contains("does not declare 15-Intf/usb/Description/interfaces"),
        "{why}"
    );
}

fn ble_fixture(name: &str) -> hilt_link::ble::RecordedDevice {
    hilt_link::ble::FakeCentral::recorded(
        &root().join("harness/link/tests/fixtures/ble").join(name),
    )
    .unwrap()
}

/// A one-unit board with serial `serial` and a ble link finding the device by `name`.
fn ble_profile(serial: &str, name: &str, ixit: &str) -> BoardProfile {
    let text = format!(
        r#"
schema = 1
[board]
name = "recorded"
[identity]
manufacturer = "Test"
model = "REC-1"
hardware_version = "1"
firmware_version = "1"
[[unit]]
serial = "{serial}"
[links.ble]
kind = "ble"
name = "{name}"
scan_ms = 200
[bindings.survey-ble]
link = "ble"
[ics.features]
t = true
[ics.provisions]
"5.6-1" = {{ support = "Y", detail = "d" }}
"5.6-2" = {{ support = "Y", detail = "d" }}
"5.8-1" = {{ support = "Y", detail = "d" }}
{ixit}
"#
    );
    BoardProfile::parse(Path::new("recorded.toml"), &text).expect("test profile")
}

fn ble_bench(fixture: &str, serial: &str, ixit: &str) -> FakeBench {
    let d = ble_fixture(fixture);
    let name = d.advert.local_name.clone().unwrap();
    FakeBench::new(ble_profile(serial, &name, ixit)).radio("ble", move || {
        Box::new(hilt_link::ble::FakeCentral::new(vec![d.clone()]))
    })
}

fn services_ixit(services: &[&str]) -> String {
    let list: Vec<String> = services.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "[ixit.\"15-Intf\".ble]\n\"Description\" = {{ description = \"radio\", services = [{}] }}\n",
        list.join(", ")
    )
}

#[test]
fn gatt_services_pass_when_declared_and_fail_naming_the_undeclared_one() {
    let c = case("exposed-interfaces/ble-gatt-declared.toml");
    let all = [
        "0x180a",
        "00000100-0065-6c62-2e74-6f696d2e696d",
        "0xfe95",
        "ebe0ccb0-7a0a-4b0c-8a1a-6ff2997da3a6",
        "00010203-0405-0607-0809-0a0b0c0d1912",
        "0x180f",
    ];
    let bench = ble_bench("xiaomi-lywsd03mmc.json", "REC-0001", &services_ixit(&all));
    let (v, why) = judge(&bench, &c);
    assert_eq!(v, Verdict::Pass, "{why}");
    let bench = ble_bench(
        "xiaomi-lywsd03mmc.json",
        "REC-0001",
        &services_ixit(&all[..5]),
    );
    let (v, why) = judge(&bench, &c);
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("0x180f"), "{why}");
    assert!(!why.contains("0x180a"), "{why}");
}

#[test]
fn a_device_not_heard_or_no_radio_is_not_tested() {
    let c = case("exposed-interfaces/ble-gatt-declared.toml");
    let ixit = services_ixit(&["0x180f"]);
    let bench = FakeBench::new(ble_profile("REC-0001", "Nobody", &ixit)).radio("ble", || {
        Box::new(hilt_link::ble::FakeCentral::new(vec![ble_fixture(
            "polar-h10.json",
        )]))
    });
    let (v, why) = judge(&bench, &c);
    assert_eq!(v, Verdict::NotTested, "{why}");
    assert!(why.contains("no device matching name \"Nobody\""), "{why}");
    assert!(why.contains("Polar H10"), "{why}");
    let bench = FakeBench::new(ble_profile("REC-0001", "Nobody", &ixit)).radio("ble", || {
        Box::new(hilt_link::ble::FakeCentral::without_adapter())
    });
    let (v, why) = judge(&bench, &c);
    assert_eq!(v, Verdict::NotTested, "{why}");
    assert!(why.contains("no Bluetooth adapter"), "{why}");
}

/// A survey and a `ble-excludes` of the unit's serial number.
fn serial_case(dir: &Path) -> hilt::suite::Case {
    let text = r#"
schema = 1
id = "t.ble.serial"
title = "t"
kind = "functional"
purpose = "p"
pass_criteria = "c"
[provisions]
en303645 = ["5.6-2"]
[[step]]
id = "survey"
action = "survey-ble"
with = {}
expect = ["surveyed"]
[[check]]
kind = "ble-excludes"
step = "survey"
values = { serial-number = "{unit.serial}" }
"#;
    inline_case(dir, text)
}

#[test]
fn a_serial_number_advertised_and_readable_unpaired_fails_and_a_refused_one_passes() {
    let dir = tempfile::tempdir().unwrap();
    let c = serial_case(dir.path());
    // The Polar H10 puts its device id in its advertised name and serves it in Device Information.
    let (v, why) = judge(&ble_bench("polar-h10.json", "5A3C9E01", ""), &c);
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(
        why.contains("serial-number (utf-8) in the advertised name"),
        "{why}"
    );
    assert!(why.contains("characteristic 0x2a25"), "{why}");
    assert!(
        !why.contains("5A3C9E01"),
        "the value itself is never shown: {why}"
    );
    // The NUS sample with authentication: nothing of the unit is readable unpaired.
    let (v, why) = judge(
        &ble_bench("nrf52840dk-peripheral-uart-authen.json", "NRF-0001234", ""),
        &c,
    );
    assert_eq!(v, Verdict::Pass, "{why}");
}

#[test]
fn an_action_bound_over_ble_reads_values_with_expect_steps_as_over_a_console() {
    let dir = tempfile::tempdir().unwrap();
    let bindings = r#"
[bindings.identify]
link = "ble"
[[bindings.identify.steps]]
ble = { read = "0x2a24" }
[[bindings.identify.steps]]
expect = 'read 0x2a24: [0-9a-f]+ "(?P<model>[^"]+)"\n'
[[bindings.identify.steps]]
ble = { read = "0x2a26" }
[[bindings.identify.steps]]
expect = 'read 0x2a26: [0-9a-f]+ "(?P<firmware>[^"]+)"\n'
"#;
    let d = ble_fixture("polar-h10.json");
    let name = d.advert.local_name.clone().unwrap();
    let bench = FakeBench::new(ble_profile("5A3C9E01", &name, bindings)).radio("ble", move || {
        Box::new(hilt_link::ble::FakeCentral::new(vec![d.clone()]))
    });
    let text = r#"
schema = 1
id = "t.ble.identify"
title = "t"
kind = "functional"
purpose = "p"
pass_criteria = "c"
[provisions]
en303645 = ["5.6-2"]
[[step]]
id = "who"
action = "identify"
with = {}
[[check]]
kind = "capture-equals"
step = "who"
capture = "model"
expected = "Polar H10"
"#;
    let (v, why, run) = judge_run(&bench, &inline_case(dir.path(), text));
    assert_eq!(v, Verdict::Pass, "{why}");
    let transcript = run
        .evidence
        .iter()
        .find(|e| e.name.contains("ble"))
        .map(|e| String::from_utf8_lossy(&e.bytes).to_string())
        .unwrap_or_else(|| {
            panic!(
                "{:?}",
                run.evidence.iter().map(|e| &e.name).collect::<Vec<_>>()
            )
        });
    assert!(
        transcript.contains("read 0x2a26: 302e302e30 \"0.0.0\""),
        "{transcript}"
    );
}
