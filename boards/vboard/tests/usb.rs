//! The board's USB device as the harness sees it, through the bus file: a CDC ACM console on the
//! pty, a DFU interface only under `usb-dfu-exposed`, and with `--usb-reenumerate` a console that
//! comes back on a new tty at each reboot without losing its boot output.

mod support;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use hilt_link::usb::{FileBus, InterfaceKind, UsbBus, UsbDevice};
use support::{TIMEOUT, expect, label_password, send, spawn, stop};

fn devices(bus: &Path) -> Vec<UsbDevice> {
    FileBus::new(bus.to_path_buf())
        .devices()
        .expect("a readable bus file")
}

/// The tty of the console interface, `None` while the device is off the bus.
fn console_tty(bus: &Path) -> Option<String> {
    devices(bus).first()?.interfaces.first()?.tty.clone()
}

fn open(tty: &str) -> serialport::TTYPort {
    serialport::new(tty, 115_200)
        .timeout(Duration::from_millis(100))
        .open_native()
        .expect("open the console tty")
}

fn log_in(port: &mut serialport::TTYPort, dir: &Path) {
    send(port, &format!("admin\r{}\r", label_password(dir)));
    expect(port, "vrb$ ");
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn the_bus_file_describes_the_board_and_empties_when_it_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let bus = tmp.path().join("usb.json");
    let extra = ["--serial", "VRB-00000007", "--usb-bus", arg(&bus)];
    let mut board = spawn(tmp.path(), &extra, "warn");
    let list = devices(&bus);
    assert_eq!(list.len(), 1, "{list:?}");
    let d = &list[0];
    assert_eq!(d.id(), "1209:0001:VRB-00000007");
    assert_eq!(d.manufacturer.as_deref(), Some("hilt project"));
    assert_eq!(d.product.as_deref(), Some("VRB-1"));
    assert_eq!((d.class, d.location.as_str()), (0x02, "1-1"));
    let kinds: Vec<_> = d.kinds().into_iter().map(|(_, k)| k).collect();
    assert_eq!(kinds, [InterfaceKind::Serial, InterfaceKind::Serial]);
    let triples: Vec<_> = d
        .interfaces
        .iter()
        .map(|i| (i.number, i.class, i.subclass, i.protocol))
        .collect();
    assert_eq!(triples, [(0, 2, 2, 1), (1, 0x0a, 0, 0)]);
    assert_eq!(console_tty(&bus), Some(board.pty.clone()));

    let mut port = open(&board.pty);
    expect(&mut port, "login: ");
    stop(&mut board);
    assert!(devices(&bus).is_empty(), "a stopped board is off the bus");
}

#[test]
fn usb_dfu_exposed_adds_a_loader_interface_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for defects in [&[][..], &["--defect", "usb-dfu-exposed"][..]] {
        let dir = tmp.path().join(format!("d{}", seen.len()));
        std::fs::create_dir(&dir).unwrap();
        let bus = dir.join("usb.json");
        let mut extra = vec!["--serial", "VRB-00000001", "--usb-bus", arg(&bus)];
        extra.extend(defects);
        let mut board = spawn(&dir, &extra, "warn");
        let mut device = devices(&bus).remove(0);
        assert_eq!(device.interfaces[0].tty.take(), Some(board.pty.clone()));
        stop(&mut board);
        seen.push(device);
    }
    let (good, mut bad) = (seen.remove(0), seen.remove(0));
    let dfu = bad.interfaces.pop().expect("a third interface");
    assert_eq!(
        (dfu.number, dfu.class, dfu.subclass, dfu.protocol),
        (2, 0xfe, 1, 1)
    );
    assert_eq!(dfu.name.as_deref(), Some("VRB-1 DFU"));
    assert_eq!(bad, good, "nothing else differs");
}

#[test]
fn without_reenumeration_a_reboot_keeps_the_tty() {
    let tmp = tempfile::tempdir().unwrap();
    let bus = tmp.path().join("usb.json");
    let mut board = spawn(tmp.path(), &["--usb-bus", arg(&bus)], "warn");
    let before = std::fs::read(&bus).unwrap();
    let mut port = open(&board.pty);
    expect(&mut port, "login: ");
    log_in(&mut port, tmp.path());
    send(&mut port, "reboot\r");
    let out = expect(&mut port, "login: ");
    assert!(
        out.contains("rebooting...") && out.contains("virtual reference board"),
        "{out}"
    );
    assert_eq!(std::fs::read(&bus).unwrap(), before);
    stop(&mut board);
}

/// Reboots through the console on `tty`, which must go away; returns the new tty and whether the
/// device was seen off the bus meanwhile.
fn reboot_and_follow(tty: &str, dir: &Path, bus: &Path) -> (String, bool) {
    let mut port = open(tty);
    send(&mut port, "\r");
    expect(&mut port, "login: ");
    log_in(&mut port, dir);
    send(&mut port, "reboot\r");
    expect(&mut port, "rebooting...");
    let deadline = Instant::now() + TIMEOUT;
    let mut gone = false;
    let new = loop {
        assert!(Instant::now() < deadline, "the console never came back");
        match console_tty(bus) {
            None => gone = true,
            Some(t) if t != tty => break t,
            Some(_) => {}
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_old_console_closed(&mut port);
    (new, gone)
}

/// The old tty reads an error or end of file: its console has gone.
fn assert_old_console_closed(port: &mut serialport::TTYPort) {
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = [0u8; 256];
    loop {
        assert!(Instant::now() < deadline, "the old tty stayed open");
        match port.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

#[test]
fn reenumeration_moves_the_console_to_a_new_tty_and_keeps_the_boot_output() {
    let tmp = tempfile::tempdir().unwrap();
    let bus = tmp.path().join("usb.json");
    let extra = ["--usb-bus", arg(&bus), "--usb-reenumerate"];
    let mut board = spawn(tmp.path(), &extra, "warn");
    let first = console_tty(&bus).expect("on the bus");
    assert_eq!(first, board.pty);

    let (second, gone) = reboot_and_follow(&first, tmp.path(), &bus);
    assert!(gone, "the device left the bus while it rebooted");
    assert_ne!(second, first);
    // Opened well after the board booted: the boot output waited for the host.
    std::thread::sleep(Duration::from_millis(300));
    let mut port = open(&second);
    let out = expect(&mut port, "login: ");
    assert!(
        out.contains("VRB-1 virtual reference board, firmware 1.0.0"),
        "{out}"
    );
    drop(port);

    // Again: the kernel may give the first tty's number back, but never the one still open.
    let (third, _) = reboot_and_follow(&second, tmp.path(), &bus);
    assert_ne!(third, second);
    let mut port = open(&third);
    let out = expect(&mut port, "login: ");
    assert!(out.contains("virtual reference board"), "{out}");
    stop(&mut board);
    assert!(devices(&bus).is_empty());
}
