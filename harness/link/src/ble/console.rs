//! A BLE connection driven like a console: binding scripts carry out actions over BLE with the same
//! send/expect engine, transcripts and masking as over a serial line. Each line written is one GATT
//! operation; its answer comes back as one line to expect on:
//!
//! | written                      | answered                                                     |
//! |------------------------------|--------------------------------------------------------------|
//! | `read UUID`                  | `read UUID: HEX "TEXT"` or `read UUID: refused ATT-ERROR`     |
//! | `write UUID TEXT`            | `write UUID: done` or `write UUID: refused ATT-ERROR`         |
//! | `write UUID hex:HEX`         | (the same, the value given as bytes)                          |
//! | `write-cmd UUID TEXT`        | (a write without response)                                   |
//! | `subscribe UUID`             | `subscribe UUID: done`, then `notify UUID: HEX "TEXT"` lines  |
//!
//! `"TEXT"` is the value as UTF-8 when it is printable, else omitted. Anything else on the way (no
//! answer, a broken exchange) is `OP UUID: error WHY`; a lost connection ends the port (EOF).

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use super::{BleError, BlePeripheral, BleUuid};
use crate::serial::Port;

/// Longest command line accepted; a longer one is answered with an error, not kept.
const MAX_COMMAND: usize = 4096;
/// How long one notification poll may take while a read waits.
const NOTIFY_SLICE: Duration = Duration::from_millis(20);

pub struct GattPort {
    conn: Box<dyn BlePeripheral>,
    /// Per GATT operation.
    timeout: Duration,
    pending: Vec<u8>,
    out: VecDeque<u8>,
    subscribed: Vec<BleUuid>,
    /// Where the next notification poll starts, so every subscription gets its turn.
    next: usize,
    lost: bool,
}

impl GattPort {
    pub fn new(conn: Box<dyn BlePeripheral>, timeout: Duration) -> Self {
        GattPort {
            conn,
            timeout,
            pending: Vec::new(),
            out: VecDeque::new(),
            subscribed: Vec::new(),
            next: 0,
            lost: false,
        }
    }

    fn answer(&mut self, line: &str) {
        self.out.extend(line.as_bytes());
        self.out.push_back(b'\n');
    }

    /// Carries out one command line.
    fn command(&mut self, line: &str) {
        let mut words = line.splitn(3, ' ');
        let (op, target, rest) = (words.next().unwrap_or(""), words.next(), words.next());
        let Some(uuid) = target.and_then(|t| t.parse::<BleUuid>().ok()) else {
            let shown: String = line.chars().take(80).collect();
            self.answer(&format!(
                "{op}: error not a command (read|write|write-cmd|subscribe UUID [VALUE]): {shown:?}"
            ));
            return;
        };
        let result = match (op, rest) {
            ("read", None) => self.conn.read(&uuid, self.timeout).map(|v| shown_value(&v)),
            ("write" | "write-cmd", Some(value)) => match value_bytes(value) {
                Ok(bytes) => self
                    .conn
                    .write(&uuid, &bytes, op == "write", self.timeout)
                    .map(|()| "done".into()),
                Err(why) => Ok(format!("error {why}")),
            },
            ("subscribe", None) => self.conn.subscribe(&uuid, self.timeout).map(|()| {
                if !self.subscribed.contains(&uuid) {
                    self.subscribed.push(uuid);
                }
                "done".into()
            }),
            _ => Ok("error not a command (read|write|write-cmd|subscribe UUID [VALUE])".into()),
        };
        let said = match result {
            Ok(s) => s,
            Err(BleError::Refused { att, .. }) => format!("refused {att}"),
            Err(BleError::Unreachable(why)) => {
                self.lost = true;
                format!("error {why}")
            }
            Err(e) => format!("error {e}"),
        };
        self.answer(&format!("{op} {uuid}: {said}"));
    }

    /// Notifications that arrived, each as a line, waiting at most about `within` in all.
    fn poll_notifications(&mut self, within: Duration) {
        if self.subscribed.is_empty() {
            std::thread::sleep(within.min(NOTIFY_SLICE));
            return;
        }
        let n = self.subscribed.len();
        let slice = (within / n as u32).min(NOTIFY_SLICE);
        for i in 0..n {
            let uuid = self.subscribed[(self.next + i) % n];
            match self.conn.notification(&uuid, slice) {
                Ok(Some(v)) => {
                    self.next = (self.next + i + 1) % n;
                    let line = format!("notify {uuid}: {}", shown_value(&v));
                    self.answer(&line);
                    return;
                }
                Ok(None) => {}
                Err(BleError::Unreachable(_)) => {
                    self.lost = true;
                    return;
                }
                Err(_) => {}
            }
        }
    }
}

/// `HEX "TEXT"`, or `HEX` when the value is not printable UTF-8 (or empty: `""`).
fn shown_value(v: &[u8]) -> String {
    let hex = hex::encode(v);
    match std::str::from_utf8(v) {
        Ok(t) if !t.is_empty() && t.chars().all(|c| !c.is_control()) => format!("{hex} {t:?}"),
        _ if v.is_empty() => "\"\"".into(),
        _ => hex,
    }
}

/// A written value: `hex:…` as bytes, anything else as its UTF-8.
fn value_bytes(v: &str) -> Result<Vec<u8>, String> {
    match v.strip_prefix("hex:") {
        Some(h) => hex::decode(h).map_err(|e| format!("bad hex value: {e}")),
        None => Ok(v.as_bytes().to_vec()),
    }
}

impl Port for GattPort {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if self.out.is_empty() {
            if self.lost {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.poll_notifications(timeout);
        }
        let n = buf.len().min(self.out.len());
        for (slot, b) in buf.iter_mut().zip(self.out.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if self.lost {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        for &b in data {
            match b {
                b'\n' | b'\r' => {
                    let line = String::from_utf8_lossy(&std::mem::take(&mut self.pending))
                        .trim()
                        .to_string();
                    if !line.is_empty() {
                        self.command(&line);
                    }
                }
                _ if self.pending.len() >= MAX_COMMAND => {
                    self.pending.clear();
                    self.answer("error command longer than 4096 bytes");
                }
                _ => self.pending.push(b),
            }
        }
        Ok(())
    }
}

impl Drop for GattPort {
    fn drop(&mut self) {
        self.conn.disconnect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ble::{BleCentral, FakeCentral};
    use crate::{Cancel, Console, ConsoleOptions};

    fn port(fixture: &str) -> (FakeCentral, GattPort) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/ble")
            .join(fixture);
        let central = FakeCentral::new(vec![FakeCentral::recorded(&path).unwrap()]);
        let advert = central
            .scan(Duration::from_millis(10), &Cancel::new())
            .unwrap()
            .remove(0);
        let conn = central
            .connect(&advert.address, Duration::from_secs(1))
            .unwrap();
        (central, GattPort::new(conn, Duration::from_secs(1)))
    }

    /// Expects `text` literally.
    fn expect(c: &mut Console<Box<dyn Port>>, text: &str) {
        let re = regex::Regex::new(&regex::escape(text)).unwrap();
        c.expect(&[("match", &re)], Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    }

    #[test]
    fn reads_writes_refusals_and_notifications_answer_as_lines_to_expect_on() {
        let (central, p) = port("polar-h10.json");
        let mut c = Console::new(Box::new(p) as Box<dyn Port>, ConsoleOptions::default());
        c.send(b"read 0x2a24\n").unwrap();
        expect(&mut c, "read 0x2a24: 506f6c617220483130 \"Polar H10\"\n");
        c.send(b"read 0x2a8a\n").unwrap();
        expect(
            &mut c,
            "read 0x2a8a: refused user-data-access-not-permitted\n",
        );
        c.send(b"read 0x2a19\n").unwrap();
        expect(&mut c, "read 0x2a19: 5a \"Z\"\n");
        c.send(b"subscribe 0x2a19\n").unwrap();
        expect(&mut c, "subscribe 0x2a19: done\n");
        let address = central
            .scan(Duration::from_millis(10), &Cancel::new())
            .unwrap()
            .remove(0)
            .address;
        assert_eq!(
            central.notify(&address, &BleUuid::from_u16(0x2a19), &[0x40]),
            1
        );
        expect(&mut c, "notify 0x2a19: 40 \"@\"\n");
        c.send(b"bogus\n").unwrap();
        expect(&mut c, "bogus: error not a command");
        c.send(b"write 0x2a19 hex:zz\n").unwrap();
        expect(&mut c, "write 0x2a19: error bad hex value");
    }
}
