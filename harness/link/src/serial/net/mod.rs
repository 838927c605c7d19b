//! Serial links over the network, as ser2net and labgrid's `NetworkSerialPort` export them: RFC 2217
//! (telnet with COM-PORT-OPTION, so the client sets baud rate, framing and flow control) or raw TCP.
//! A [`NetPort`] is a [`Port`], so the expect engine, transcripts and masking work on it unchanged.

mod telnet;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use tracing::{debug, info, warn};

use self::telnet::{ComPort, Telnet};
use super::escape::{escape_into, tail_chars};
use super::port::{Port, poll_timeout};
use crate::LinkError;
use crate::error::NetTrouble;

/// Bytes read from the socket at a time; decoded data is never more than what was read.
const RAW_CHUNK: usize = 16 * 1024;
/// Device output kept from the RFC 2217 negotiation, handed out by the first reads.
const MAX_EARLY: usize = 64 * 1024;
/// How much of what a server said before hanging up goes into the error.
const SAID_CHARS: usize = 200;
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Parity, as RFC 2217's SET-PARITY names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parity {
    #[default]
    None,
    Odd,
    Even,
    Mark,
    Space,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopBits {
    #[default]
    One,
    Two,
    OnePointFive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlowControl {
    #[default]
    None,
    XonXoff,
    RtsCts,
}

/// The line settings a client asks an RFC 2217 server for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSettings {
    pub baud: u32,
    /// 5 to 8.
    pub data_bits: u8,
    pub parity: Parity,
    pub stop_bits: StopBits,
    pub flow: FlowControl,
}

impl Default for LineSettings {
    /// 115200 8N1, no flow control.
    fn default() -> Self {
        Self::new(115_200)
    }
}

impl LineSettings {
    /// `baud` 8N1, no flow control.
    pub fn new(baud: u32) -> Self {
        Self {
            baud,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: StopBits::One,
            flow: FlowControl::None,
        }
    }

    fn check(&self) -> Result<(), String> {
        // Zero asks the server for its current rate instead of setting one.
        if self.baud == 0 {
            return Err("baud rate 0 is not a rate".into());
        }
        if !(5..=8).contains(&self.data_bits) {
            return Err(format!("{} data bits: must be 5 to 8", self.data_bits));
        }
        Ok(())
    }

    /// The RFC 2217 commands that set these, with a name for messages.
    fn commands(&self) -> [(u8, Vec<u8>, &'static str); 5] {
        let parity = match self.parity {
            Parity::None => 1,
            Parity::Odd => 2,
            Parity::Even => 3,
            Parity::Mark => 4,
            Parity::Space => 5,
        };
        let stop = match self.stop_bits {
            StopBits::One => 1,
            StopBits::Two => 2,
            StopBits::OnePointFive => 3,
        };
        // Outbound (= both ways) flow control.
        let flow = match self.flow {
            FlowControl::None => 1,
            FlowControl::XonXoff => 2,
            FlowControl::RtsCts => 3,
        };
        [
            (
                telnet::SET_BAUDRATE,
                self.baud.to_be_bytes().to_vec(),
                "SET-BAUDRATE",
            ),
            (telnet::SET_DATASIZE, vec![self.data_bits], "SET-DATASIZE"),
            (telnet::SET_PARITY, vec![parity], "SET-PARITY"),
            (telnet::SET_STOPSIZE, vec![stop], "SET-STOPSIZE"),
            (telnet::SET_CONTROL, vec![flow], "SET-CONTROL"),
        ]
    }
}

/// What one socket read brought.
enum Got {
    Nothing,
    Bytes,
    Eof,
}

/// A serial console served over TCP: raw bytes, or telnet with RFC 2217.
///
/// Reads hand out device bytes only (telnet commands stripped, IAC IAC un-doubled); writes escape
/// them. The server hanging up reads as `UnexpectedEof` (writes: `BrokenPipe`), which the
/// [`crate::Console`] takes as the device end going away. A telnet protocol error, or a write
/// the server did not take within the write timeout, leaves the stream out of step: every later
/// read and write then fails with that error (`InvalidData` / `TimedOut`).
pub struct NetPort {
    addr: String,
    stream: TcpStream,
    telnet: Option<Telnet>,
    raw: Vec<u8>,
    /// Decoded device bytes not handed out yet, from `taken` on.
    pending: Vec<u8>,
    taken: usize,
    eof: bool,
    broken: Option<(io::ErrorKind, String)>,
    write_timeout: Duration,
    tx: Vec<u8>,
}

impl NetPort {
    /// Connect to a raw TCP serial server (ser2net `accepter: tcp,...`, labgrid's
    /// `NetworkSerialPort` with `protocol: raw`): bytes pass unchanged, the line settings are the
    /// server's. `addr` is `host:port`; connecting (with the name lookup) takes at most
    /// `connect_timeout`. A server that cannot open its device (ser2net) accepts, says why and
    /// hangs up: that reads as device output followed by end of file.
    pub fn raw(addr: &str, connect_timeout: Duration) -> Result<NetPort, LinkError> {
        let stream = connect(addr, connect_timeout)?;
        let port = Self::over(addr, stream, None)?;
        info!(addr, "serial over raw TCP: connected");
        Ok(port)
    }

    /// Connect to an RFC 2217 server (ser2net `accepter: telnet(rfc2217),tcp,...`, labgrid's
    /// default `NetworkSerialPort`) and set the line: BINARY and SUPPRESS-GO-AHEAD are asked for
    /// both ways, COM-PORT-OPTION offered, then baud rate, data size, parity, stop size and flow
    /// control set, each acknowledged by the server with the value asked for. Connecting and the
    /// whole negotiation take at most `connect_timeout`.
    ///
    /// Errors ([`LinkError::Net`]) say which: the server unreachable or hanging up during the
    /// set-up ([`LinkError::is_unreachable`]), refusing COM-PORT-OPTION or a setting, or not
    /// answering in time. Device output that arrives during the negotiation is kept for the first
    /// reads.
    pub fn rfc2217(
        addr: &str,
        settings: LineSettings,
        connect_timeout: Duration,
    ) -> Result<NetPort, LinkError> {
        settings
            .check()
            .map_err(|why| net_error(addr, NetTrouble::Invalid, why))?;
        let started = Instant::now();
        let stream = connect(addr, connect_timeout)?;
        let mut port = Self::over(addr, stream, Some(Telnet::new(true)))?;
        port.negotiate(&settings, started, connect_timeout)?;
        info!(addr, baud = settings.baud, "serial over RFC 2217: line set");
        Ok(port)
    }

    fn over(addr: &str, stream: TcpStream, telnet: Option<Telnet>) -> Result<NetPort, LinkError> {
        let setup = |e: io::Error| {
            net_error(
                addr,
                NetTrouble::Io,
                format!("cannot set up the connection: {e}"),
            )
        };
        // Console traffic is small request/response exchanges: no Nagle delay.
        stream.set_nodelay(true).map_err(setup)?;
        // Waits are poll()s with their own timeouts; a read or write never blocks past them.
        stream.set_nonblocking(true).map_err(setup)?;
        Ok(NetPort {
            addr: addr.to_string(),
            stream,
            telnet,
            raw: vec![0; RAW_CHUNK],
            pending: Vec::new(),
            taken: 0,
            eof: false,
            broken: None,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            tx: Vec::new(),
        })
    }

    /// The server's `host:port` as given.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `rfc2217 HOST:PORT` or `tcp HOST:PORT`.
    pub fn describe(&self) -> String {
        match self.telnet {
            Some(_) => format!("rfc2217 {}", self.addr),
            None => format!("tcp {}", self.addr),
        }
    }

    /// How long a write may wait for the server to take data before failing (default 5 s).
    pub fn set_write_timeout(&mut self, timeout: Duration) {
        self.write_timeout = timeout;
    }

    /// The last line state the RFC 2217 server notified (NOTIFY-LINESTATE), if any.
    pub fn line_state(&self) -> Option<u8> {
        self.telnet.as_ref()?.line_state()
    }

    /// The last modem state the RFC 2217 server notified (NOTIFY-MODEMSTATE), if any.
    pub fn modem_state(&self) -> Option<u8> {
        self.telnet.as_ref()?.modem_state()
    }

    fn err(&self, trouble: NetTrouble, why: String) -> LinkError {
        net_error(&self.addr, trouble, why)
    }

    fn negotiate(
        &mut self,
        settings: &LineSettings,
        started: Instant,
        timeout: Duration,
    ) -> Result<(), LinkError> {
        let deadline = started + timeout;
        let commands = settings.commands();
        let mut sent = false;
        if let Some(t) = self.telnet.as_mut() {
            t.start();
        }
        loop {
            let Some(t) = self.telnet.as_mut() else {
                return Ok(());
            };
            match t.com_port() {
                ComPort::Refused(verb) => {
                    return Err(self.err(
                        NetTrouble::Refused,
                        format!(
                            "refuses COM-PORT-OPTION (answered {verb} 44): not an RFC 2217 server \
                             (for ser2net the accepter must be `telnet(rfc2217),tcp,...`)"
                        ),
                    ));
                }
                ComPort::Agreed if !sent => {
                    t.forget_answers();
                    for (code, value, _) in &commands {
                        t.com_port_command(*code, value);
                    }
                    sent = true;
                }
                _ => {}
            }
            if sent && commands.iter().all(|(code, ..)| t.answer(*code).is_some()) {
                self.check_answers(settings, &commands)?;
                // Answers to the server's last requests go out now, not with the first write.
                return self
                    .flush_owed()
                    .map_err(|e| self.setup_error(e, "sending the negotiation"));
            }
            self.flush_owed()
                .map_err(|e| self.setup_error(e, "sending the negotiation"))?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let waiting = if !sent {
                    "no answer to WILL COM-PORT-OPTION".to_string()
                } else {
                    let t = self.telnet.as_ref();
                    let missing: Vec<&str> = commands
                        .iter()
                        .filter(|(code, ..)| t.is_some_and(|t| t.answer(*code).is_none()))
                        .map(|(.., name)| *name)
                        .collect();
                    format!("no acknowledgement of {}", missing.join(", "))
                };
                return Err(self.err(
                    NetTrouble::NoAnswer,
                    format!("{waiting} within {timeout:?} (RFC 2217 negotiation)"),
                ));
            }
            match self.fill(left) {
                Ok(Got::Eof) => return Err(self.hung_up()),
                Ok(_) => {}
                Err(e) => return Err(self.setup_error(e, "the RFC 2217 negotiation")),
            }
            self.bound_early();
        }
    }

    fn check_answers(
        &self,
        settings: &LineSettings,
        commands: &[(u8, Vec<u8>, &'static str)],
    ) -> Result<(), LinkError> {
        let Some(t) = self.telnet.as_ref() else {
            return Ok(());
        };
        for (code, value, name) in commands {
            let got = t.answer(*code).unwrap_or_default();
            if got.len() < value.len() {
                return Err(self.err(
                    NetTrouble::Protocol,
                    format!(
                        "answered {name} with {} bytes, expected {}",
                        got.len(),
                        value.len()
                    ),
                ));
            }
            let got = &got[..value.len()];
            if got != value.as_slice() {
                let shown = |v: &[u8]| match *code {
                    telnet::SET_BAUDRATE => {
                        u32::from_be_bytes(v.try_into().unwrap_or_default()).to_string()
                    }
                    _ => v.first().map(|b| b.to_string()).unwrap_or_default(),
                };
                return Err(self.err(
                    NetTrouble::Refused,
                    format!(
                        "answered {name} with {} when asked for {} (settings {settings:?})",
                        shown(got),
                        shown(value)
                    ),
                ));
            }
        }
        debug!(addr = %self.addr, ?settings, "rfc2217: every setting acknowledged");
        Ok(())
    }

    fn setup_error(&mut self, e: io::Error, during: &str) -> LinkError {
        let trouble = match e.kind() {
            io::ErrorKind::InvalidData => NetTrouble::Protocol,
            io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => NetTrouble::HungUp,
            _ => NetTrouble::Io,
        };
        if trouble == NetTrouble::HungUp {
            // A write found it gone: what it said before leaving may still be unread.
            for _ in 0..8 {
                if !matches!(self.fill(Duration::ZERO), Ok(Got::Bytes)) {
                    break;
                }
            }
            self.bound_early();
            return self.hung_up();
        }
        self.err(trouble, format!("{during}: {e}{}", self.said()))
    }

    fn hung_up(&self) -> LinkError {
        self.err(
            NetTrouble::HungUp,
            format!(
                "closed the connection during the RFC 2217 negotiation{}",
                self.said()
            ),
        )
    }

    /// `; it said: "..."` with the tail of what the server sent as data, if anything.
    fn said(&self) -> String {
        let data = &self.pending[self.taken..];
        if data.is_empty() {
            return String::new();
        }
        let mut text = String::new();
        escape_into(&mut text, data);
        format!("; it said: \"{}\"", tail_chars(&text, SAID_CHARS))
    }

    /// Keep only the newest device output while the negotiation has not finished.
    fn bound_early(&mut self) {
        let kept = self.pending.len() - self.taken;
        if kept > MAX_EARLY {
            let drop = kept - MAX_EARLY;
            warn!(
                addr = %self.addr,
                dropped = drop,
                "device output during the RFC 2217 negotiation exceeded the buffer"
            );
            self.taken += drop;
        }
        if self.taken > 0 && self.taken == self.pending.len() {
            self.pending.clear();
            self.taken = 0;
        }
    }

    /// Wait up to `timeout` for the socket to be readable, then read once and decode into
    /// `pending`.
    fn fill(&mut self, timeout: Duration) -> io::Result<Got> {
        if self.eof {
            return Ok(Got::Eof);
        }
        if !self.wait(PollFlags::POLLIN, timeout)? {
            return Ok(Got::Nothing);
        }
        let n = match (&self.stream).read(&mut self.raw) {
            Ok(0) => {
                self.eof = true;
                return Ok(Got::Eof);
            }
            Ok(n) => n,
            Err(e) if is_wait(&e) => return Ok(Got::Nothing),
            Err(e) if is_gone(&e) => {
                debug!(addr = %self.addr, error = %e, "serial server connection reset");
                self.eof = true;
                return Ok(Got::Eof);
            }
            Err(e) => return Err(e),
        };
        let input = &self.raw[..n];
        match self.telnet.as_mut() {
            None => self.pending.extend_from_slice(input),
            Some(t) => {
                if let Err(e) = t.feed(input, &mut self.pending) {
                    let why = format!("serial server {}: {e}", self.addr);
                    self.broken = Some((io::ErrorKind::InvalidData, why.clone()));
                    return Err(io::Error::new(io::ErrorKind::InvalidData, why));
                }
            }
        }
        Ok(Got::Bytes)
    }

    /// Wait for `flags` (or an error or hang-up, which the next read or write reports).
    fn wait(&self, flags: PollFlags, timeout: Duration) -> io::Result<bool> {
        let mut fds = [PollFd::new(self.stream.as_fd(), flags)];
        match poll(&mut fds, poll_timeout(timeout)) {
            Ok(0) | Err(Errno::EINTR) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    fn check_broken(&self) -> io::Result<()> {
        match &self.broken {
            Some((kind, why)) => Err(io::Error::new(*kind, why.clone())),
            None => Ok(()),
        }
    }

    /// Send the telnet answers and requests owed to the server.
    fn flush_owed(&mut self) -> io::Result<()> {
        let owed = match self.telnet.as_mut() {
            Some(t) => t.take_owed(),
            None => return Ok(()),
        };
        if owed.is_empty() {
            return Ok(());
        }
        self.send(&owed)
    }

    fn send(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        self.check_broken()?;
        let deadline = Instant::now() + self.write_timeout;
        while !bytes.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.wait(PollFlags::POLLOUT, left)? {
                if left.is_zero() {
                    // Part of a command may have gone out: the stream is out of step for good.
                    let why = format!(
                        "serial server {} did not take data within {:?}; the link is unusable",
                        self.addr, self.write_timeout
                    );
                    self.broken = Some((io::ErrorKind::TimedOut, why.clone()));
                    return Err(io::Error::new(io::ErrorKind::TimedOut, why));
                }
                continue;
            }
            match (&self.stream).write(bytes) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        format!("serial server {} closed the connection", self.addr),
                    ));
                }
                Ok(n) => bytes = &bytes[n..],
                Err(e) if is_wait(&e) => {}
                Err(e) if is_gone(&e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        format!("serial server {} closed the connection: {e}", self.addr),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Port for NetPort {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if self.taken < self.pending.len() {
                let n = buf.len().min(self.pending.len() - self.taken);
                buf[..n].copy_from_slice(&self.pending[self.taken..self.taken + n]);
                self.taken += n;
                if self.taken == self.pending.len() {
                    self.pending.clear();
                    self.taken = 0;
                }
                return Ok(n);
            }
            self.check_broken()?;
            if self.eof {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("serial server {} closed the connection", self.addr),
                ));
            }
            // Answers to what the server asked in the last chunk go out before waiting again. A
            // server already gone is found by the read, after what it sent before leaving.
            match self.flush_owed() {
                Err(e) if !is_gone(&e) => return Err(e),
                _ => {}
            }
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            let got = self.fill(left)?;
            // Out of time with no data (a server streaming only commands included): say so.
            if left.is_zero() && self.taken >= self.pending.len() && !matches!(got, Got::Eof) {
                return Ok(0);
            }
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.flush_owed()?;
        let mut tx = std::mem::take(&mut self.tx);
        tx.clear();
        match self.telnet.as_ref() {
            Some(t) => t.encode(data, &mut tx),
            None => tx.extend_from_slice(data),
        }
        let sent = self.send(&tx);
        // Keep a modest buffer for the next write, not the largest ever.
        if tx.capacity() <= RAW_CHUNK {
            self.tx = tx;
        }
        sent
    }
}

fn net_error(addr: &str, trouble: NetTrouble, why: String) -> LinkError {
    LinkError::Net {
        addr: addr.to_string(),
        trouble,
        why,
    }
}

fn is_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// Connect within `timeout`. The name lookup can block far longer than that, so it and the connect
/// run on a helper thread that is abandoned at the deadline (it ends on its own by then).
fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, LinkError> {
    let invalid = |why: &str| net_error(addr, NetTrouble::Invalid, why.to_string());
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(invalid("not host:port"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(invalid("not host:port"));
    }
    let deadline = Instant::now() + timeout;
    let (tx, rx) = mpsc::channel::<io::Result<TcpStream>>();
    let target = addr.to_string();
    std::thread::Builder::new()
        .name("net-serial-connect".into())
        .spawn(move || {
            let _ = tx.send(crate::memory::gdb_remote::connect_any(&target, deadline));
        })
        .map_err(|e| {
            net_error(
                addr,
                NetTrouble::Io,
                format!("cannot start a connecting thread: {e}"),
            )
        })?;
    let unreachable = |why: String| net_error(addr, NetTrouble::Unreachable, why);
    match rx.recv_timeout(timeout) {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => Err(unreachable(format!(
            "no answer to the connection attempt within {timeout:?}"
        ))),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(unreachable(format!(
            "no answer to the connection attempt (name lookup included) within {timeout:?}"
        ))),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(net_error(
            addr,
            NetTrouble::Io,
            "the connecting thread died".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn settings_are_checked_before_connecting() {
        let mut s = LineSettings::new(9600);
        s.data_bits = 9;
        // Port 9 on a documentation address: never contacted, the settings fail first.
        let err = NetPort::rfc2217("192.0.2.1:9", s, Duration::from_secs(5))
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                LinkError::Net {
                    trouble: NetTrouble::Invalid,
                    ..
                }
            ),
            "{err}"
        );
        let err = NetPort::rfc2217("192.0.2.1:9", LineSettings::new(0), Duration::from_secs(5))
            .err()
            .unwrap();
        assert!(err.to_string().contains("baud rate 0"), "{err}");
    }

    #[test]
    fn a_bad_address_is_invalid_not_unreachable() {
        for addr in ["localhost", "localhost:port", ":2000", "localhost:70000"] {
            let err = NetPort::raw(addr, Duration::from_secs(1)).err().unwrap();
            assert!(
                matches!(
                    err,
                    LinkError::Net {
                        trouble: NetTrouble::Invalid,
                        ..
                    }
                ),
                "{addr}: {err}"
            );
            assert!(!err.is_unreachable());
        }
    }

    #[test]
    fn refused_connection_is_unreachable_and_named() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let err = NetPort::raw(&addr, Duration::from_secs(5)).err().unwrap();
        assert!(err.is_unreachable(), "{err}");
        assert!(err.to_string().contains(&addr), "{err}");
    }

    #[test]
    fn raw_reads_time_out_with_zero_and_eof_after_the_data() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut port = NetPort::raw(&addr, Duration::from_secs(5)).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let mut buf = [0u8; 16];
        let started = Instant::now();
        assert_eq!(
            port.read_timeout(&mut buf, Duration::from_millis(100))
                .unwrap(),
            0
        );
        assert!(started.elapsed() >= Duration::from_millis(100));
        peer.write_all(&[0xff, 0, b'\r']).unwrap();
        drop(peer);
        let mut got = Vec::new();
        let until = Instant::now() + Duration::from_secs(5);
        let err = loop {
            assert!(Instant::now() < until);
            match port.read_timeout(&mut buf, Duration::from_millis(200)) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(got, [0xff, 0, b'\r']);
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
