//! A central speaking [`wire`](super::wire) to a simulated peripheral over a Unix stream socket: a
//! scan asks whoever listens for its advertisement (no listener = nothing in range), a connection is
//! a socket connection of its own.
//!
//! Each connection has a reader thread that splits the peer's lines into replies and notifications
//! and ends when the peer hangs up, breaks the protocol, or the connection is dropped (which shuts
//! the socket down). Lines are read in bounded pieces and never kept past [`MAX_LINE`]; the queues
//! between the thread and the caller are bounded too, so a hostile peer cannot grow memory.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::wire::{Line, MAX_LINE, Reply, Request};
use super::{Advert, BleCentral, BleError, BlePeripheral, BleUuid, GattService};
use crate::Cancel;

/// Replies the reader may hold for the caller. Every request gets one reply and the caller waits
/// for it, so more than a few queued means the peer answers what nobody asked.
const REPLY_BACKLOG: usize = 16;
/// Notifications held for the caller (across characteristics) before new ones are dropped.
const NOTIFY_BACKLOG: usize = 4096;
/// How much of a bad line an error quotes.
const QUOTE: usize = 120;

/// A radio with one simulated device in range, behind the Unix socket at `path`.
#[derive(Debug, Clone)]
pub struct SocketCentral {
    path: PathBuf,
}

impl SocketCentral {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SocketCentral { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new connection, or `None` when nobody listens (no such socket, or refused).
    fn dial(&self) -> Result<Option<Connection>, BleError> {
        match UnixStream::connect(&self.path) {
            Ok(stream) => Connection::start(stream).map(Some),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                Ok(None)
            }
            Err(e) => Err(BleError::Unreachable(format!(
                "cannot connect to {}: {e}",
                self.path.display()
            ))),
        }
    }
}

impl BleCentral for SocketCentral {
    fn scan(&self, within: Duration, cancel: &Cancel) -> Result<Vec<Advert>, BleError> {
        if cancel.is_cancelled() {
            return Err(BleError::Cancelled);
        }
        let Some(mut conn) = self.dial()? else {
            return Ok(Vec::new());
        };
        let advert = conn.advertise(within, Some(cancel))?;
        Ok(vec![advert])
    }

    fn connect(&self, address: &str, within: Duration) -> Result<Box<dyn BlePeripheral>, BleError> {
        let not_found = |seen: Vec<String>| BleError::NotFound {
            wanted: format!("address {address}"),
            waited_ms: within.as_millis() as u64,
            seen,
        };
        let Some(mut conn) = self.dial()? else {
            return Err(not_found(Vec::new()));
        };
        let advert = conn.advertise(within, None)?;
        if !advert.address.eq_ignore_ascii_case(address) {
            return Err(not_found(vec![advert.address]));
        }
        Ok(Box::new(SocketPeripheral {
            conn: Some(conn),
            services: None,
            discovery: within,
        }))
    }
}

/// A connection to the simulated device.
#[derive(Debug)]
pub struct SocketPeripheral {
    /// `None` once disconnected.
    conn: Option<Connection>,
    services: Option<Vec<GattService>>,
    /// The deadline of service discovery, which the trait call does not take: the connect's.
    discovery: Duration,
}

impl SocketPeripheral {
    fn conn(&mut self) -> Result<&mut Connection, BleError> {
        self.conn
            .as_mut()
            .ok_or_else(|| BleError::Unreachable("disconnected".into()))
    }

    /// A characteristic unknown to a discovered table is refused here, as a real stack would.
    fn known(&self, char: &BleUuid) -> Result<(), BleError> {
        match &self.services {
            Some(services)
                if !services
                    .iter()
                    .flat_map(|s| &s.characteristics)
                    .any(|c| c.uuid == *char) =>
            {
                Err(BleError::NoSuchCharacteristic(*char))
            }
            _ => Ok(()),
        }
    }
}

impl BlePeripheral for SocketPeripheral {
    fn services(&mut self) -> Result<Vec<GattService>, BleError> {
        if let Some(s) = &self.services {
            return Ok(s.clone());
        }
        let within = self.discovery;
        // Discovery reads the primary service declarations (0x2800): a refusal is of those.
        let services = match self.conn()?.request(&Request::Services, within)? {
            Reply::Services(s) => s,
            Reply::Att(att) => return Err(refused("discover", BleUuid::from_u16(0x2800), att)),
            other => return Err(unexpected("services", &other)),
        };
        self.services = Some(services.clone());
        Ok(services)
    }

    fn read(&mut self, char: &BleUuid, within: Duration) -> Result<Vec<u8>, BleError> {
        self.known(char)?;
        match self
            .conn()?
            .request(&Request::Read { char: *char }, within)?
        {
            Reply::Value(h) => hex::decode(&h).map_err(|e| {
                BleError::Protocol(format!(
                    "the value read from {char} is not hex ({e}): {}",
                    quote(h.as_bytes())
                ))
            }),
            Reply::Att(att) => Err(refused("read", *char, att)),
            other => Err(unexpected("read", &other)),
        }
    }

    fn write(
        &mut self,
        char: &BleUuid,
        value: &[u8],
        with_response: bool,
        within: Duration,
    ) -> Result<(), BleError> {
        self.known(char)?;
        let req = Request::Write {
            char: *char,
            value: hex::encode(value),
            with_response,
        };
        match self.conn()?.request(&req, within)? {
            Reply::Done => Ok(()),
            Reply::Att(att) => Err(refused("write", *char, att)),
            other => Err(unexpected("write", &other)),
        }
    }

    fn subscribe(&mut self, char: &BleUuid, within: Duration) -> Result<(), BleError> {
        self.known(char)?;
        match self
            .conn()?
            .request(&Request::Subscribe { char: *char }, within)?
        {
            Reply::Done => Ok(()),
            Reply::Att(att) => Err(refused("subscribe", *char, att)),
            other => Err(unexpected("subscribe", &other)),
        }
    }

    fn notification(
        &mut self,
        char: &BleUuid,
        within: Duration,
    ) -> Result<Option<Vec<u8>>, BleError> {
        self.conn()?.notification(char, within)
    }

    fn disconnect(&mut self) {
        // Dropping the connection shuts the socket down and joins its reader.
        self.conn = None;
    }
}

fn refused(op: &str, char: BleUuid, att: String) -> BleError {
    BleError::Refused {
        op: op.into(),
        char,
        att,
    }
}

fn unexpected(op: &str, reply: &Reply) -> BleError {
    let kind = match reply {
        Reply::Done => "done",
        Reply::Advert(_) => "an advertisement",
        Reply::Services(_) => "a service table",
        Reply::Value(_) => "a value",
        Reply::Att(_) => "an ATT error",
    };
    BleError::Protocol(format!("the peripheral answered {op} with {kind}"))
}

/// The first bytes of a bad line, printable.
fn quote(line: &[u8]) -> String {
    let cut = &line[..line.len().min(QUOTE)];
    let text = String::from_utf8_lossy(cut);
    if line.len() > QUOTE {
        format!("{text:?}...")
    } else {
        format!("{text:?}")
    }
}

/// One socket connection: the write side, and the queues its reader thread fills.
#[derive(Debug)]
struct Connection {
    stream: UnixStream,
    replies: Receiver<Reply>,
    notes: Receiver<(BleUuid, Vec<u8>)>,
    /// Why the reader stopped, when it stopped on its own.
    fatal: Arc<Mutex<Option<BleError>>>,
    reader: Option<JoinHandle<()>>,
    /// Replies still owed to requests that timed out: the next ones to arrive are theirs.
    owed: usize,
    /// Notifications taken off the queue while looking for another characteristic's.
    held: BTreeMap<BleUuid, VecDeque<Vec<u8>>>,
    held_count: usize,
    /// Set when the connection can no longer be used (a request sent in part, a protocol error).
    broken: Option<BleError>,
}

impl Connection {
    fn start(stream: UnixStream) -> Result<Self, BleError> {
        let read_half = stream
            .try_clone()
            .map_err(|e| BleError::Unreachable(format!("cannot use the socket: {e}")))?;
        let (reply_tx, replies) = mpsc::sync_channel(REPLY_BACKLOG);
        let (note_tx, notes) = mpsc::sync_channel(NOTIFY_BACKLOG);
        let fatal = Arc::new(Mutex::new(None));
        let slot = fatal.clone();
        let reader = std::thread::Builder::new()
            .name("hilt-ble-socket".into())
            .spawn(move || {
                let why = read_lines(&read_half, &reply_tx, &note_tx);
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                // Whatever stopped the reader, the peer sees the connection end.
                let _ = read_half.shutdown(Shutdown::Both);
            })
            .map_err(|e| BleError::Unreachable(format!("cannot start the socket reader: {e}")))?;
        Ok(Connection {
            stream,
            replies,
            notes,
            fatal,
            reader: Some(reader),
            owed: 0,
            held: BTreeMap::new(),
            held_count: 0,
            broken: None,
        })
    }

    fn advertise(&mut self, within: Duration, cancel: Option<&Cancel>) -> Result<Advert, BleError> {
        match self.exchange(&Request::Advertise, within, cancel)? {
            Reply::Advert(a) => Ok(a),
            other => Err(unexpected("advertise", &other)),
        }
    }

    /// Why the reader ended (once it has), as the error every later operation gives.
    fn ended(&mut self) -> BleError {
        let why = self
            .fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| BleError::Unreachable("the connection ended".into()));
        self.broken = Some(why.clone());
        why
    }

    /// Sends `req` and waits for its reply until `within` has passed.
    fn request(&mut self, req: &Request, within: Duration) -> Result<Reply, BleError> {
        self.exchange(req, within, None)
    }

    /// [`request`](Self::request), also ending early (`Cancelled`) when `cancel` is set.
    fn exchange(
        &mut self,
        req: &Request,
        within: Duration,
        cancel: Option<&Cancel>,
    ) -> Result<Reply, BleError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let until = Instant::now() + within;
        let timeout = BleError::Timeout(within.as_millis() as u64);
        // A reply queued before we ask is no answer to this request.
        loop {
            match self.replies.try_recv() {
                Ok(_) if self.owed > 0 => self.owed -= 1,
                Ok(r) => {
                    let e = BleError::Protocol(format!(
                        "a reply nobody asked for ({})",
                        quote(serde_json::to_string(&r).unwrap_or_default().as_bytes())
                    ));
                    self.broken = Some(e.clone());
                    return Err(e);
                }
                Err(_) => break,
            }
        }
        let mut line = serde_json::to_vec(req)
            .map_err(|e| BleError::Protocol(format!("cannot encode the request: {e}")))?;
        if line.len() > MAX_LINE {
            return Err(BleError::Protocol(format!(
                "the request is {} bytes, over the {MAX_LINE}-byte line limit",
                line.len()
            )));
        }
        line.push(b'\n');
        self.send(&line, until, &timeout)?;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let wait = match cancel {
                Some(_) => left.min(crate::cancel_poll()),
                None => left,
            };
            match self.replies.recv_timeout(wait) {
                Ok(_) if self.owed > 0 => self.owed -= 1,
                Ok(reply) => return Ok(reply),
                Err(RecvTimeoutError::Timeout) => {
                    let cancelled = cancel.is_some_and(Cancel::is_cancelled);
                    if cancelled || Instant::now() >= until {
                        self.owed += 1;
                        return Err(if cancelled {
                            BleError::Cancelled
                        } else {
                            timeout
                        });
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.ended()),
            }
        }
    }

    /// Writes one whole line before `until`; a line sent in part breaks the framing for good.
    fn send(&mut self, line: &[u8], until: Instant, timeout: &BleError) -> Result<(), BleError> {
        let mut sent = 0;
        while sent < line.len() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.cut(sent, timeout.clone()));
            }
            if let Err(e) = self.stream.set_write_timeout(Some(left)) {
                return Err(self.cut(sent, BleError::Unreachable(e.to_string())));
            }
            match self.stream.write(&line[sent..]) {
                Ok(0) => {
                    return Err(
                        self.cut(sent, BleError::Unreachable("the peripheral hung up".into()))
                    );
                }
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(self.cut(sent, timeout.clone()));
                }
                Err(e) => {
                    let why = match self.fatal.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                        Some(fatal) => fatal,
                        None => BleError::Unreachable(format!("the peripheral hung up ({e})")),
                    };
                    return Err(self.cut(sent, why));
                }
            }
        }
        Ok(())
    }

    /// The error of a failed send; after part of a line the connection cannot be used again.
    fn cut(&mut self, sent: usize, e: BleError) -> BleError {
        if sent > 0 {
            self.broken = Some(BleError::Unreachable(
                "a request was sent in part, the connection is no longer usable".into(),
            ));
            let _ = self.stream.shutdown(Shutdown::Both);
        }
        e
    }

    fn notification(
        &mut self,
        char: &BleUuid,
        within: Duration,
    ) -> Result<Option<Vec<u8>>, BleError> {
        if let Some(v) = self.held.get_mut(char).and_then(VecDeque::pop_front) {
            self.held_count -= 1;
            return Ok(Some(v));
        }
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.notes.recv_timeout(left) {
                Ok((c, v)) if c == *char => return Ok(Some(v)),
                Ok((c, v)) => {
                    // Another characteristic's: kept for its reader, within the same bound.
                    if self.held_count < NOTIFY_BACKLOG {
                        self.held.entry(c).or_default().push_back(v);
                        self.held_count += 1;
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Ok(None),
                Err(RecvTimeoutError::Disconnected) => return Err(self.ended()),
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Wakes the reader blocked in read: it sees end of file and returns.
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

/// The reader thread's loop: lines in, replies and notifications out. Returns why it stopped.
fn read_lines(
    stream: &UnixStream,
    replies: &SyncSender<Reply>,
    notes: &SyncSender<(BleUuid, Vec<u8>)>,
) -> BleError {
    let mut input = BufReader::with_capacity(64 * 1024, stream);
    let mut line = Vec::new();
    let mut dropped = 0u64;
    loop {
        line.clear();
        match read_bounded(&mut input, &mut line) {
            Ok(false) => {
                return BleError::Unreachable("the peripheral hung up".into());
            }
            Ok(true) => {}
            Err(LineError::TooLong) => {
                return BleError::Protocol(format!(
                    "the peripheral sent a line longer than {MAX_LINE} bytes (starting {})",
                    quote(&line)
                ));
            }
            Err(LineError::Io(e)) => {
                return BleError::Unreachable(format!("reading from the peripheral: {e}"));
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed: Line = match serde_json::from_slice(&line) {
            Ok(l) => l,
            Err(e) if e.is_syntax() || e.is_eof() => {
                return BleError::Protocol(format!(
                    "invalid JSON from the peripheral ({e}): {}",
                    quote(&line)
                ));
            }
            Err(e) => {
                return BleError::Protocol(format!(
                    "a line that is neither a reply nor a notification ({e}): {}",
                    quote(&line)
                ));
            }
        };
        match parsed {
            Line::Reply(r) => match replies.try_send(r) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    return BleError::Protocol(format!(
                        "the peripheral sent more than {REPLY_BACKLOG} replies nobody asked for"
                    ));
                }
                // The connection is being dropped.
                Err(TrySendError::Disconnected(_)) => {
                    return BleError::Unreachable("disconnected".into());
                }
            },
            Line::Notify { char, value } => {
                let Ok(bytes) = hex::decode(&value) else {
                    return BleError::Protocol(format!(
                        "the notification of {char} is not hex: {}",
                        quote(value.as_bytes())
                    ));
                };
                match notes.try_send((char, bytes)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        // As a radio stack would when nobody reads: newest dropped, counted.
                        dropped += 1;
                        if dropped == 1 || dropped.is_power_of_two() {
                            tracing::warn!(
                                dropped,
                                "BLE notifications dropped: nobody is reading them"
                            );
                        }
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        return BleError::Unreachable("disconnected".into());
                    }
                }
            }
        }
    }
}

enum LineError {
    TooLong,
    Io(io::Error),
}

/// Reads one line (without its `\n`) into `line`, never holding more than [`MAX_LINE`] bytes of
/// it. `Ok(false)` at end of input (a last line without `\n` is dropped: the peer hung up mid-line).
fn read_bounded(input: &mut impl BufRead, line: &mut Vec<u8>) -> Result<bool, LineError> {
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(LineError::Io(e)),
        };
        if chunk.is_empty() {
            return Ok(false);
        }
        let (piece, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], true),
            None => (chunk, false),
        };
        if line.len() + piece.len() > MAX_LINE {
            let room = MAX_LINE - line.len();
            line.extend_from_slice(&piece[..room.min(QUOTE)]);
            return Err(LineError::TooLong);
        }
        line.extend_from_slice(piece);
        let used = piece.len() + usize::from(done);
        input.consume(used);
        if done {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Result<Vec<u8>, &'static str>> {
        let mut r = BufReader::with_capacity(7, input);
        let mut out = Vec::new();
        loop {
            let mut l = Vec::new();
            match read_bounded(&mut r, &mut l) {
                Ok(true) => out.push(Ok(l)),
                Ok(false) => return out,
                Err(LineError::TooLong) => {
                    out.push(Err("too long"));
                    return out;
                }
                Err(LineError::Io(_)) => {
                    out.push(Err("io"));
                    return out;
                }
            }
        }
    }

    #[test]
    fn lines_are_split_across_small_reads_and_bounded() {
        assert_eq!(
            lines(b"ab\n\ncdefghijklmnop\nqr"),
            [
                Ok(b"ab".to_vec()),
                Ok(vec![]),
                Ok(b"cdefghijklmnop".to_vec())
            ]
        );
        let mut exact = vec![b'x'; MAX_LINE];
        exact.push(b'\n');
        assert_eq!(lines(&exact), [Ok(vec![b'x'; MAX_LINE])]);
        let over = vec![b'y'; MAX_LINE + 1];
        assert_eq!(lines(&over), [Err("too long")]);
    }

    #[test]
    fn quotes_are_short() {
        let q = quote(&[b'a'; 1000]);
        assert!(q.len() < QUOTE + 10 && q.ends_with("..."), "{q}");
        assert_eq!(quote(b"{}"), "\"{}\"");
    }
}
