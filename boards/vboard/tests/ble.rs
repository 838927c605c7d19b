//! The board's BLE radio, driven as hilt's socket central drives it: JSON lines over a Unix stream
//! socket. The radio is started in-process for the protocol's edges (malformed and overlong lines,
//! hang-ups, notifications between replies, shutdown), and through the board binary for what the
//! console changes (the owner's name) and the defects.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use hilt_link::ble::wire::{Line, MAX_LINE, Reply, Request};
use hilt_link::ble::{BleUuid, CharProperty, GattService};
use hilt_vboard::DefectSet;
use hilt_vboard::ble::{
    BATTERY_LEVEL, BleRadio, DeviceFacts, FACTORY_TEST_CHAR, FACTORY_TEST_SERVICE, MAX_CONNECTIONS,
    OWNER_NAME_CHAR, PROVISIONING_SERVICE, Peripheral, SharedFacts, WIFI_SSID_CHAR,
};
use support::{command, login, spawn, stop};

const SERIAL: BleUuid = BleUuid::from_u16(0x2a25);
const FIRMWARE: BleUuid = BleUuid::from_u16(0x2a26);
const DEVICE_NAME: BleUuid = BleUuid::from_u16(0x2a00);
const AUTH: &str = "insufficient-authentication";

/// A central on one connection; notifications seen while waiting for replies are kept.
struct Central {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    notified: Vec<(BleUuid, String)>,
}

impl Central {
    fn connect(path: &Path) -> Self {
        let writer = UnixStream::connect(path).expect("connect to the radio");
        writer
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let reader = BufReader::new(writer.try_clone().unwrap());
        Self {
            reader,
            writer,
            notified: Vec::new(),
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// The next line; `None` at end of file.
    fn line(&mut self) -> Option<Line> {
        let mut text = String::new();
        let n = self.reader.read_line(&mut text).expect("a line in time");
        (n > 0).then(|| serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}")))
    }

    /// The next reply, keeping the notifications before it.
    fn reply(&mut self) -> Reply {
        loop {
            match self.line().expect("a reply before the end") {
                Line::Reply(r) => return r,
                Line::Notify { char, value } => self.notified.push((char, value)),
            }
        }
    }

    fn ask(&mut self, request: &Request) -> Reply {
        let mut text = serde_json::to_vec(request).unwrap();
        text.push(b'\n');
        self.send_raw(&text);
        self.reply()
    }

    fn read(&mut self, char: BleUuid) -> Reply {
        self.ask(&Request::Read { char })
    }

    fn advertised_name(&mut self) -> Option<String> {
        match self.ask(&Request::Advertise) {
            Reply::Advert(a) => a.local_name,
            other => panic!("no advert: {other:?}"),
        }
    }
}

fn att(name: &str) -> Reply {
    Reply::Att(name.into())
}

fn text(value: &str) -> Reply {
    Reply::Value(hex::encode(value))
}

fn facts(owner: Option<&str>) -> SharedFacts {
    SharedFacts::new(DeviceFacts {
        serial: "VRB-00000001".into(),
        firmware: "1.0.0".into(),
        owner_name: owner.map(str::to_string),
    })
}

/// A radio in a fresh directory, showing `facts`.
fn radio(dir: &Path, defects: &[&str], facts: &SharedFacts) -> (BleRadio, std::path::PathBuf) {
    let path = dir.join("ble.sock");
    let defects = DefectSet::parse(defects).unwrap();
    let peripheral = Peripheral::new(facts.clone(), &defects, 1);
    (BleRadio::start(&path, peripheral).unwrap(), path)
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn services(central: &mut Central) -> Vec<GattService> {
    match central.ask(&Request::Services) {
        Reply::Services(s) => s,
        other => panic!("no services: {other:?}"),
    }
}

/// A characteristic as declared: its UUID and properties.
type Declared = (String, Vec<CharProperty>);

#[test]
fn the_conformant_gatt_table_and_advertisement() {
    let tmp = tempfile::tempdir().unwrap();
    let (_radio, path) = radio(tmp.path(), &[], &facts(Some("Alice")));
    let mut c = Central::connect(&path);
    let table: Vec<(String, Vec<Declared>)> = services(&mut c)
        .into_iter()
        .map(|s| {
            let chars = s.characteristics.into_iter();
            let chars = chars.map(|c| (c.uuid.to_string(), c.properties)).collect();
            (s.uuid.to_string(), chars)
        })
        .collect();
    use CharProperty::{Indicate, Notify, Read, Write};
    let s = |u: &str| u.to_string();
    assert_eq!(
        table,
        vec![
            (
                s("0x1800"),
                vec![(s("0x2a00"), vec![Read]), (s("0x2a01"), vec![Read])]
            ),
            (s("0x1801"), vec![(s("0x2a05"), vec![Indicate])]),
            (
                s("0x180a"),
                vec![
                    (s("0x2a29"), vec![Read]),
                    (s("0x2a24"), vec![Read]),
                    (s("0x2a25"), vec![Read]),
                    (s("0x2a26"), vec![Read]),
                ]
            ),
            (s("0x180f"), vec![(s("0x2a19"), vec![Read, Notify])]),
            (
                PROVISIONING_SERVICE.to_string(),
                vec![
                    (WIFI_SSID_CHAR.to_string(), vec![Write]),
                    (OWNER_NAME_CHAR.to_string(), vec![Read]),
                ]
            ),
        ]
    );
    assert_eq!(c.read(DEVICE_NAME), text("VRB-1"));
    assert_eq!(
        c.read(BleUuid::from_u16(0x2a01)),
        Reply::Value("0000".into())
    );
    assert_eq!(c.read(BleUuid::from_u16(0x2a29)), text("hilt project"));
    assert_eq!(c.read(BleUuid::from_u16(0x2a24)), text("VRB-1"));
    assert_eq!(c.read(BATTERY_LEVEL), Reply::Value("64".into()));
    let Reply::Advert(advert) = c.ask(&Request::Advertise) else {
        panic!("no advert")
    };
    assert_eq!(advert.address, "C0:FF:EE:00:00:01");
    assert_eq!(advert.local_name.as_deref(), Some("VRB-1"));
    assert_eq!(
        advert.services,
        [BleUuid::from_u16(0x180f), PROVISIONING_SERVICE]
    );
    assert_eq!(
        advert.manufacturer_data.into_iter().collect::<Vec<_>>(),
        [(0xffff, "01".into())]
    );
    assert!(advert.service_data.is_empty());
}

#[test]
fn an_unpaired_central_is_refused_what_identifies_the_unit_or_its_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let (_radio, path) = radio(tmp.path(), &[], &facts(Some("Alice")));
    let mut c = Central::connect(&path);
    assert_eq!(c.read(SERIAL), att(AUTH));
    assert_eq!(c.read(FIRMWARE), att(AUTH));
    assert_eq!(c.read(OWNER_NAME_CHAR), att(AUTH));
    let ssid = Request::Write {
        char: WIFI_SSID_CHAR,
        value: hex::encode("evil-ap"),
        with_response: true,
    };
    assert_eq!(c.ask(&ssid), att(AUTH));
    assert_eq!(c.read(WIFI_SSID_CHAR), att("read-not-permitted"));
    assert_eq!(c.read(FACTORY_TEST_CHAR), att("attribute-not-found"));
    let write_name = Request::Write {
        char: DEVICE_NAME,
        value: "00".into(),
        with_response: false,
    };
    assert_eq!(c.ask(&write_name), att("write-not-permitted"));
}

#[test]
fn ble_leaks_serial_makes_the_serial_readable_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = facts(Some("Alice"));
    let (_radio, path) = radio(tmp.path(), &["ble-leaks-serial"], &shared);
    let mut c = Central::connect(&path);
    assert_eq!(c.read(SERIAL), text("VRB-00000001"));
    assert_eq!(c.read(FIRMWARE), att(AUTH));
    assert_eq!(c.read(OWNER_NAME_CHAR), att(AUTH));
    assert_eq!(c.advertised_name().as_deref(), Some("VRB-1"));
    assert_eq!(services(&mut c).len(), 5);
}

#[test]
fn ble_advertises_owner_broadcasts_the_live_owner_name() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = facts(None);
    let (_radio, path) = radio(tmp.path(), &["ble-advertises-owner"], &shared);
    let mut c = Central::connect(&path);
    assert_eq!(
        c.advertised_name().as_deref(),
        Some("VRB-1"),
        "no owner yet"
    );
    let mut now = shared.get();
    now.owner_name = Some("Alice Example".into());
    shared.set(&now);
    assert_eq!(c.advertised_name().as_deref(), Some("Alice Example's VRB"));
    assert_eq!(c.read(DEVICE_NAME), text("VRB-1"), "the GATT name stays");
    assert_eq!(c.read(OWNER_NAME_CHAR), att(AUTH));
    assert_eq!(c.read(SERIAL), att(AUTH));
}

#[test]
fn ble_extra_service_adds_a_write_only_test_service_that_reveals_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = facts(Some("Alice"));
    let (_radio, path) = radio(tmp.path(), &["ble-extra-service"], &shared);
    let mut c = Central::connect(&path);
    let mut table = services(&mut c);
    let extra = table.pop().unwrap();
    assert_eq!(table.len(), 5);
    assert_eq!(extra.uuid, FACTORY_TEST_SERVICE);
    assert_eq!(extra.characteristics.len(), 1);
    let test_char = &extra.characteristics[0];
    assert_eq!(
        (test_char.uuid, test_char.properties.as_slice()),
        (FACTORY_TEST_CHAR, &[CharProperty::Write][..])
    );
    assert_eq!(c.read(FACTORY_TEST_CHAR), att("read-not-permitted"));
    assert_eq!(
        c.ask(&Request::Subscribe {
            char: FACTORY_TEST_CHAR
        }),
        att("request-not-supported")
    );
    let poke = Request::Write {
        char: FACTORY_TEST_CHAR,
        value: "deadbeef".into(),
        with_response: true,
    };
    assert_eq!(c.ask(&poke), Reply::Done);
    assert_eq!(c.read(SERIAL), att(AUTH));
    assert_eq!(c.advertised_name().as_deref(), Some("VRB-1"));
}

#[test]
fn malformed_and_overlong_lines_are_answered_invalid_pdu_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (_radio, path) = radio(tmp.path(), &[], &facts(None));
    let mut c = Central::connect(&path);
    c.send_raw(b"not json\n{\"op\":\"read\"}\n{\"op\":\"read\",\"char\":\"0x2a00\"}\n");
    assert_eq!(c.reply(), att("invalid-pdu"));
    assert_eq!(c.reply(), att("invalid-pdu"));
    assert_eq!(c.reply(), text("VRB-1"));
    c.send_raw(b"\xff\xfe\n{\"op\":\"write\",\"char\":\"0x2a00\",\"value\":\"xyz\",\"with_response\":true}\n");
    assert_eq!(c.reply(), att("invalid-pdu"));
    assert_eq!(c.reply(), att("invalid-pdu"));
    // A line past the limit is answered once, and the connection goes on.
    let long = vec![b'a'; MAX_LINE + 4096];
    c.send_raw(&long);
    c.send_raw(b"\n{\"op\":\"read\",\"char\":\"0x2a24\"}\n");
    assert_eq!(c.reply(), att("invalid-pdu"));
    assert_eq!(c.reply(), text("VRB-1"));
}

#[test]
fn hang_ups_end_their_threads_and_connections_follow_one_another() {
    let tmp = tempfile::tempdir().unwrap();
    let (radio, path) = radio(tmp.path(), &[], &facts(None));
    for _ in 0..40 {
        // A hang-up ends its thread soon, not at once: on a loaded machine a central that reconnects
        // at full speed could find every slot still taken, as it could on a real peripheral.
        wait_until("a free connection slot", || {
            radio.connections() < MAX_CONNECTIONS
        });
        let mut c = Central::connect(&path);
        assert!(matches!(c.ask(&Request::Advertise), Reply::Advert(_)));
    }
    {
        let mut c = Central::connect(&path);
        c.send_raw(b"{\"op\":\"adv");
        assert_eq!(
            c.ask(&Request::Subscribe {
                char: BATTERY_LEVEL
            }),
            att("invalid-pdu")
        );
    }
    wait_until("every connection thread to end", || {
        radio.connections() == 0
    });
    let mut c = Central::connect(&path);
    assert_eq!(c.read(DEVICE_NAME), text("VRB-1"));
}

#[test]
fn connections_beyond_the_limit_are_closed_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (radio, path) = radio(tmp.path(), &[], &facts(None));
    let mut open: Vec<Central> = (0..MAX_CONNECTIONS)
        .map(|_| Central::connect(&path))
        .collect();
    for c in &mut open {
        assert_eq!(c.read(DEVICE_NAME), text("VRB-1"));
    }
    let mut extra = Central::connect(&path);
    assert_eq!(extra.line(), None, "closed without an answer");
    assert_eq!(radio.connections(), MAX_CONNECTIONS);
    drop(open.pop());
    wait_until("a connection to end", || {
        radio.connections() < MAX_CONNECTIONS
    });
    let mut c = Central::connect(&path);
    assert_eq!(c.read(DEVICE_NAME), text("VRB-1"));
}

#[test]
fn notifications_arrive_between_replies_while_subscribed() {
    let tmp = tempfile::tempdir().unwrap();
    let (_radio, path) = radio(tmp.path(), &[], &facts(None));
    let mut c = Central::connect(&path);
    assert_eq!(
        c.ask(&Request::Subscribe {
            char: BATTERY_LEVEL
        }),
        Reply::Done
    );
    assert_eq!(
        c.ask(&Request::Subscribe {
            char: BleUuid::from_u16(0x2a05)
        }),
        Reply::Done
    );
    assert_eq!(
        c.ask(&Request::Subscribe { char: DEVICE_NAME }),
        att("request-not-supported")
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1300) {
        assert_eq!(c.read(DEVICE_NAME), text("VRB-1"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let n = c.notified.len();
    assert!(
        (2..=3).contains(&n),
        "{n} notifications in 1.3 s at one per 500 ms"
    );
    assert!(
        c.notified
            .iter()
            .all(|(char, v)| *char == BATTERY_LEVEL && v == "64")
    );
}

#[test]
fn shutdown_ends_open_connections_and_removes_the_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let (radio, path) = radio(tmp.path(), &[], &facts(None));
    let mut idle = Central::connect(&path);
    assert_eq!(
        idle.ask(&Request::Subscribe {
            char: BATTERY_LEVEL
        }),
        Reply::Done
    );
    let started = Instant::now();
    radio.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(!path.exists());
    while let Some(line) = idle.line() {
        assert!(matches!(line, Line::Notify { .. }), "{line:?}");
    }
}

#[test]
fn a_stale_socket_is_replaced_but_another_file_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ble.sock");
    drop(UnixListener::bind(&path).unwrap());
    let peripheral = Peripheral::new(facts(None), &DefectSet::default(), 1);
    let radio = BleRadio::start(&path, peripheral.clone()).expect("a stale socket is replaced");
    assert_eq!(Central::connect(&path).read(DEVICE_NAME), text("VRB-1"));
    drop(radio);
    let file = tmp.path().join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    assert!(BleRadio::start(&file, peripheral).is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn the_board_serves_its_radio_with_the_owner_name_set_on_the_console() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("ble.sock");
    let sock_arg = sock.to_str().unwrap();
    let extra = [
        "--ble",
        sock_arg,
        "--serial",
        "VRB-00000003",
        "--factory-seq",
        "3",
    ];
    let mut board = spawn(tmp.path(), &extra, "warn");
    // Listening before the ready line.
    let mut c = Central::connect(&sock);
    let Reply::Advert(advert) = c.ask(&Request::Advertise) else {
        panic!("no advert")
    };
    assert_eq!(advert.address, "C0:FF:EE:00:00:03");
    let mut port = login(&board, tmp.path());
    let out = command(&mut port, "set name Alice Example");
    assert!(out.contains("set: name saved"), "{out}");
    assert_eq!(c.advertised_name().as_deref(), Some("VRB-1"));
    assert_eq!(c.read(OWNER_NAME_CHAR), att(AUTH));
    assert_eq!(c.read(SERIAL), att(AUTH));
    stop(&mut board);
    assert!(!sock.exists(), "the socket goes with the board");
}

#[test]
fn the_board_under_ble_defects_leaks_serial_and_owner_name() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("ble.sock");
    let extra = [
        "--ble",
        sock.to_str().unwrap(),
        "--serial",
        "VRB-00000002",
        "--defect",
        "ble-advertises-owner",
        "--defect",
        "ble-leaks-serial",
    ];
    let mut board = spawn(tmp.path(), &extra, "warn");
    let mut c = Central::connect(&sock);
    assert_eq!(c.read(SERIAL), text("VRB-00000002"));
    assert_eq!(c.advertised_name().as_deref(), Some("VRB-1"));
    let mut port = login(&board, tmp.path());
    command(&mut port, "set name Alice");
    assert_eq!(c.advertised_name().as_deref(), Some("Alice's VRB"));
    // The name survives a reboot, and so does its broadcast.
    support::send(&mut port, "reboot\r");
    support::expect(&mut port, "login: ");
    assert_eq!(
        Central::connect(&sock).advertised_name().as_deref(),
        Some("Alice's VRB")
    );
    stop(&mut board);
}
