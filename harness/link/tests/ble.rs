//! BLE backends: the fake radio over recorded devices (`tests/fixtures/ble/`), the socket central
//! against simulated peripherals written here (well-behaved and hostile), and btleplug on whatever
//! this machine has (normally no Bluetooth: then `NoAdapter`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hilt_link::Cancel;
use hilt_link::ble::wire::{Line, MAX_LINE, Reply, Request};
use hilt_link::ble::{
    BleCentral, BleError, BleUuid, BtleplugCentral, FakeCentral, RecordedDevice, ScanFilter,
    SocketCentral, Written,
};

const SEC: Duration = Duration::from_secs(1);
/// Far above anything these tests wait for when all is well: only a hang reaches it.
const GENEROUS: Duration = Duration::from_secs(10);

fn uuid(s: &str) -> BleUuid {
    s.parse().unwrap()
}

fn fixture(name: &str) -> RecordedDevice {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ble")
        .join(name);
    FakeCentral::recorded(&p).unwrap()
}

const LYWSD03MMC: &str = "A4:C1:38:5D:7E:21";
const NUS_DK: &str = "E6:5A:41:0C:93:D2";
const NUS_DK_AUTHEN: &str = "D3:19:7B:E0:45:AF";
const POLAR: &str = "E8:9C:4F:12:A6:3B";
const NUS_RX: &str = "6e400002-b5a3-f393-e0a9-e50e24dcca9e";
const NUS_TX: &str = "6e400003-b5a3-f393-e0a9-e50e24dcca9e";

fn bench() -> FakeCentral {
    FakeCentral::new(
        [
            "xiaomi-lywsd03mmc.json",
            "nrf52840dk-peripheral-uart.json",
            "nrf52840dk-peripheral-uart-authen.json",
            "polar-h10.json",
        ]
        .map(fixture)
        .to_vec(),
    )
}

fn filter(name: Option<&str>, address: Option<&str>, service: Option<&str>) -> ScanFilter {
    ScanFilter {
        name: name.map(Into::into),
        address: address.map(Into::into),
        service: service.map(uuid),
    }
}

// ---------------------------------------------------------------------------------------------
// FakeCentral over the recorded devices

#[test]
fn every_recorded_model_loads_with_its_own_services() {
    let has = |d: &RecordedDevice, s: &str| d.services.iter().any(|x| x.uuid == uuid(s));
    let lyw = fixture("xiaomi-lywsd03mmc.json");
    assert!(has(&lyw, "ebe0ccb0-7a0a-4b0c-8a1a-6ff2997da3a6") && has(&lyw, "0x180f"));
    assert!(lyw.advert.service_data.contains_key(&uuid("0xfe95")));
    let nus = fixture("nrf52840dk-peripheral-uart.json");
    assert!(has(&nus, "6e400001-b5a3-f393-e0a9-e50e24dcca9e"));
    assert!(nus.refusals.is_empty());
    let polar = fixture("polar-h10.json");
    assert!(has(&polar, "0x180d") && has(&polar, "fb005c80-02e7-f387-1cad-8acd2d8df0c8"));
    assert_eq!(polar.advert.manufacturer_data.len(), 1);
}

#[test]
fn a_broken_fixture_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = FakeCentral::recorded(&dir.path().join("nope.json")).unwrap_err();
    assert!(missing.contains("nope.json"), "{missing}");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"advert": {"address": "x"}, "services": [{"uuid": "0x18"}]}"#,
    )
    .unwrap();
    let e = FakeCentral::recorded(&bad).unwrap_err();
    assert!(e.contains("bad.json") && e.contains("BLE UUID"), "{e}");
}

#[test]
fn a_scan_hears_every_device_and_find_picks_one_by_name_address_or_service() {
    let radio = bench();
    let cancel = Cancel::new();
    let seen = radio.scan(SEC, &cancel).unwrap();
    assert_eq!(seen.len(), 4);
    let by_name = radio
        .find(&filter(Some("LYWSD03MMC"), None, None), SEC, &cancel)
        .unwrap();
    assert_eq!(by_name.address, LYWSD03MMC);
    let by_address = radio
        .find(
            &filter(None, Some(&POLAR.to_lowercase()), None),
            SEC,
            &cancel,
        )
        .unwrap();
    assert_eq!(by_address.local_name.as_deref(), Some("Polar H10 5A3C9E01"));
    let by_service = radio
        .find(&filter(None, None, Some("0x180d")), SEC, &cancel)
        .unwrap();
    assert_eq!(by_service.address, POLAR);
    // Name and service together: both must match.
    let both = filter(Some("Nordic_UART_Service"), None, Some("0x180d"));
    assert!(matches!(
        radio.find(&both, SEC, &cancel),
        Err(BleError::NotFound { .. })
    ));
}

#[test]
fn two_boards_of_one_model_are_ambiguous_and_a_missing_one_lists_what_was_seen() {
    let radio = bench();
    let cancel = Cancel::new();
    let nus = filter(None, None, Some("6e400001-b5a3-f393-e0a9-e50e24dcca9e"));
    match radio.find(&nus, SEC, &cancel) {
        Err(BleError::Ambiguous { wanted, seen }) => {
            assert!(wanted.contains("6e400001"), "{wanted}");
            assert_eq!(seen.len(), 2);
            assert!(
                seen.iter().all(|s| s.ends_with("(Nordic_UART_Service)")),
                "{seen:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let e = radio
        .find(
            &filter(Some("Thingy"), None, None),
            Duration::from_millis(1500),
            &cancel,
        )
        .unwrap_err();
    match &e {
        BleError::NotFound {
            wanted,
            waited_ms,
            seen,
        } => {
            assert_eq!((wanted.as_str(), *waited_ms), ("name \"Thingy\"", 1500));
            assert_eq!(seen.len(), 4);
            assert!(
                seen.contains(&format!("{LYWSD03MMC} (LYWSD03MMC)")),
                "{seen:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("seen: "), "{e}");
}

#[test]
fn the_gatt_table_reads_and_properties_are_honoured() {
    let radio = bench();
    let mut p = radio.connect(&LYWSD03MMC.to_lowercase(), SEC).unwrap();
    let services = p.services().unwrap();
    assert_eq!(services.len(), 7);
    let data = services
        .iter()
        .find(|s| s.uuid == uuid("ebe0ccb0-7a0a-4b0c-8a1a-6ff2997da3a6"))
        .unwrap();
    assert_eq!(data.characteristics.len(), 13);
    assert_eq!(p.read(&uuid("0x2a24"), SEC).unwrap(), b"LYWSD03MMC\0");
    assert_eq!(p.read(&uuid("0x2a19"), SEC).unwrap(), [0x63]);
    // History notifications only: no read.
    let history = uuid("ebe0ccbc-7a0a-4b0c-8a1a-6ff2997da3a6");
    assert_eq!(
        p.read(&history, SEC).unwrap_err(),
        BleError::Refused {
            op: "read".into(),
            char: history,
            att: "read-not-permitted".into()
        }
    );
    let battery = uuid("0x2a19");
    assert!(matches!(
        p.write(&battery, &[0], true, SEC),
        Err(BleError::Refused { att, .. }) if att == "write-not-permitted"
    ));
    assert!(matches!(
        p.subscribe(&uuid("0x2a24"), SEC),
        Err(BleError::Refused { att, .. }) if att == "request-not-supported"
    ));
    assert_eq!(
        p.read(&uuid("0x2a37"), SEC).unwrap_err(),
        BleError::NoSuchCharacteristic(uuid("0x2a37"))
    );
    // A write is what the device holds afterwards, and the test can see it.
    let units = uuid("ebe0ccbe-7a0a-4b0c-8a1a-6ff2997da3a6");
    p.write(&units, &[1], true, SEC).unwrap();
    assert_eq!(p.read(&units, SEC).unwrap(), [1]);
    assert_eq!(
        radio.written(LYWSD03MMC),
        [Written {
            char: units,
            value: vec![1],
            with_response: true
        }]
    );
    p.disconnect();
    assert!(matches!(
        p.read(&battery, SEC),
        Err(BleError::Unreachable(_))
    ));
    assert_eq!(radio.connections(LYWSD03MMC), 0);
}

#[test]
fn refusals_are_the_models_att_errors() {
    let radio = bench();
    let (rx, tx) = (uuid(NUS_RX), uuid(NUS_TX));
    // The default sample takes writes from anyone.
    let mut open = radio.connect(NUS_DK, SEC).unwrap();
    open.write(&rx, b"hello\r", false, SEC).unwrap();
    open.subscribe(&tx, SEC).unwrap();
    assert_eq!(radio.written(NUS_DK)[0].value, b"hello\r");
    // Built with CONFIG_BT_NUS_AUTHEN, it wants an authenticated link first.
    let mut locked = radio.connect(NUS_DK_AUTHEN, SEC).unwrap();
    assert_eq!(
        locked.write(&rx, b"hello\r", true, SEC).unwrap_err(),
        BleError::Refused {
            op: "write".into(),
            char: rx,
            att: "insufficient-authentication".into()
        }
    );
    let e = locked.subscribe(&tx, SEC).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("the device refused subscribe of {tx}: insufficient-authentication")
    );
    assert!(radio.written(NUS_DK_AUTHEN).is_empty());
    // The strap's user data needs consent; its index does not.
    let mut polar = radio.connect(POLAR, SEC).unwrap();
    assert!(matches!(
        polar.read(&uuid("0x2a80"), SEC),
        Err(BleError::Refused { att, .. }) if att == "user-data-access-not-permitted"
    ));
    assert_eq!(polar.read(&uuid("0x2a9a"), SEC).unwrap(), [0xff]);
}

#[test]
fn notifications_reach_subscribers_only_in_order() {
    let radio = bench();
    let (hr, battery) = (uuid("0x2a37"), uuid("0x2a19"));
    let mut p = radio.connect(POLAR, SEC).unwrap();
    // Not subscribed yet: nobody receives it, and nobody waits for it.
    assert_eq!(radio.notify(POLAR, &hr, &[0x00, 0x48]), 0);
    let started = Instant::now();
    assert_eq!(p.notification(&hr, GENEROUS).unwrap(), None);
    assert!(started.elapsed() < GENEROUS);
    p.subscribe(&hr, SEC).unwrap();
    p.subscribe(&battery, SEC).unwrap();
    assert_eq!(radio.notify(POLAR, &hr, &[0x10, 0x48, 0x1d, 0x03]), 1);
    assert_eq!(radio.notify(POLAR, &battery, &[0x59]), 1);
    assert_eq!(radio.notify(POLAR, &hr, &[0x10, 0x49, 0x12, 0x03]), 1);
    assert_eq!(p.notification(&battery, SEC).unwrap(), Some(vec![0x59]));
    assert_eq!(
        p.notification(&hr, SEC).unwrap(),
        Some(vec![0x10, 0x48, 0x1d, 0x03])
    );
    assert_eq!(
        p.notification(&hr, SEC).unwrap(),
        Some(vec![0x10, 0x49, 0x12, 0x03])
    );
    let started = Instant::now();
    assert_eq!(
        p.notification(&hr, Duration::from_millis(200)).unwrap(),
        None
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    // A second connection has subscriptions of its own.
    let mut other = radio.connect(POLAR, SEC).unwrap();
    other.subscribe(&hr, SEC).unwrap();
    assert_eq!(radio.notify(POLAR, &hr, &[0x00, 0x50]), 2);
    assert_eq!(
        other.notification(&hr, SEC).unwrap(),
        Some(vec![0x00, 0x50])
    );
    // Out of range: not heard, connections drop.
    assert!(radio.set_in_range(POLAR, false));
    assert!(matches!(
        p.notification(&hr, SEC),
        Err(BleError::Unreachable(_))
    ));
    assert_eq!(radio.scan(SEC, &Cancel::new()).unwrap().len(), 3);
    assert!(matches!(
        radio.connect(POLAR, SEC),
        Err(BleError::NotFound { .. })
    ));
}

#[test]
fn no_adapter_and_cancel_are_said_plainly() {
    let none = FakeCentral::without_adapter();
    let cancel = Cancel::new();
    let e = none.scan(SEC, &cancel).unwrap_err();
    assert!(
        matches!(&e, BleError::NoAdapter(why) if why.contains("system_bus_socket")),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("no Bluetooth adapter on this machine"),
        "{e}"
    );
    assert!(matches!(
        none.connect(POLAR, SEC),
        Err(BleError::NoAdapter(_))
    ));
    assert!(matches!(
        none.find(&ScanFilter::default(), SEC, &cancel),
        Err(BleError::NoAdapter(_))
    ));
    cancel.cancel(2);
    assert_eq!(bench().scan(SEC, &cancel).unwrap_err(), BleError::Cancelled);
}

// ---------------------------------------------------------------------------------------------
// SocketCentral against simulated peripherals

/// A simulated peripheral at a fresh socket path: each accepted connection runs `serve` on its own
/// thread. The listener takes `conns` connections and stops.
struct Sim {
    _dir: tempfile::TempDir,
    path: PathBuf,
    threads: Vec<JoinHandle<()>>,
}

impl Sim {
    fn start<F>(conns: usize, serve: F) -> Sim
    where
        F: Fn(usize, UnixStream) + Send + Sync + 'static,
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("radio.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let serve = Arc::new(serve);
        let acceptor = std::thread::spawn(move || {
            let mut handlers = Vec::new();
            for n in 0..conns {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let serve = serve.clone();
                handlers.push(std::thread::spawn(move || serve(n, stream)));
            }
            for h in handlers {
                let _ = h.join();
            }
        });
        Sim {
            _dir: dir,
            path,
            threads: vec![acceptor],
        }
    }

    fn central(&self) -> SocketCentral {
        SocketCentral::new(&self.path)
    }

    /// Waits for every connection's handler to finish (they finish when the central hangs up).
    fn finish(mut self) {
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

fn send(out: &mut UnixStream, line: &Line) {
    let mut text = serde_json::to_vec(line).unwrap();
    text.push(b'\n');
    let _ = out.write_all(&text);
}

fn reply(out: &mut UnixStream, r: Reply) {
    send(out, &Line::Reply(r));
}

/// The requests of one connection, until the central hangs up.
fn requests(stream: &UnixStream) -> impl Iterator<Item = Request> {
    BufReader::new(stream.try_clone().unwrap())
        .lines()
        .map_while(Result::ok)
        .map(|l| serde_json::from_str(&l).unwrap())
}

/// A well-behaved simulated peripheral playing back a recorded device. After a subscription every
/// read is answered with two notifications of the subscribed characteristic before the value and
/// one after it, so replies and notifications interleave.
fn playback(device: RecordedDevice, log: Arc<Mutex<Vec<Request>>>) -> impl Fn(usize, UnixStream) {
    move |_, stream| {
        let mut out = stream.try_clone().unwrap();
        let mut subscribed: Option<BleUuid> = None;
        for req in requests(&stream) {
            log.lock().unwrap().push(req.clone());
            match req {
                Request::Advertise => reply(&mut out, Reply::Advert(device.advert.clone())),
                Request::Services => reply(&mut out, Reply::Services(device.services.clone())),
                Request::Read { char } => {
                    if let Some(att) = device.refusals.get(&char) {
                        reply(&mut out, Reply::Att(att.clone()));
                        continue;
                    }
                    let value = device.values.get(&char).cloned().unwrap_or_default();
                    if let Some(c) = subscribed {
                        for v in ["0048", "0049"] {
                            send(
                                &mut out,
                                &Line::Notify {
                                    char: c,
                                    value: v.into(),
                                },
                            );
                        }
                    }
                    reply(&mut out, Reply::Value(value));
                    if let Some(c) = subscribed {
                        send(
                            &mut out,
                            &Line::Notify {
                                char: c,
                                value: "004a".into(),
                            },
                        );
                    }
                }
                Request::Write { char, .. } => match device.refusals.get(&char) {
                    Some(att) => reply(&mut out, Reply::Att(att.clone())),
                    None => reply(&mut out, Reply::Done),
                },
                Request::Subscribe { char } => {
                    subscribed = Some(char);
                    reply(&mut out, Reply::Done);
                }
            }
        }
    }
}

#[test]
fn a_simulated_peripheral_is_scanned_connected_and_driven() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sim = Sim::start(3, playback(fixture("polar-h10.json"), log.clone()));
    let radio = sim.central();
    let cancel = Cancel::new();
    let heard = radio.scan(SEC, &cancel).unwrap();
    assert_eq!(heard.len(), 1);
    assert_eq!(heard[0].address, POLAR);
    let found = radio.find(
        &filter(Some("Polar H10 5A3C9E01"), None, None),
        SEC,
        &cancel,
    );
    assert_eq!(found.unwrap().address, POLAR);
    let mut p = radio.connect(&POLAR.to_lowercase(), GENEROUS).unwrap();
    let services = p.services().unwrap();
    assert_eq!(services.len(), 9);
    assert_eq!(p.read(&uuid("0x2a29"), SEC).unwrap(), b"Polar Electro Oy");
    assert_eq!(
        p.read(&uuid("0x2a8a"), SEC).unwrap_err(),
        BleError::Refused {
            op: "read".into(),
            char: uuid("0x2a8a"),
            att: "user-data-access-not-permitted".into()
        }
    );
    // Known locally once the table is discovered, as a real stack would.
    assert_eq!(
        p.read(&uuid("0x2a6e"), SEC).unwrap_err(),
        BleError::NoSuchCharacteristic(uuid("0x2a6e"))
    );
    let pmd = uuid("fb005c81-02e7-f387-1cad-8acd2d8df0c8");
    p.write(&pmd, &[0x01, 0x00], true, SEC).unwrap();
    let hr = uuid("0x2a37");
    p.subscribe(&hr, SEC).unwrap();
    // Two notifications before the reply, one after: the read still gets its value...
    assert_eq!(p.read(&uuid("0x2a19"), SEC).unwrap(), [0x5a]);
    // ...and the notifications are all there, in order.
    for want in [[0x00, 0x48], [0x00, 0x49], [0x00, 0x4a]] {
        assert_eq!(p.notification(&hr, SEC).unwrap(), Some(want.to_vec()));
    }
    assert_eq!(
        p.notification(&hr, Duration::from_millis(100)).unwrap(),
        None
    );
    // Another read: its notifications queue up while an other characteristic is awaited.
    assert_eq!(p.read(&uuid("0x2a38"), SEC).unwrap(), [0x01]);
    assert_eq!(
        p.notification(&uuid("0x2a19"), Duration::from_millis(100))
            .unwrap(),
        None
    );
    assert_eq!(p.notification(&hr, SEC).unwrap(), Some(vec![0x00, 0x48]));
    p.disconnect();
    assert!(matches!(p.read(&hr, SEC), Err(BleError::Unreachable(_))));
    sim.finish();
    let log = log.lock().unwrap();
    assert_eq!(log.iter().filter(|r| **r == Request::Advertise).count(), 3);
    assert!(log.contains(&Request::Write {
        char: pmd,
        value: "0100".into(),
        with_response: true
    }));
}

#[test]
fn a_missing_socket_is_nothing_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let radio = SocketCentral::new(dir.path().join("nobody.sock"));
    assert_eq!(radio.scan(SEC, &Cancel::new()).unwrap(), []);
    assert!(matches!(
        radio.connect(POLAR, SEC),
        Err(BleError::NotFound { seen, .. }) if seen.is_empty()
    ));
    // A socket file nobody listens on any more: refused, the same.
    let path = dir.path().join("gone.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert_eq!(
        SocketCentral::new(&path).scan(SEC, &Cancel::new()).unwrap(),
        []
    );
}

#[test]
fn connecting_to_another_address_is_not_found() {
    let sim = Sim::start(
        1,
        playback(fixture("xiaomi-lywsd03mmc.json"), Arc::default()),
    );
    match sim.central().connect(POLAR, SEC) {
        Err(BleError::NotFound { wanted, seen, .. }) => {
            assert_eq!(wanted, format!("address {POLAR}"));
            assert_eq!(seen, [LYWSD03MMC]);
        }
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("connected to the wrong device"),
    }
    sim.finish();
}

/// A peripheral that answers the first request with `answer` (raw bytes), then keeps the line open
/// until the central hangs up.
fn answers(answer: Vec<u8>) -> impl Fn(usize, UnixStream) {
    move |_, stream| {
        let mut out = stream.try_clone().unwrap();
        let mut reqs = requests(&stream);
        if reqs.next().is_some() {
            let _ = out.write_all(&answer);
        }
        for _ in reqs {}
    }
}

fn scan_error(sim: &Sim, within: Duration) -> BleError {
    sim.central().scan(within, &Cancel::new()).unwrap_err()
}

#[test]
fn an_overlong_line_is_a_protocol_error_not_a_memory_problem() {
    let mut line = b"{\"reply\":{\"value\":\"".to_vec();
    line.resize(MAX_LINE + 4096, b'a');
    line.extend_from_slice(b"\"}}\n");
    let sim = Sim::start(1, answers(line));
    let started = Instant::now();
    let e = scan_error(&sim, GENEROUS);
    assert!(started.elapsed() < GENEROUS);
    assert!(
        matches!(&e, BleError::Protocol(m) if m.contains(&format!("longer than {MAX_LINE} bytes"))),
        "{e}"
    );
    assert!(
        e.to_string().len() < 400,
        "the error quotes only the start: {e}"
    );
    sim.finish();
}

#[test]
fn garbage_and_misshapen_lines_are_protocol_errors() {
    let sim = Sim::start(1, answers(b"{\"reply\": \"done\"\n".to_vec()));
    let e = scan_error(&sim, GENEROUS);
    assert!(
        matches!(&e, BleError::Protocol(m) if m.contains("invalid JSON")),
        "{e}"
    );
    sim.finish();
    let sim = Sim::start(1, answers(b"{\"reply\": {\"value\": 5}}\n".to_vec()));
    let e = scan_error(&sim, GENEROUS);
    assert!(
        matches!(&e, BleError::Protocol(m) if m.contains("neither a reply nor a notification")),
        "{e}"
    );
    sim.finish();
    // Valid, but the wrong answer to the question.
    let sim = Sim::start(1, answers(b"{\"reply\": \"done\"}\n".to_vec()));
    let e = scan_error(&sim, GENEROUS);
    assert_eq!(
        e,
        BleError::Protocol("the peripheral answered advertise with done".into())
    );
    sim.finish();
}

#[test]
fn a_silent_peripheral_times_out_on_time() {
    let sim = Sim::start(1, |_, stream| for _ in requests(&stream) {});
    let started = Instant::now();
    let e = scan_error(&sim, Duration::from_millis(300));
    let took = started.elapsed();
    assert_eq!(e, BleError::Timeout(300));
    assert!(
        took >= Duration::from_millis(250) && took < GENEROUS,
        "{took:?}"
    );
    // The central hung up on its way out, so the peripheral's handler has ended.
    sim.finish();
}

#[test]
fn a_scan_of_a_silent_peripheral_ends_when_cancelled() {
    let sim = Sim::start(1, |_, stream| for _ in requests(&stream) {});
    let cancel = Cancel::new();
    let stopper = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        stopper.cancel(15);
    });
    let started = Instant::now();
    let e = sim
        .central()
        .scan(Duration::from_secs(60), &cancel)
        .unwrap_err();
    assert_eq!(e, BleError::Cancelled);
    assert!(started.elapsed() < GENEROUS);
    t.join().unwrap();
    sim.finish();
}

#[test]
fn a_hang_up_is_unreachable() {
    // Hangs up on the first request.
    let sim = Sim::start(1, |_, stream| {
        let _ = requests(&stream).next();
    });
    let e = scan_error(&sim, GENEROUS);
    assert!(
        matches!(&e, BleError::Unreachable(m) if m.contains("hung up")),
        "{e}"
    );
    sim.finish();
    // Hangs up while the central waits for a notification.
    let device = fixture("polar-h10.json");
    let sim = Sim::start(1, move |_, stream| {
        let mut out = stream.try_clone().unwrap();
        for req in requests(&stream) {
            match req {
                Request::Advertise => reply(&mut out, Reply::Advert(device.advert.clone())),
                Request::Subscribe { .. } => {
                    reply(&mut out, Reply::Done);
                    std::thread::sleep(Duration::from_millis(100));
                    return;
                }
                _ => reply(&mut out, Reply::Att("unlikely-error".into())),
            }
        }
    });
    let mut p = sim.central().connect(POLAR, SEC).unwrap();
    let hr = uuid("0x2a37");
    p.subscribe(&hr, SEC).unwrap();
    let started = Instant::now();
    let e = p.notification(&hr, GENEROUS).unwrap_err();
    assert!(started.elapsed() < GENEROUS);
    assert!(matches!(&e, BleError::Unreachable(_)), "{e}");
    // And stays so.
    assert!(matches!(p.read(&hr, SEC), Err(BleError::Unreachable(_))));
    sim.finish();
}

#[test]
fn a_reply_nobody_asked_for_is_a_protocol_error() {
    let device = fixture("polar-h10.json");
    let sim = Sim::start(1, move |_, stream| {
        let mut out = stream.try_clone().unwrap();
        for req in requests(&stream) {
            if req == Request::Advertise {
                reply(&mut out, Reply::Advert(device.advert.clone()));
                reply(&mut out, Reply::Done);
            } else {
                reply(&mut out, Reply::Value("00".into()));
            }
        }
    });
    let mut p = sim.central().connect(POLAR, SEC).unwrap();
    // Let the extra reply arrive before the next request goes out.
    std::thread::sleep(Duration::from_millis(300));
    let e = p.read(&uuid("0x2a19"), SEC).unwrap_err();
    assert!(
        matches!(&e, BleError::Protocol(m) if m.contains("nobody asked for")),
        "{e}"
    );
    drop(p);
    sim.finish();
}

#[test]
fn a_late_reply_is_not_taken_for_the_next_ones() {
    let device = fixture("polar-h10.json");
    let sim = Sim::start(1, move |_, stream| {
        let mut out = stream.try_clone().unwrap();
        let mut reads = 0;
        for req in requests(&stream) {
            match req {
                Request::Advertise => reply(&mut out, Reply::Advert(device.advert.clone())),
                Request::Read { .. } => {
                    reads += 1;
                    // The first read is answered late, after the central gave up on it.
                    if reads == 1 {
                        std::thread::sleep(Duration::from_millis(600));
                        reply(&mut out, Reply::Value("01".into()));
                    } else {
                        reply(&mut out, Reply::Value("02".into()));
                    }
                }
                _ => reply(&mut out, Reply::Done),
            }
        }
    });
    let mut p = sim.central().connect(POLAR, SEC).unwrap();
    let battery = uuid("0x2a19");
    assert_eq!(
        p.read(&battery, Duration::from_millis(200)).unwrap_err(),
        BleError::Timeout(200)
    );
    assert_eq!(p.read(&battery, GENEROUS).unwrap(), [0x02]);
    drop(p);
    sim.finish();
}

#[test]
fn dropping_a_connection_ends_its_reader_and_the_peers_line() {
    let (ended_tx, ended) = mpsc::channel();
    let device = fixture("polar-h10.json");
    let sim = Sim::start(1, move |_, stream| {
        let mut out = stream.try_clone().unwrap();
        for req in requests(&stream) {
            if req == Request::Advertise {
                reply(&mut out, Reply::Advert(device.advert.clone()));
            }
            // Everything else: silence.
        }
        let _ = ended_tx.send(());
    });
    let p = sim.central().connect(POLAR, SEC).unwrap();
    // Dropping must not wait on the silent peer: the socket is shut down and the reader joined.
    let (dropped_tx, dropped) = mpsc::channel();
    std::thread::spawn(move || {
        drop(p);
        let _ = dropped_tx.send(());
    });
    dropped.recv_timeout(GENEROUS).expect("the drop returned");
    ended
        .recv_timeout(GENEROUS)
        .expect("the peripheral saw the hang-up");
    sim.finish();
}

#[test]
fn a_flood_of_notifications_stays_bounded_and_does_not_hold_up_replies() {
    let device = fixture("polar-h10.json");
    let sim = Sim::start(1, move |_, stream| {
        let mut out = stream.try_clone().unwrap();
        let mut subscribed = None;
        for req in requests(&stream) {
            match req {
                Request::Advertise => reply(&mut out, Reply::Advert(device.advert.clone())),
                Request::Subscribe { char } => {
                    subscribed = Some(char);
                    reply(&mut out, Reply::Done);
                }
                _ => {
                    // Far more than the central keeps while nobody reads them, then the answer.
                    if let Some(char) = subscribed {
                        for i in 0..20_000u32 {
                            let value = hex::encode(i.to_le_bytes());
                            send(&mut out, &Line::Notify { char, value });
                        }
                    }
                    reply(&mut out, Reply::Value("5a".into()));
                }
            }
        }
    });
    let mut p = sim.central().connect(POLAR, SEC).unwrap();
    let hr = uuid("0x2a37");
    p.subscribe(&hr, SEC).unwrap();
    assert_eq!(p.read(&uuid("0x2a19"), GENEROUS).unwrap(), [0x5a]);
    // The oldest are kept, the newest beyond the bound dropped.
    assert_eq!(p.notification(&hr, SEC).unwrap(), Some(vec![0, 0, 0, 0]));
    let mut kept = 1;
    while p
        .notification(&hr, Duration::from_millis(200))
        .unwrap()
        .is_some()
    {
        kept += 1;
    }
    assert!(kept < 20_000, "{kept}");
    drop(p);
    sim.finish();
}

// ---------------------------------------------------------------------------------------------
// btleplug on this machine

#[test]
fn btleplug_says_no_adapter_or_scans() {
    match BtleplugCentral::new() {
        Err(BleError::NoAdapter(why)) => {
            assert!(!why.is_empty());
            eprintln!("no Bluetooth here: {why}");
        }
        Err(e) => panic!("expected NoAdapter on a machine without Bluetooth, got {e:?}"),
        Ok(radio) => {
            let heard = radio.scan(SEC, &Cancel::new());
            assert!(heard.is_ok(), "{heard:?}");
            eprintln!(
                "a 1 s scan heard {} devices",
                heard.unwrap_or_default().len()
            );
        }
    }
}
