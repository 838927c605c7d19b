//! The expect engine's cost over the bare transport: request/response round trips and bulk receive on
//! a real pseudo-terminal, engine vs a raw loop on the same port, measured in one run and printed as
//! ratios. Bounded in count and time; `cargo bench -p hilt-link`.

use std::fs::File;
use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use hilt_link::{Console, ConsoleOptions, Port, SerialPort};
use regex::Regex;

const ROUND_TRIPS: usize = 2_000;
const BULK: usize = 8 * 1024 * 1024;

/// A pseudo-terminal whose device end answers every `\r` with `ok\r\n`, or streams `BULK` bytes
/// followed by `END\r\n` when it receives `b`.
fn device() -> SerialPort {
    let pair = nix::pty::openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&pair.slave).expect("ttyname");
    let port = SerialPort::open(&path, 115_200).expect("open");
    let mut master = File::from(pair.master);
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let chunk = vec![b'x'; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                return;
            }
            for &b in &buf[..n] {
                let ok = match b {
                    b'\r' => master.write_all(b"ok\r\n"),
                    b'b' => (0..BULK / chunk.len())
                        .try_for_each(|_| master.write_all(&chunk))
                        .and_then(|()| master.write_all(b"END\r\n")),
                    _ => Ok(()),
                };
                if ok.is_err() {
                    return;
                }
            }
        }
    });
    port
}

/// Raw loop: write, then read until the marker, with the same port and timeouts.
fn raw_until(port: &mut SerialPort, marker: &[u8], seen: &mut Vec<u8>) {
    let mut buf = [0u8; 16 * 1024];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.windows(marker.len()).any(|w| w == marker) {
        assert!(Instant::now() < deadline, "device stopped answering");
        let n = port
            .read_timeout(&mut buf, Duration::from_millis(100))
            .expect("read");
        seen.extend_from_slice(&buf[..n]);
        // Keep only a tail, as the engine does: the marker is at the end.
        if seen.len() > 64 * 1024 {
            seen.drain(..seen.len() - 16);
        }
    }
    seen.clear();
}

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let ok = Regex::new(r"ok\r\n").expect("regex");
    let end = Regex::new(r"END\r\n").expect("regex");

    let mut raw = device();
    let mut seen = Vec::new();
    let t = Instant::now();
    for _ in 0..ROUND_TRIPS {
        raw.write_all(b"\r").expect("write");
        raw_until(&mut raw, b"ok\r\n", &mut seen);
    }
    let raw_rt = t.elapsed();
    let t = Instant::now();
    raw.write_all(b"b").expect("write");
    raw_until(&mut raw, b"END\r\n", &mut seen);
    let raw_bulk = t.elapsed();

    let mut engine = Console::new(device(), ConsoleOptions::default());
    let t = Instant::now();
    for _ in 0..ROUND_TRIPS {
        engine.send(b"\r").expect("send");
        engine
            .expect(&[("ok", &ok)], Duration::from_secs(30))
            .expect("expect");
    }
    let eng_rt = t.elapsed();
    let t = Instant::now();
    engine.send(b"b").expect("send");
    engine
        .expect(&[("end", &end)], Duration::from_secs(60))
        .expect("expect");
    let eng_bulk = t.elapsed();
    let transcript = engine.transcript().recorded_bytes();

    let (raw_rps, eng_rps) = (
        per_second(ROUND_TRIPS, raw_rt),
        per_second(ROUND_TRIPS, eng_rt),
    );
    let mb = BULK as f64 / (1024.0 * 1024.0);
    let (raw_mbs, eng_mbs) = (mb / raw_bulk.as_secs_f64(), mb / eng_bulk.as_secs_f64());
    println!(
        "round trips ({ROUND_TRIPS}): raw loop {raw_rps:.0}/s, expect engine {eng_rps:.0}/s, ratio engine/raw {:.2}",
        eng_rps / raw_rps
    );
    println!(
        "bulk receive ({mb:.0} MiB): raw loop {raw_mbs:.1} MiB/s, expect engine {eng_mbs:.1} MiB/s, ratio engine/raw {:.2}",
        eng_mbs / raw_mbs
    );
    println!("transcript kept {transcript} bytes (bounded by ConsoleOptions::transcript_limit)");
}
