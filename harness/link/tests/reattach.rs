//! A console surviving its USB device re-enumerating, against real pseudo-terminals and the fake
//! bus: the test plays the device, holding the pty master. "Vanishing" is leaving the bus and
//! closing the master (the console's tty hangs up); "returning" is a new pty whose slave is
//! published on the bus under the device's identity, as a re-enumerated USB tty would be.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hilt_link::usb::{FakeBus, UsbBus, UsbDevice, UsbError, UsbIdentity};
use hilt_link::{
    Cancel, Console, ConsoleOptions, ExpectError, LinkError, Port, Reattach, SerialPort,
};
use nix::sys::termios;
use regex::Regex;

const SERIAL: &str = "000683000001";

/// One pseudo-terminal: the device's end, and the slave kept open (in raw mode, so what the
/// device writes before the console opens it is queued as it is).
struct Pty {
    master: File,
    slave: OwnedFd,
    path: PathBuf,
}

fn pty() -> Pty {
    let pair = nix::pty::openpty(None, None).expect("openpty");
    let mut t = termios::tcgetattr(&pair.slave).expect("tcgetattr");
    termios::cfmakeraw(&mut t);
    termios::tcsetattr(&pair.slave, termios::SetArg::TCSANOW, &t).expect("tcsetattr");
    let path = nix::unistd::ttyname(&pair.slave).expect("ttyname");
    Pty {
        master: File::from(pair.master),
        slave: pair.slave,
        path,
    }
}

/// Bytes written by the device that nobody has read from the tty yet.
fn unread(p: &Pty) -> usize {
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD stores one int through the pointer, which outlives the call.
    let rc = unsafe { nix::libc::ioctl(p.slave.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD");
    usize::try_from(n).unwrap_or(0)
}

/// Wait (bounded) until the console has read everything written so far: Linux discards a pty's
/// unread input when its master closes.
fn wait_read(p: &Pty) {
    let until = Instant::now() + Duration::from_secs(10);
    thread::sleep(Duration::from_millis(50));
    while unread(p) > 0 {
        assert!(Instant::now() < until, "the console never read the output");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The nRF52840 DK's J-Link, its CDC console at `tty`.
fn jlink(serial: &str, tty: &std::path::Path) -> UsbDevice {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/usb/nrf52840dk-jlink.json");
    let mut d = FakeBus::recorded(&p).expect("fixture");
    d.serial = Some(serial.into());
    d.interfaces[0].tty = Some(tty.display().to_string());
    d
}

fn identity(serial: Option<&str>) -> UsbIdentity {
    UsbIdentity {
        vid: 0x1366,
        pid: 0x1015,
        serial: serial.map(str::to_string),
        interface: Some(0),
    }
}

/// A console on the device `identity` finds on `bus`, reattaching through the same bus.
fn console(
    id: UsbIdentity,
    bus: Arc<dyn UsbBus + Send + Sync>,
    within: Duration,
    cancel: Option<Cancel>,
) -> Console<Box<dyn Port>> {
    let path = id
        .resolve_tty(bus.as_ref())
        .expect("the device is on the bus");
    let port = SerialPort::open(&path, 115_200).expect("open");
    let opts = ConsoleOptions {
        cancel,
        ..ConsoleOptions::default()
    };
    let mut c: Console<Box<dyn Port>> = Console::new(Box::new(port), opts);
    c.set_reattach(Reattach::usb(id, bus, 115_200, within));
    c
}

/// The device says `words`, waits until they are read, then leaves the bus and hangs up.
fn vanish(bus: &FakeBus, mut dev: Pty, words: &[u8]) {
    dev.master.write_all(words).unwrap();
    wait_read(&dev);
    assert_eq!(bus.unplug(|d| d.vid == 0x1366), 1);
    drop(dev);
}

fn re(p: &str) -> Regex {
    Regex::new(p).unwrap()
}

#[test]
fn an_expect_runs_on_across_a_re_enumeration() {
    let bus = FakeBus::default();
    let first = pty();
    bus.plug(jlink(SERIAL, &first.path));
    let mut c = console(
        identity(Some(SERIAL)),
        Arc::new(bus.clone()),
        Duration::from_secs(5),
        None,
    );
    c.add_secret(b"hunter2", "pw");
    let device = {
        let bus = bus.clone();
        thread::spawn(move || {
            vanish(&bus, first, b"U-Boot 2024.01 (hilt)\r\nresetting USB\r\n");
            thread::sleep(Duration::from_millis(300));
            let mut back = pty();
            bus.plug(jlink(SERIAL, &back.path));
            back.master
                .write_all(b"Starting kernel\r\nkey hunter2\r\nlogin: ")
                .unwrap();
            back
        })
    };
    let m = c
        .expect(
            &[("login", &re(r"U-Boot[\s\S]*login: $"))],
            Duration::from_secs(30),
        )
        .expect("the banner completes on the returned device");
    assert!(m.matched.contains("key ‹secret:pw›"), "{}", m.matched);
    let mut back = device.join().unwrap();

    // The session goes on with the returned device.
    c.send(b"root\r").unwrap();
    let mut got = [0u8; 5];
    back.master.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"root\r");

    let text = c.transcript().render_text();
    let lost = text.find("# link lost (").expect(&text);
    let waiting = text
        .find("; waiting up to 5000 ms for the same device")
        .expect(&text);
    let reattached = text
        .find(&format!("# reattached at {} after ", back.path.display()))
        .expect(&text);
    assert!(text[..lost].contains("< U-Boot 2024.01 (hilt)"), "{text}");
    assert!(lost < waiting && waiting < reattached, "{text}");
    assert!(text[reattached..].contains("< Starting kernel"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("key ‹secret:pw›"), "{text}");
    assert!(!c.is_closed() && !c.is_lost());
}

/// Counts listings made while a device other than ours is on the bus.
struct Watched {
    bus: FakeBus,
    impostor_in: Arc<AtomicBool>,
    looked: Arc<AtomicUsize>,
}

impl UsbBus for Watched {
    fn devices(&self) -> Result<Vec<UsbDevice>, UsbError> {
        if self.impostor_in.load(Ordering::SeqCst) {
            self.looked.fetch_add(1, Ordering::SeqCst);
        }
        self.bus.devices()
    }
}

#[test]
fn a_different_unit_at_the_new_tty_is_not_taken_for_the_device() {
    let bus = FakeBus::default();
    let first = pty();
    bus.plug(jlink(SERIAL, &first.path));
    let impostor_in = Arc::new(AtomicBool::new(false));
    let looked = Arc::new(AtomicUsize::new(0));
    let watched = Watched {
        bus: bus.clone(),
        impostor_in: impostor_in.clone(),
        looked: looked.clone(),
    };
    // No serial declared: the reattach pins the one seen when the console was opened.
    let within = Duration::from_secs(2);
    let mut c = console(identity(None), Arc::new(watched), within, None);
    let device = {
        let (bus, looked) = (bus.clone(), looked.clone());
        thread::spawn(move || {
            vanish(&bus, first, b"booting\r\n");
            thread::sleep(Duration::from_millis(300));
            let mut other = pty();
            other.master.write_all(b"IMPOSTOR login: ").unwrap();
            bus.plug(jlink("000683000099", &other.path));
            impostor_in.store(true, Ordering::SeqCst);
            // Bounded: until the console has looked at the bus with the other unit on it.
            let until = Instant::now() + Duration::from_secs(10);
            while looked.load(Ordering::SeqCst) < 2 && Instant::now() < until {
                thread::sleep(Duration::from_millis(10));
            }
            other
        })
    };
    let started = Instant::now();
    let err = c
        .expect(&[("login", &re("login: "))], Duration::from_secs(30))
        .unwrap_err();
    let took = started.elapsed();
    let other = device.join().unwrap();
    assert!(matches!(err, ExpectError::Closed { .. }), "{err}");
    assert!(took >= within && took < Duration::from_secs(10), "{took:?}");
    assert!(
        looked.load(Ordering::SeqCst) >= 2,
        "the other unit was never seen"
    );
    // Nothing was read from it: its words still wait in its tty.
    assert_eq!(unread(&other), b"IMPOSTOR login: ".len());
    let text = c.transcript().render_text();
    assert!(
        !text.contains("IMPOSTOR") && !text.contains("reattached"),
        "{text}"
    );
    assert!(
        text.contains("# the device did not return within 2000 ms"),
        "{text}"
    );
    assert!(c.is_closed());
}

#[test]
fn a_device_that_never_returns_closes_the_console_after_the_wait() {
    let bus = FakeBus::default();
    let first = pty();
    bus.plug(jlink(SERIAL, &first.path));
    let within = Duration::from_secs(1);
    let mut c = console(identity(Some(SERIAL)), Arc::new(bus.clone()), within, None);
    let device = {
        let bus = bus.clone();
        thread::spawn(move || vanish(&bus, first, b"going down\r\n"))
    };
    let started = Instant::now();
    let err = c
        .expect(&[("login", &re("login: "))], Duration::from_secs(30))
        .unwrap_err();
    let took = started.elapsed();
    device.join().unwrap();
    assert!(matches!(err, ExpectError::Closed { .. }), "{err}");
    assert!(took >= within && took < Duration::from_secs(10), "{took:?}");
    assert!(c.is_closed());
    // Closed for good: later operations do not wait again.
    assert!(matches!(c.send(b"anyone?\r"), Err(LinkError::Closed)));
    let text = c.transcript().render_text();
    assert_eq!(text.matches("# link lost").count(), 1, "{text}");
    assert!(
        text.contains("# the device did not return within 1000 ms"),
        "{text}"
    );
}

#[test]
fn cancelling_ends_the_wait_for_the_device_promptly() {
    let bus = FakeBus::default();
    let first = pty();
    bus.plug(jlink(SERIAL, &first.path));
    let cancel = Cancel::new();
    let mut c = console(
        identity(Some(SERIAL)),
        Arc::new(bus.clone()),
        Duration::from_secs(600),
        Some(cancel.clone()),
    );
    let device = {
        let bus = bus.clone();
        thread::spawn(move || {
            vanish(&bus, first, b"going down\r\n");
            thread::sleep(Duration::from_millis(300));
            cancel.cancel(2);
        })
    };
    let started = Instant::now();
    let err = c
        .expect(&[("login", &re("login: "))], Duration::from_secs(600))
        .unwrap_err();
    assert!(matches!(err, ExpectError::Cancelled { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    device.join().unwrap();
    let text = c.transcript().render_text();
    assert!(
        text.contains("# interrupted while waiting for the device, after "),
        "{text}"
    );
}

#[test]
fn a_send_while_the_device_is_away_reaches_the_returned_one() {
    let bus = FakeBus::default();
    let first = pty();
    bus.plug(jlink(SERIAL, &first.path));
    let mut c = console(
        identity(Some(SERIAL)),
        Arc::new(bus.clone()),
        Duration::from_secs(5),
        None,
    );
    // Gone before the console notices: the send finds out.
    assert_eq!(bus.unplug(|d| d.vid == 0x1366), 1);
    drop(first);
    let device = {
        let bus = bus.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            let back = pty();
            bus.plug(jlink(SERIAL, &back.path));
            back
        })
    };
    c.send(b"status\r").unwrap();
    let mut back = device.join().unwrap();
    let mut got = [0u8; 7];
    back.master.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"status\r");
    let text = c.transcript().render_text();
    assert!(
        text.contains("# sending the 7 bytes again after reattaching"),
        "{text}"
    );
}
