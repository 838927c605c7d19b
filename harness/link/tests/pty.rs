//! The serial link against a real pseudo-terminal: a responder thread plays the device on the
//! master side, the engine opens the slave by its path like any serial port.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hilt_link::{
    Console, ConsoleOptions, ExpectError, LinkError, SerialPort, UsbMatch, find_usb_serial,
};
use regex::Regex;

/// (device end, engine end opened through `SerialPort::open`).
fn pty() -> (File, SerialPort) {
    let pair = nix::pty::openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&pair.slave).expect("ttyname");
    let port = SerialPort::open(&path, 115_200).expect("open pty slave by path");
    (File::from(pair.master), port)
}

fn console(port: SerialPort) -> Console<SerialPort> {
    Console::new(port, ConsoleOptions::default())
}

fn re(p: &str) -> Regex {
    Regex::new(p).unwrap()
}

/// A device that calls `reply` with everything received so far after each read; `reply`
/// returns the writes to make (with a pause before each) and how much input it used.
fn device<F>(mut master: File, mut reply: F) -> JoinHandle<()>
where
    F: FnMut(&[u8]) -> (usize, Vec<(Duration, Vec<u8>)>) + Send + 'static,
{
    thread::spawn(move || {
        let mut input = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the engine closes its end ends the loop.
        while let Ok(n @ 1..) = master.read(&mut buf) {
            input.extend_from_slice(&buf[..n]);
            let (used, writes) = reply(&input);
            input.drain(..used.min(input.len()));
            for (pause, data) in writes {
                thread::sleep(pause);
                if master.write_all(&data).is_err() {
                    return;
                }
            }
        }
    })
}

/// Answers each `\r`-terminated command line.
fn line_device(master: File, answer: fn(&str) -> String) -> JoinHandle<()> {
    device(master, move |input| {
        let Some(end) = input.iter().position(|&b| b == b'\r') else {
            return (0, Vec::new());
        };
        let line = String::from_utf8_lossy(&input[..end]).into_owned();
        (end + 1, vec![(Duration::ZERO, answer(&line).into_bytes())])
    })
}

#[test]
fn request_response_with_captures_and_alternatives() {
    let (master, port) = pty();
    let dev = line_device(master, |line| match line {
        "version" => "version\r\nfw 1.2.3 (build abc)\r\n> ".into(),
        "logout" => "logout\r\nlogin: ".into(),
        "both" => "Password: login: ".into(),
        other => format!("{other}\r\n> "),
    });
    let mut c = console(port);
    let prompt = re("> $");
    c.send(b"version\r").unwrap();
    let m = c
        .expect(
            &[(
                "fw",
                &re(r"fw (?P<ver>\d+\.\d+\.\d+) \(build (?P<build>\w+)\)"),
            )],
            Duration::from_secs(5),
        )
        .unwrap();
    assert_eq!(m.captures["ver"], "1.2.3");
    assert_eq!(m.captures["build"], "abc");
    assert_eq!(m.before, "version\r\n");
    c.expect(&[("prompt", &prompt)], Duration::from_secs(5))
        .unwrap();

    let (pw, login) = (re("Password: "), re("login: "));
    let alts = [("password", &pw), ("login", &login), ("prompt", &prompt)];
    c.send(b"logout\r").unwrap();
    assert_eq!(
        c.expect(&alts, Duration::from_secs(5)).unwrap().name,
        "login"
    );
    c.send(b"both\r").unwrap();
    assert_eq!(
        c.expect(&alts, Duration::from_secs(5)).unwrap().name,
        "password"
    );
    assert_eq!(
        c.expect(&alts, Duration::from_secs(5)).unwrap().name,
        "login"
    );

    // Many round trips stay fast: no polling sleeps in the loop.
    let started = Instant::now();
    for i in 0..200 {
        c.send(format!("ping {i}\r").as_bytes()).unwrap();
        let m = c
            .expect(&[("prompt", &prompt)], Duration::from_secs(5))
            .unwrap();
        assert_eq!(m.before, format!("ping {i}\r\n"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let text = c.transcript().render_text();
    assert!(text.contains("> version\\r"), "{text}");
    assert!(text.contains("< fw 1.2.3 (build abc)\\r\\n"), "{text}");
    drop(c);
    dev.join().unwrap();
}

#[test]
fn silent_device_times_out_with_tail() {
    let (mut master, port) = pty();
    master.write_all(b"boot: waiting for network\r\n").unwrap();
    let mut c = console(port);
    let started = Instant::now();
    let err = c
        .expect(&[("shell", &re(r"# $"))], Duration::from_millis(300))
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let ExpectError::Timeout { tail, .. } = &err else {
        panic!("expected a timeout, got {err}");
    };
    assert_eq!(tail, "boot: waiting for network\\r\\n");
    assert!(err.to_string().contains("shell /# $/"), "{err}");
}

/// xorshift garbage: fast, and cannot contain the marker by more than astronomical chance.
fn garbage(seed: &mut u64, buf: &mut [u8]) {
    for b in buf.iter_mut() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *b = *seed as u8;
    }
}

const MARKER: &[u8] = b"\r\n==FLOOD-OVER-7f3a==\r\n";

#[test]
fn flood_stays_bounded_and_marker_still_matches() {
    let (mut master, port) = pty();
    let flooder = thread::spawn(move || {
        let (mut seed, mut buf) = (0x9e37_79b9_7f4a_7c15u64, vec![0u8; 64 * 1024]);
        for _ in 0..(20 * 1024 * 1024 / buf.len()) {
            garbage(&mut seed, &mut buf);
            master.write_all(&buf).unwrap();
        }
        master.write_all(MARKER).unwrap();
        master // keep the device end open until joined
    });
    let opts = ConsoleOptions {
        transcript_limit: 1024 * 1024,
        ..ConsoleOptions::default()
    };
    let mut c = Console::new(port, opts);
    let m = c
        .expect(
            &[("over", &re("==FLOOD-OVER-7f3a=="))],
            Duration::from_secs(120),
        )
        .unwrap();
    // lossy decoding turns each invalid byte into a 3-byte U+FFFD
    assert!(m.before.len() <= 3 * 64 * 1024, "{}", m.before.len());
    assert!(c.buffered_len() <= 64 * 1024);
    assert!(c.discarded_bytes() >= 20 * 1024 * 1024 - 64 * 1024);
    let t = c.transcript();
    assert!(t.recorded_bytes() <= 1024 * 1024);
    assert!(t.truncated_bytes() > 19 * 1024 * 1024);
    assert_eq!(t.render_text().matches("truncated").count(), 1);
    drop(flooder.join().unwrap());
}

#[test]
fn endless_flood_times_out_cleanly() {
    let (mut master, port) = pty();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let flooder = thread::spawn(move || {
        let (mut seed, mut buf) = (7u64, vec![0u8; 16 * 1024]);
        while !stop2.load(Ordering::Relaxed) {
            garbage(&mut seed, &mut buf);
            if master.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let opts = ConsoleOptions {
        max_buffer: 8 * 1024,
        transcript_limit: 64 * 1024,
        ..ConsoleOptions::default()
    };
    let mut c = Console::new(port, opts);
    let started = Instant::now();
    let err = c.expect(&[("never", &re("==NEVER=="))], Duration::from_millis(500));
    assert!(matches!(err, Err(ExpectError::Timeout { .. })), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(c.buffered_len() <= 8 * 1024);
    assert!(c.discarded_bytes() > 0);
    assert!(c.transcript().recorded_bytes() <= 64 * 1024);
    // A pty master's writes block, not fail, once the engine end is closed: keep reading
    // until the flooder has seen the stop flag.
    stop.store(true, Ordering::Relaxed);
    let drained = c.drain(Duration::from_millis(200), Duration::from_secs(10));
    assert!(
        matches!(drained, Ok(()) | Err(LinkError::Closed)),
        "{drained:?}"
    );
    flooder.join().unwrap();
}

#[test]
fn peer_close_is_closed_not_a_hang() {
    let (mut master, port) = pty();
    // Linux discards a pty's unread input at hang-up, so the device pauses before closing,
    // as a real one would between its last words and power-off.
    let dev = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        master.write_all(b"bye\r\n").unwrap();
        thread::sleep(Duration::from_secs(1));
    });
    let mut c = console(port);
    let m = c
        .expect(&[("bye", &re("bye"))], Duration::from_secs(5))
        .unwrap();
    assert_eq!(m.matched, "bye");
    let started = Instant::now();
    let err = c
        .expect(&[("more", &re("more"))], Duration::from_secs(30))
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, ExpectError::Closed { tail, .. } if tail == "\\r\\n"),
        "{err}"
    );
    assert!(err.to_string().contains("more /more/"), "{err}");
    assert!(matches!(c.send(b"anyone?\r"), Err(LinkError::Closed)));
    dev.join().unwrap();
}

#[test]
fn closed_before_anything_arrives() {
    let (master, port) = pty();
    drop(master);
    let mut c = console(port);
    let started = Instant::now();
    let err = c
        .expect(&[("x", &re("x"))], Duration::from_secs(30))
        .unwrap_err();
    assert!(matches!(err, ExpectError::Closed { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(
        c.drain(Duration::from_millis(50), Duration::from_secs(1)),
        Err(LinkError::Closed)
    ));
}

#[test]
fn secrets_never_rendered_even_when_echoed_in_pieces() {
    let (mut master, port) = pty();
    master.write_all(b"login: ").unwrap();
    let dev = device(master, |input| {
        let text = String::from_utf8_lossy(input);
        if let Some(at) = text.find("hunter2\r") {
            // echo the password in two writes with a pause, as a slow UART would deliver it
            let writes = vec![
                (Duration::ZERO, b"hun".to_vec()),
                (
                    Duration::from_millis(300),
                    b"ter2\r\nWelcome\r\n# ".to_vec(),
                ),
            ];
            (at + 8, writes)
        } else if let Some(at) = text.find("admin\r") {
            (
                at + 6,
                vec![(Duration::ZERO, b"admin\r\nPassword: ".to_vec())],
            )
        } else {
            (0, Vec::new())
        }
    });
    let mut c = console(port);
    c.expect(&[("login", &re("login: "))], Duration::from_secs(5))
        .unwrap();
    c.send(b"admin\r").unwrap();
    c.expect(&[("password", &re("Password: "))], Duration::from_secs(5))
        .unwrap();
    c.send_secret(b"hunter2", "root-password").unwrap();
    c.send(b"\r").unwrap();
    let m = c
        .expect(&[("shell", &re("# $"))], Duration::from_secs(5))
        .unwrap();
    assert_eq!(m.before, "‹secret:root-password›\r\nWelcome\r\n");

    let t = c.transcript();
    let (text, jsonl) = (t.render_text(), t.render_jsonl());
    for r in [&text, &jsonl] {
        assert!(
            !r.contains("hunter2") && !r.contains("hun") && !r.contains("ter2"),
            "{r}"
        );
    }
    assert!(text.contains("> ‹secret:root-password›\n"), "{text}");
    // the echo really came in two reads: the first is the marker alone
    assert!(
        jsonl.contains(r#""dir":"rx","data":"‹secret:root-password›"}"#),
        "{jsonl}"
    );
    drop(c);
    dev.join().unwrap();
}

#[test]
fn usb_lookup_without_the_device_is_not_found() {
    let wanted = UsbMatch {
        vid: 0x1209,
        pid: 0x0001,
        serial: Some("hilt-no-such-board".into()),
    };
    let err = find_usb_serial(&wanted).unwrap_err();
    assert!(matches!(err, LinkError::UsbNotFound { .. }), "{err}");
    assert!(err.to_string().contains("1209:0001"), "{err}");
}
