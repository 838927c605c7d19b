//! Talking to the board's console in tests: write a line, read until a marker (shared by the pty and
//! cloud tests).

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

pub fn send(port: &mut serialport::TTYPort, text: &str) {
    port.write_all(text.as_bytes()).unwrap();
    port.flush().unwrap();
}

/// Reads until `needle` appears; returns everything read.
pub fn expect(port: &mut serialport::TTYPort, needle: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        match port.read(&mut buf) {
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
        let text = String::from_utf8_lossy(&seen);
        if text.contains(needle) {
            return text.into_owned();
        }
    }
    panic!(
        "timed out waiting for {needle:?}; got {:?}",
        String::from_utf8_lossy(&seen)
    );
}

/// The slave path from the board's `PTY <path>` ready line on stdout.
pub fn pty_path(child: &mut std::process::Child) -> String {
    pty_of(&ready_line(child))
}

/// The board's ready line (`PTY <path>`, then ` DEBUG <addr>` with a debug port), trimmed.
pub fn ready_line(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim_end().to_string()
}

/// The pty path a ready line names.
pub fn pty_of(line: &str) -> String {
    line.strip_prefix("PTY ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no PTY line, got {line:?}"))
        .to_string()
}
