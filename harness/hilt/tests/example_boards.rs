//! The example profiles for real boards (boards/examples/: a probe-rs board, an OpenOCD GDB server, an
//! esptool dump, an ESP32-S3 on its native USB, an nRF52840 DK over BLE, a board behind an FTDI
//! cable) load and run on a machine without their hardware, and every case that needs it is
//! NOT_TESTED with the reason (what could not be reached), never PASS and never the device's FAIL.
//! Their links and bindings are also run against recorded devices of the same models (the USB and
//! BLE fixtures in harness/link/tests/fixtures/) and scripted consoles, so the examples say what they
//! do.

use std::path::Path;
use std::sync::Arc;

use hilt::fake::{FakeBench, Reply};
use hilt_link::ble::FakeCentral;
use hilt_link::usb::{FakeBus, UsbBus};
use hilt_model::Verdict;
use hilt_model::profile::BoardProfile;

mod common;
use common::{case, hilt_cmd, inline_case, judge, root, text};

/// Runs `filter` against example `board`; the one case's (verdict, reason).
fn run(board: &str, filter: &str) -> (String, String) {
    run_with(board, filter, &[])
}

/// [`run`] with these environment variables set (a unit's password, so that a case gets as far as
/// the device).
fn run_with(board: &str, filter: &str, env: &[(&str, &str)]) -> (String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let board = root().join("boards/examples").join(board);
    let o = hilt_cmd(
        &[
            "run",
            "--board",
            board.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--exact",
            filter,
        ],
        tmp.path(),
    )
    .envs(env.iter().copied())
    .output()
    .expect("run hilt");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("report.json")).unwrap_or_else(|e| panic!("{e}: {}", text(&o))),
    )
    .unwrap();
    let cases = report["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{}", text(&o));
    let c = &cases[0];
    (
        c["verdict"].as_str().unwrap().to_string(),
        c["reason"].as_str().unwrap().to_string(),
    )
}

#[test]
fn a_probe_rs_board_without_its_probe_is_not_tested_saying_so() {
    let (v, why) = run("nrf52840-dk-probe-rs.toml", "ex.debug.port-locked");
    assert_eq!(v, "NOT_TESTED", "{why}");
    assert!(
        why.contains("probe-rs nRF52840_xxAA via 1366:1015:000683000001 cannot be reached"),
        "{why}"
    );
}

#[test]
fn a_gdb_server_board_without_its_server_is_not_tested_saying_so() {
    // Nothing may listen on OpenOCD's port for this to mean anything: say so rather than pass.
    assert!(
        std::net::TcpStream::connect("127.0.0.1:3333").is_err(),
        "something listens on 127.0.0.1:3333 (an OpenOCD?): stop it to run this test"
    );
    let (v, why) = run("openocd-gdb.toml", "ex.debug.port-locked");
    assert_eq!(v, "NOT_TESTED", "{why}");
    assert!(
        why.contains("gdb-remote 127.0.0.1:3333 cannot be reached"),
        "{why}"
    );
}

#[test]
fn a_vendor_dump_without_its_tool_or_board_is_not_tested_saying_so() {
    let (v, why) = run("esp32-esptool.toml", "ea.fleet.no-shared-secrets");
    assert_eq!(v, "NOT_TESTED", "{why}");
    assert!(why.contains("esptool.py"), "{why}");
    assert!(why.contains("cannot be reached"), "{why}");
}

/// Says whether `why` is one of `wordings` (the same trouble is said differently on a machine with no
/// USB bus or Bluetooth at all and on one where only the device is missing).
fn says_one_of(why: &str, wordings: &[&str]) -> bool {
    wordings.iter().any(|w| why.contains(w))
}

#[test]
fn a_native_usb_board_not_on_the_bus_is_not_tested_saying_so() {
    let (v, why) = run("esp32s3-devkit-usb.toml", "ex.usb.interfaces-declared");
    assert_eq!(v, "NOT_TESTED", "{why}");
    assert!(
        says_one_of(
            &why,
            &[
                "no USB bus on this machine",
                "no USB device 303a:1001:F4:12:FA:5B:2C:10 is attached",
            ]
        ),
        "{why}"
    );
}

#[test]
fn a_console_behind_an_absent_ftdi_cable_is_not_tested_saying_so() {
    // With the unit's password given, the case gets as far as opening the console.
    let (v, why) = run_with(
        "ftdi-uart-board.toml",
        "up.console.model-designation",
        &[("HILT_HUB_PASSWORD", "placeholder-not-a-real-password")],
    );
    assert_eq!(v, "NOT_TESTED", "{why}");
    assert!(
        why.contains("link console: no USB serial port matches 0403:6001:A50285BI"),
        "{why}"
    );
    assert!(
        says_one_of(
            &why,
            &[
                "no USB bus on this machine",
                "no USB devices are present",
                "present: "
            ]
        ),
        "{why}"
    );
}

#[test]
fn a_console_whose_exporter_is_down_is_not_tested_saying_so() {
    // Nothing may listen where the example's exporter would be for this to mean anything.
    assert!(
        std::net::TcpStream::connect("127.0.0.1:2000").is_err(),
        "something listens on 127.0.0.1:2000 (a ser2net?): stop it to run this test"
    );
    let (v, why) = run_with(
        "ser2net-rfc2217.toml",
        "up.console.model-designation",
        &[("HILT_HUB_PASSWORD", "placeholder-not-a-real-password")],
    );
    assert_eq!(v, "NOT_TESTED", "{why}");
    assert!(
        why.contains("link console: serial server 127.0.0.1:2000"),
        "{why}"
    );
}

#[test]
fn a_ble_board_without_bluetooth_or_out_of_range_is_not_tested_saying_so() {
    let (v, why) = run("nrf52840-dk-ble.toml", "ex.ble.gatt-declared");
    assert_eq!(v, "NOT_TESTED", "{why}");
    assert!(
        says_one_of(
            &why,
            &[
                "no Bluetooth adapter on this machine",
                "no device matching name \"Nordic_UART_Service\"",
            ]
        ),
        "{why}"
    );
}

fn example(name: &str) -> BoardProfile {
    let path = root().join("boards/examples").join(name);
    BoardProfile::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_esp32s3_example_fails_its_open_usb_jtag_on_the_recorded_descriptors() {
    let fixture = root().join("harness/link/tests/fixtures/usb/esp32s3-usb-serial-jtag.json");
    let d = FakeBus::recorded(&fixture).unwrap();
    // The recorded unit's USB serial (its MAC) is the example's unit serial.
    let bench = FakeBench::new(example("esp32s3-devkit-usb.toml")).usb_bus(
        "usb",
        Arc::new(FakeBus::new(vec![d])) as Arc<dyn UsbBus + Send + Sync>,
    );
    let (v, why) = judge(
        &bench,
        &case("exposed-interfaces/usb-interfaces-declared.toml"),
    );
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("not declared protected"), "{why}");
    assert!(why.contains("interface 2 (debug"), "{why}");
    assert!(
        !why.contains("interface 0"),
        "the console is declared: {why}"
    );
}

#[test]
fn the_nus_example_declares_every_gatt_service_of_the_recorded_sample() {
    let fixture =
        root().join("harness/link/tests/fixtures/ble/nrf52840dk-peripheral-uart-authen.json");
    let d = FakeCentral::recorded(&fixture).unwrap();
    let bench = FakeBench::new(example("nrf52840-dk-ble.toml"))
        .radio("ble", move || Box::new(FakeCentral::new(vec![d.clone()])));
    let (v, why) = judge(&bench, &case("exposed-interfaces/ble-gatt-declared.toml"));
    assert_eq!(v, Verdict::Pass, "{why}");
}

/// An ESP-IDF console as the ESP32-S3 example expects it: coloured prompt, `login USER` then the
/// password, `info`, `logout`.
fn esp_idf_console() -> impl FnMut(&str) -> Reply + Send {
    const PROMPT: &str = "\x1b[0;32mesp32s3> \x1b[0m";
    let mut asked = false;
    move |line: &str| {
        let said = if asked {
            asked = false;
            if line == "s3cret-pass" {
                "login: ok\r\n".to_string()
            } else {
                "login: incorrect\r\n".to_string()
            }
        } else {
            match line {
                "login admin" => {
                    asked = true;
                    return Reply::say("Password: ");
                }
                "info" => {
                    "model: EXAMPLE-S3\r\nserial: F4:12:FA:5B:2C:10\r\nfirmware: 1.0.0\r\n".into()
                }
                "logout" => "logout: ok\r\n".into(),
                "" => "\r\n".into(),
                other => format!("Unrecognized command: {other}\r\n"),
            }
        };
        Reply::Say(format!("{said}{PROMPT}").into_bytes())
    }
}

/// A getty and shell as the FTDI example expects them, with pam_faillock's notice once `locked`.
fn linux_getty(locked: bool) -> impl FnMut(&str) -> Reply + Send {
    #[derive(PartialEq)]
    enum At {
        Login,
        Password,
        Shell,
    }
    let mut at = At::Login;
    move |line: &str| match at {
        At::Login if line.is_empty() => Reply::say("\r\n\r\nhub login: "),
        At::Login => {
            at = At::Password;
            if locked {
                Reply::say(
                    "The account is locked due to 5 failed logins.\r\n(10 minutes left to unlock)\r\nPassword: ",
                )
            } else {
                Reply::say("Password: ")
            }
        }
        At::Password if line == "s3cret-pass" && !locked => {
            at = At::Shell;
            Reply::say("\r\nLast login: Mon Nov 30 10:00:00 on ttyS0\r\nadmin@hub:~$ ")
        }
        At::Password => {
            at = At::Login;
            Reply::say("\r\nLogin incorrect\r\nhub login: ")
        }
        At::Shell if line == "exit" => {
            at = At::Login;
            Reply::say("logout\r\n\r\nhub login: ")
        }
        At::Shell if line == "cat /etc/product" => {
            Reply::say("MODEL=EXAMPLE-HUB\r\nSERIAL=HUB2-004711\r\nVERSION=3.1.0\r\nadmin@hub:~$ ")
        }
        At::Shell => Reply::say("\r\nadmin@hub:~$ "),
    }
}

#[test]
fn the_console_examples_log_in_identify_and_log_out_on_scripted_consoles() {
    let c = case("software-updates/model-designation.toml");
    let bench = FakeBench::new(example("esp32s3-devkit-usb.toml"))
        .password("console", "s3cret-pass")
        .device("console", esp_idf_console);
    let (v, why) = judge(&bench, &c);
    assert_eq!(v, Verdict::Pass, "esp32s3: {why}");
    let bench = FakeBench::new(example("ftdi-uart-board.toml"))
        .password("console", "s3cret-pass")
        .device("console", || linux_getty(false));
    let (v, why) = judge(&bench, &c);
    assert_eq!(v, Verdict::Pass, "ftdi: {why}");
}

#[test]
fn the_ftdi_example_tells_a_lockout_from_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = |expect: &str| {
        let text = format!(
            r#"
schema = 1
id = "t.console.login"
title = "t"
kind = "functional"
purpose = "p"
pass_criteria = "c"
[provisions]
en303645 = ["5.1-5"]
[[step]]
id = "log-in"
action = "login"
with = {{ username = "{{cred.console.username}}", password = "{{cred.console.password}}" }}
expect = ["{expect}"]
"#
        );
        inline_case(dir.path(), &text)
    };
    for (locked, password, outcome) in [
        (true, "s3cret-pass", "locked"),
        (false, "wrong-pass", "rejected"),
        (false, "s3cret-pass", "accepted"),
    ] {
        let bench = FakeBench::new(example("ftdi-uart-board.toml"))
            .password("console", password)
            .device("console", move || linux_getty(locked));
        let (v, why) = judge(&bench, &scenario(outcome));
        assert_eq!(v, Verdict::Pass, "{outcome}: {why}");
    }
}

#[test]
fn identify_over_nus_stops_at_the_samples_refusal_unpaired_never_a_verdict_on_the_device() {
    // The example's binding, with a shorter wait for the answer that does not come.
    let path = root().join("boards/examples/nrf52840-dk-ble.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("timeout_ms = 10000"));
    let profile = BoardProfile::parse(
        &path,
        &text.replace("timeout_ms = 10000", "timeout_ms = 300"),
    )
    .unwrap();
    let fixture =
        root().join("harness/link/tests/fixtures/ble/nrf52840dk-peripheral-uart-authen.json");
    let d = FakeCentral::recorded(&fixture).unwrap();
    let bench =
        FakeBench::new(profile).radio("ble", move || Box::new(FakeCentral::new(vec![d.clone()])));
    let (v, why) = judge(&bench, &case("software-updates/model-designation.toml"));
    // The case logs in first, which this board has no binding for.
    assert_eq!(v, Verdict::NotTested, "{why}");
    assert!(why.contains("no binding for action \"login\""), "{why}");
    let dir = tempfile::tempdir().unwrap();
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
expected = "EXAMPLE-NUS"
"#;
    let c = inline_case(dir.path(), text);
    let (v, why) = judge(&bench, &c);
    assert_eq!(v, Verdict::Error, "{why}");
    assert!(
        why.contains(
            "subscribe 6e400003-b5a3-f393-e0a9-e50e24dcca9e: refused insufficient-authentication"
        ),
        "{why}"
    );
}

#[test]
fn every_example_profile_loads() {
    let dir = root().join("boards/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        hilt_model::profile::BoardProfile::load(Path::new(&path))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 6, "{seen} example profiles");
}
