//! A client for the GDB remote serial protocol over TCP: the stub of OpenOCD, J-Link, pyOCD, the Black
//! Magic Probe's TCP bridge, QEMU or `gdbserver` answers memory reads (`m addr,len`).
//!
//! The packet codec ([`codec`]: framing, checksums, escaping, run-length decoding, a [`codec::Decoder`]
//! fed arbitrary chunks) knows nothing of sockets and is tested on its own. [`GdbRemote`] puts it on a
//! `TcpStream` with every wait bounded by [`Limits::deadline`] and the [`Cancel`] flag, retransmits
//! bounded by [`MAX_RETRANSMITS`] and packets bounded by [`codec::MAX_PACKET`].
//!
//! An error reply to a memory read (`E01`, `E.text`) is a [`MemoryError::Refused`]: the stub answered
//! and would not give the bytes. The protocol does not say why, so a locked debug port and an address
//! with nothing mapped look the same; the reason names the code the stub sent. Everything else (nothing
//! listening, silence, garbage, a closed connection) is bench trouble.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tracing::{debug, trace};

use super::{Limits, MemoryError, MemoryLink, Region};
use crate::Cancel;
use crate::cancel::POLL;

use codec::{Decoder, Frame};

/// The pure packet codec of the GDB remote protocol: no I/O.
pub mod codec {
    /// The most bytes we accept in a packet, both as sent (between `$` and `#`) and once escapes and
    /// run-length encoding are undone; longer is a protocol error. Framing (`$`, `#`, checksum) is extra.
    pub const MAX_PACKET: usize = 64 * 1024;

    /// The modulo-256 sum of `data`: the packet checksum of the bytes between `$` and `#`.
    pub fn checksum(data: &[u8]) -> u8 {
        data.iter().fold(0u8, |sum, b| sum.wrapping_add(*b))
    }

    /// Bytes that cannot appear literally inside a packet.
    pub fn needs_escape(b: u8) -> bool {
        matches!(b, b'$' | b'#' | b'}' | b'*')
    }

    /// Escape `payload` for a packet body: each special byte becomes `}` followed by the byte xor 0x20.
    pub fn escape(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len());
        for &b in payload {
            if needs_escape(b) {
                out.push(b'}');
                out.push(b ^ 0x20);
            } else {
                out.push(b);
            }
        }
        out
    }

    /// A whole packet: `$`, the escaped payload, `#`, two lower-case hex digits of checksum.
    pub fn encode(payload: &[u8]) -> Vec<u8> {
        frame_body(&escape(payload))
    }

    /// Frame an already escaped (and possibly run-length encoded) body.
    pub fn frame_body(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 4);
        out.push(b'$');
        out.extend_from_slice(body);
        out.push(b'#');
        out.extend_from_slice(format!("{:02x}", checksum(body)).as_bytes());
        out
    }

    /// Undo escapes and run-length encoding of a packet body, refusing to produce more than `max` bytes.
    ///
    /// `}` x is x xor 0x20; `*` n repeats the byte before it n - 29 more times (n printable, so 3 to 97).
    pub fn unpack(body: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
        let mut out: Vec<u8> = Vec::with_capacity(body.len().min(max));
        let mut i = 0;
        while i < body.len() {
            match body[i] {
                b'}' => {
                    let &b = body.get(i + 1).ok_or(DecodeError::DanglingEscape)?;
                    if out.len() >= max {
                        return Err(DecodeError::TooLong { limit: max });
                    }
                    out.push(b ^ 0x20);
                    i += 2;
                }
                b'*' => {
                    let &n = body.get(i + 1).ok_or(DecodeError::DanglingRun)?;
                    if !(b' '..=b'~').contains(&n) {
                        return Err(DecodeError::BadRunCount(n));
                    }
                    let &last = out.last().ok_or(DecodeError::RunWithoutByte)?;
                    let more = usize::from(n - 29);
                    if out.len() + more > max {
                        return Err(DecodeError::TooLong { limit: max });
                    }
                    out.resize(out.len() + more, last);
                    i += 2;
                }
                b => {
                    if out.len() >= max {
                        return Err(DecodeError::TooLong { limit: max });
                    }
                    out.push(b);
                    i += 1;
                }
            }
        }
        Ok(out)
    }

    /// One thing read off the wire.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Frame {
        /// `+`: the last packet arrived intact.
        Ack,
        /// `-`: the last packet arrived damaged; send it again.
        Nack,
        /// `$...#cs` with a good checksum, unescaped and run-length decoded.
        Packet(Vec<u8>),
        /// `%...#cs`: an asynchronous notification (non-stop mode), decoded like a packet.
        Notification(Vec<u8>),
        /// A packet whose checksum did not match (`got` is `None` when the digits were not hex):
        /// answer `-` in acknowledgement mode.
        Corrupt { expected: u8, got: Option<u8> },
    }

    /// A stream that cannot be GDB remote protocol.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum DecodeError {
        #[error("a packet longer than {limit} bytes")]
        TooLong { limit: usize },
        #[error("a packet ends inside an escape (`}}` with nothing after it)")]
        DanglingEscape,
        #[error("a packet ends inside a run-length count (`*` with nothing after it)")]
        DanglingRun,
        #[error("a run-length count with no byte before it to repeat")]
        RunWithoutByte,
        #[error("run-length count byte {0:#04x} is not printable")]
        BadRunCount(u8),
        #[error("more than {0} bytes of noise outside any packet")]
        Noise(usize),
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum State {
        /// Between frames.
        Idle,
        /// After `$` or `%`, collecting the body.
        Body,
        /// After `#`, waiting for the first checksum digit.
        Sum1,
        /// Waiting for the second checksum digit.
        Sum2(u8),
    }

    /// Splits a byte stream fed in arbitrary chunks into [`Frame`]s. It never holds more than `max`
    /// bytes of a packet body (allocated up front), and gives up on more than `max` bytes of noise
    /// between frames.
    #[derive(Debug)]
    pub struct Decoder {
        max: usize,
        state: State,
        body: Vec<u8>,
        notification: bool,
        noise: usize,
    }

    impl Decoder {
        pub fn new(max: usize) -> Self {
            Decoder {
                max,
                state: State::Idle,
                body: Vec::with_capacity(max),
                notification: false,
                noise: 0,
            }
        }

        /// Bytes of an unfinished packet held now (never more than the bound given to [`Decoder::new`]).
        pub fn buffered(&self) -> usize {
            self.body.len()
        }

        /// The bound given to [`Decoder::new`].
        pub fn max(&self) -> usize {
            self.max
        }

        /// Decode `bytes`, appending the frames they complete to `out`. On error the frames before it
        /// are in `out` and the decoder is back between frames.
        pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), DecodeError> {
            for &b in bytes {
                if let Some(frame) = self.push(b)? {
                    out.push(frame);
                }
            }
            Ok(())
        }

        /// Decode one byte.
        pub fn push(&mut self, b: u8) -> Result<Option<Frame>, DecodeError> {
            match self.state {
                State::Idle => match b {
                    b'+' => Ok(Some(self.done(Frame::Ack))),
                    b'-' => Ok(Some(self.done(Frame::Nack))),
                    b'$' | b'%' => {
                        self.notification = b == b'%';
                        self.body.clear();
                        self.state = State::Body;
                        Ok(None)
                    }
                    _ => {
                        self.noise += 1;
                        if self.noise > self.max {
                            self.reset();
                            return Err(DecodeError::Noise(self.max));
                        }
                        Ok(None)
                    }
                },
                State::Body => match b {
                    b'#' => {
                        self.state = State::Sum1;
                        Ok(None)
                    }
                    // A `$` cannot occur inside a packet: the one before was cut short, start over.
                    b'$' => {
                        self.notification = false;
                        self.body.clear();
                        Ok(None)
                    }
                    _ => {
                        if self.body.len() >= self.max {
                            self.reset();
                            return Err(DecodeError::TooLong { limit: self.max });
                        }
                        self.body.push(b);
                        Ok(None)
                    }
                },
                State::Sum1 => {
                    self.state = State::Sum2(b);
                    Ok(None)
                }
                State::Sum2(hi) => {
                    self.state = State::Idle;
                    let expected = checksum(&self.body);
                    let got = hex_digit(hi).zip(hex_digit(b)).map(|(h, l)| (h << 4) | l);
                    if got != Some(expected) {
                        self.body.clear();
                        return Ok(Some(self.done(Frame::Corrupt { expected, got })));
                    }
                    let payload = unpack(&self.body, self.max);
                    self.body.clear();
                    let payload = payload?;
                    let frame = if self.notification {
                        Frame::Notification(payload)
                    } else {
                        Frame::Packet(payload)
                    };
                    Ok(Some(self.done(frame)))
                }
            }
        }

        fn done(&mut self, frame: Frame) -> Frame {
            self.noise = 0;
            frame
        }

        fn reset(&mut self) {
            self.state = State::Idle;
            self.body.clear();
            self.notification = false;
            self.noise = 0;
        }
    }

    fn hex_digit(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }

    /// Run-length encode an already escaped body the way stubs do (for tests and fakes): a run of a
    /// byte is the byte then `*` and a count byte, never `#` or `$` as the count.
    #[cfg(test)]
    pub fn rle(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            let b = body[i];
            let mut run = 1;
            while i + run < body.len() && body[i + run] == b {
                run += 1;
            }
            // Never repeat an escape's second byte on its own (it would lose its `}`), nor `}`/`*`.
            let repeatable = b != b'}' && b != b'*' && !(i > 0 && body[i - 1] == b'}');
            out.push(b);
            let mut left = run - 1;
            while repeatable && left >= 3 {
                let mut more = left.min(97);
                if more == 6 || more == 7 {
                    more = 5; // count bytes `#` and `$` are not allowed
                }
                out.push(b'*');
                out.push(more as u8 + 29);
                left -= more;
            }
            for _ in 0..left {
                out.push(b);
            }
            i += run;
        }
        out
    }
}

/// How many times one packet is sent again after the other side answers `-` (or we answer `-` to a
/// damaged reply) before giving up.
pub const MAX_RETRANSMITS: u32 = 3;

/// The packet size assumed when the stub does not say (`qSupported` without `PacketSize`).
pub const DEFAULT_PACKET_SIZE: usize = 400;

/// The smallest `PacketSize` we work with; a stub announcing less is broken.
const MIN_PACKET_SIZE: usize = 16;

/// Stray acknowledgements or notifications tolerated while waiting for one reply.
const MAX_STRAYS: u32 = 1024;

/// How long dropping the link waits for the stub to confirm the detach.
const DETACH_WAIT: Duration = Duration::from_millis(300);

/// What one wait is for: its deadline, its cancel flag, and words for the error.
struct Wait<'a> {
    deadline: Instant,
    cancel: &'a Cancel,
    started: Instant,
    what: String,
}

impl<'a> Wait<'a> {
    fn new(limits: &'a Limits, what: String) -> Self {
        Wait {
            deadline: limits.deadline,
            cancel: &limits.cancel,
            started: Instant::now(),
            what,
        }
    }
}

/// A connection to a GDB remote stub, after the handshake (`qSupported`, `QStartNoAckMode` when
/// offered, `?`). Dropping it detaches (`D`) so the target is left running.
pub struct GdbRemote {
    addr: String,
    stream: TcpStream,
    decoder: Decoder,
    frames: VecDeque<Frame>,
    no_ack: bool,
    packet_size: usize,
    /// Set when the conversation got out of step (a timeout, a protocol error): later reads fail fast.
    broken: Option<String>,
    /// The stub closed the connection.
    closed: bool,
}

impl GdbRemote {
    /// Connect to `addr` (`host:port`) and do the handshake, all before `limits.deadline`.
    ///
    /// Nothing listening, no route, an unresolvable name → [`MemoryError::Unreachable`]; no answer in
    /// time → [`MemoryError::Timeout`]; something that does not speak the protocol →
    /// [`MemoryError::Protocol`].
    pub fn connect(addr: &str, limits: &Limits) -> Result<Self, MemoryError> {
        let desc = format!("gdb-remote {addr}");
        let stream = open_stream(addr, limits, &desc)?;
        let setup = |e: io::Error| MemoryError::Unreachable {
            source_desc: desc.clone(),
            reason: format!("cannot set up the connection: {e}"),
        };
        stream.set_nodelay(true).map_err(setup)?;
        stream.set_write_timeout(Some(POLL)).map_err(setup)?;
        stream.set_read_timeout(Some(POLL)).map_err(setup)?;
        debug!(addr, "gdb-remote: connected");
        let mut link = GdbRemote {
            addr: addr.to_string(),
            stream,
            decoder: Decoder::new(codec::MAX_PACKET),
            frames: VecDeque::new(),
            no_ack: false,
            packet_size: DEFAULT_PACKET_SIZE,
            broken: None,
            closed: false,
        };
        link.handshake(limits)?;
        Ok(link)
    }

    /// The packet size in use: what the stub announced, capped at [`codec::MAX_PACKET`].
    pub fn packet_size(&self) -> usize {
        self.packet_size
    }

    /// True when the stub agreed to `QStartNoAckMode`.
    pub fn no_ack(&self) -> bool {
        self.no_ack
    }

    /// The most bytes one `m` request asks for: a hex reply takes two characters a byte.
    pub fn chunk_len(&self) -> u64 {
        (self.packet_size / 2) as u64
    }

    fn handshake(&mut self, limits: &Limits) -> Result<(), MemoryError> {
        // GDB opens with an acknowledgement; stubs ignore it, some expect it.
        let wait = Wait::new(limits, "the handshake".into());
        self.send_raw(b"+", &wait)?;

        let wait = Wait::new(limits, "the handshake (qSupported)".into());
        let reply = self.transact(b"qSupported:swbreak+;hwbreak+", &wait)?;
        let features = String::from_utf8_lossy(&reply).into_owned();
        debug!(addr = %self.addr, %features, "gdb-remote: qSupported");
        let mut offers_no_ack = false;
        for feature in features.split(';') {
            if let Some(size) = feature.strip_prefix("PacketSize=") {
                let size = usize::from_str_radix(size, 16).map_err(|_| {
                    self.protocol(format!("qSupported announced PacketSize={size}, not hex"))
                })?;
                if size < MIN_PACKET_SIZE {
                    return Err(self.protocol(format!(
                        "qSupported announced PacketSize={size:#x}, smaller than {MIN_PACKET_SIZE}"
                    )));
                }
                self.packet_size = size.min(codec::MAX_PACKET);
            } else if feature == "QStartNoAckMode+" {
                offers_no_ack = true;
            }
        }

        if offers_no_ack {
            let wait = Wait::new(limits, "the handshake (QStartNoAckMode)".into());
            // The reply is acknowledged (still in acknowledgement mode), then both sides stop.
            if self.transact(b"QStartNoAckMode", &wait)? == b"OK" {
                self.no_ack = true;
            }
        }

        let wait = Wait::new(limits, "the handshake (? halt reason)".into());
        let reason = self.transact(b"?", &wait)?;
        debug!(
            addr = %self.addr,
            packet_size = self.packet_size,
            no_ack = self.no_ack,
            halt = %String::from_utf8_lossy(&reason),
            "gdb-remote: ready"
        );
        Ok(())
    }

    fn desc(&self) -> String {
        format!("gdb-remote {}", self.addr)
    }

    fn protocol(&self, detail: String) -> MemoryError {
        MemoryError::Protocol {
            source_desc: self.desc(),
            detail,
        }
    }

    fn unreachable(&self, reason: String) -> MemoryError {
        MemoryError::Unreachable {
            source_desc: self.desc(),
            reason,
        }
    }

    /// Cancelled or past the deadline?
    fn check(&self, wait: &Wait) -> Result<(), MemoryError> {
        if wait.cancel.is_cancelled() {
            return Err(MemoryError::Cancelled);
        }
        if Instant::now() >= wait.deadline {
            return Err(MemoryError::Timeout {
                source_desc: self.desc(),
                what: wait.what.clone(),
                after: wait.deadline.saturating_duration_since(wait.started),
            });
        }
        Ok(())
    }

    fn send_raw(&mut self, bytes: &[u8], wait: &Wait) -> Result<(), MemoryError> {
        let mut off = 0;
        while off < bytes.len() {
            self.check(wait)?;
            match self.stream.write(&bytes[off..]) {
                Ok(0) => {
                    return Err(self.unreachable(format!(
                        "the connection closed while sending, during {}",
                        wait.what
                    )));
                }
                Ok(n) => off += n,
                Err(e) if is_wait(&e) => {}
                Err(e) => {
                    return Err(
                        self.unreachable(format!("sending failed during {}: {e}", wait.what))
                    );
                }
            }
        }
        Ok(())
    }

    /// Read once (at most a poll interval) and decode what arrived.
    fn fill(&mut self, wait: &Wait) -> Result<(), MemoryError> {
        self.check(wait)?;
        let left = wait.deadline.saturating_duration_since(Instant::now());
        let timeout = left.clamp(Duration::from_millis(1), POLL);
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| self.unreachable(format!("cannot set a read timeout: {e}")))?;
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.closed = true;
                Err(self.unreachable(format!(
                    "the stub closed the connection during {}",
                    wait.what
                )))
            }
            Ok(n) => {
                let mut frames = Vec::new();
                let fed = self.decoder.feed(&buf[..n], &mut frames);
                self.frames.extend(frames);
                fed.map_err(|e| self.protocol(format!("during {}: {e}", wait.what)))
            }
            Err(e) if is_wait(&e) => Ok(()),
            Err(e) => Err(self.unreachable(format!("receiving failed during {}: {e}", wait.what))),
        }
    }

    fn next_frame(&mut self, wait: &Wait) -> Result<Frame, MemoryError> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Ok(frame);
            }
            self.fill(wait)?;
        }
    }

    /// Send `payload` as a packet and return the reply; a failure leaves the connection marked broken.
    fn transact(&mut self, payload: &[u8], wait: &Wait) -> Result<Vec<u8>, MemoryError> {
        if let Some(why) = &self.broken {
            return Err(self.protocol(format!(
                "the connection is out of step after an earlier error ({why}); reconnect"
            )));
        }
        let result = self.exchange(payload, wait);
        if let Err(e) = &result {
            self.broken = Some(e.to_string());
        }
        result
    }

    fn exchange(&mut self, payload: &[u8], wait: &Wait) -> Result<Vec<u8>, MemoryError> {
        let packet = codec::encode(payload);
        let shown = String::from_utf8_lossy(payload).into_owned();
        trace!(addr = %self.addr, packet = %shown, "gdb-remote: send");
        self.send_raw(&packet, wait)?;
        let mut resent = 0u32;
        let mut nacked = 0u32;
        let mut strays = 0u32;

        if !self.no_ack {
            loop {
                match self.next_frame(wait)? {
                    Frame::Ack => break,
                    Frame::Nack => {
                        resent += 1;
                        if resent > MAX_RETRANSMITS {
                            return Err(self.protocol(format!(
                                "the stub rejected `{shown}` {resent} times (bad checksum on its side)"
                            )));
                        }
                        debug!(addr = %self.addr, packet = %shown, "gdb-remote: `-`, sending again");
                        self.send_raw(&packet, wait)?;
                    }
                    Frame::Notification(_) => {}
                    // A reply without the acknowledgement before it: take it as one.
                    other => {
                        self.frames.push_front(other);
                        break;
                    }
                }
            }
        }

        loop {
            match self.next_frame(wait)? {
                Frame::Packet(reply) => {
                    if !self.no_ack {
                        self.send_raw(b"+", wait)?;
                    }
                    return Ok(reply);
                }
                Frame::Corrupt { expected, got } => {
                    if self.no_ack {
                        return Err(self.protocol(format!(
                            "reply to `{shown}` has checksum {} instead of {expected:02x} in no-ack mode",
                            got.map_or("(not hex)".into(), |g| format!("{g:02x}"))
                        )));
                    }
                    nacked += 1;
                    if nacked > MAX_RETRANSMITS {
                        return Err(self.protocol(format!(
                            "the reply to `{shown}` arrived damaged {nacked} times"
                        )));
                    }
                    debug!(addr = %self.addr, packet = %shown, "gdb-remote: damaged reply, answering `-`");
                    self.send_raw(b"-", wait)?;
                }
                Frame::Nack if !self.no_ack => {
                    resent += 1;
                    if resent > MAX_RETRANSMITS {
                        return Err(self.protocol(format!(
                            "the stub rejected `{shown}` {resent} times (bad checksum on its side)"
                        )));
                    }
                    self.send_raw(&packet, wait)?;
                }
                Frame::Ack | Frame::Nack | Frame::Notification(_) => {
                    strays += 1;
                    if strays > MAX_STRAYS {
                        return Err(self.protocol(format!(
                            "more than {MAX_STRAYS} stray acknowledgements or notifications while waiting for the reply to `{shown}`"
                        )));
                    }
                }
            }
        }
    }

    /// Best effort: ask the stub to detach so the target runs on, and wait briefly for its `OK`.
    fn detach(&mut self) {
        if self.closed {
            return;
        }
        let cancel = Cancel::new();
        let wait = Wait {
            deadline: Instant::now() + DETACH_WAIT,
            cancel: &cancel,
            started: Instant::now(),
            what: "detaching".into(),
        };
        self.frames.clear();
        if self.send_raw(&codec::encode(b"D"), &wait).is_ok() {
            loop {
                match self.next_frame(&wait) {
                    Ok(Frame::Packet(reply)) => {
                        debug!(addr = %self.addr, reply = %String::from_utf8_lossy(&reply), "gdb-remote: detached");
                        if !self.no_ack {
                            let _ = self.send_raw(b"+", &wait);
                        }
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        debug!(addr = %self.addr, error = %e, "gdb-remote: no answer to detach");
                        break;
                    }
                }
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

impl Drop for GdbRemote {
    fn drop(&mut self) {
        self.detach();
    }
}

impl std::fmt::Debug for GdbRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GdbRemote")
            .field("addr", &self.addr)
            .field("packet_size", &self.packet_size)
            .field("no_ack", &self.no_ack)
            .field("broken", &self.broken)
            .finish()
    }
}

impl MemoryLink for GdbRemote {
    fn describe(&self) -> String {
        self.desc()
    }

    fn read(&mut self, region: &Region, limits: &Limits) -> Result<Vec<u8>, MemoryError> {
        limits.admit(region)?;
        if region.start.checked_add(region.len).is_none() {
            return Err(self.unreachable(format!(
                "region {} ({} bytes at {:#x}) runs past the end of the address space",
                region.name, region.len, region.start
            )));
        }
        let what = format!(
            "reading region {} ({} bytes at {:#x})",
            region.name, region.len, region.start
        );
        let wait = Wait::new(limits, what);
        let chunk = self.chunk_len().max(1);
        let mut out: Vec<u8> = Vec::with_capacity(region.len.min(1 << 20) as usize);
        while (out.len() as u64) < region.len {
            self.check(&wait)?;
            let addr = region.start + out.len() as u64;
            let want = (region.len - out.len() as u64).min(chunk);
            let request = format!("m{addr:x},{want:x}");
            let reply = self.transact(request.as_bytes(), &wait)?;
            match parse_memory_reply(&reply) {
                MemoryReply::Error(code) => {
                    debug!(addr = %self.addr, %request, %code, "gdb-remote: read refused");
                    return Err(MemoryError::Refused {
                        source_desc: self.desc(),
                        what: format!(
                            "{want} bytes at {addr:#x} (region {}, {:#x}+{:#x})",
                            region.name, region.start, region.len
                        ),
                        reason: format!("the stub answered `{code}` to `{request}`"),
                    });
                }
                MemoryReply::Data(bytes) if bytes.is_empty() => {
                    return Err(self.protocol(format!(
                        "empty reply to `{request}` (not an error, not data)"
                    )));
                }
                MemoryReply::Data(bytes) if bytes.len() as u64 > want => {
                    return Err(self.protocol(format!(
                        "{} bytes in the reply to `{request}`, which asked for {want}",
                        bytes.len()
                    )));
                }
                MemoryReply::Data(bytes) => {
                    if (bytes.len() as u64) < want {
                        trace!(addr = %self.addr, %request, got = bytes.len(), "gdb-remote: short reply, continuing");
                    }
                    out.extend_from_slice(&bytes);
                }
                MemoryReply::Bad(detail) => {
                    return Err(self.protocol(format!("reply to `{request}`: {detail}")));
                }
            }
        }
        Ok(out)
    }
}

/// A reply to `m`.
#[derive(Debug, PartialEq, Eq)]
enum MemoryReply {
    Data(Vec<u8>),
    /// `Exx` or `E.text`, as sent.
    Error(String),
    Bad(String),
}

fn parse_memory_reply(reply: &[u8]) -> MemoryReply {
    // Data is an even number of hex digits, so `E` and two digits cannot be data.
    if reply.len() == 3 && reply[0] == b'E' && reply[1..].iter().all(u8::is_ascii_hexdigit) {
        return MemoryReply::Error(String::from_utf8_lossy(reply).into_owned());
    }
    if reply.starts_with(b"E.") {
        let text: String = String::from_utf8_lossy(reply).chars().take(200).collect();
        return MemoryReply::Error(text);
    }
    match hex::decode(reply) {
        Ok(bytes) => MemoryReply::Data(bytes),
        Err(e) => {
            let shown: String = String::from_utf8_lossy(reply).chars().take(64).collect();
            MemoryReply::Bad(format!("not hex data ({e}): `{shown}`"))
        }
    }
}

fn is_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Resolve and connect on a helper thread, so a slow name lookup or a silent host is abandoned at the
/// deadline or on cancel (the thread ends on its own by the deadline).
fn open_stream(addr: &str, limits: &Limits, desc: &str) -> Result<TcpStream, MemoryError> {
    let unreachable = |reason: String| MemoryError::Unreachable {
        source_desc: desc.to_string(),
        reason,
    };
    let started = Instant::now();
    let timeout = || MemoryError::Timeout {
        source_desc: desc.to_string(),
        what: "connecting".into(),
        after: limits.deadline.saturating_duration_since(started),
    };
    if limits.remaining().is_zero() {
        return Err(timeout());
    }
    let (tx, rx) = mpsc::channel::<io::Result<TcpStream>>();
    let target = addr.to_string();
    let deadline = limits.deadline;
    std::thread::Builder::new()
        .name("gdb-remote-connect".into())
        .spawn(move || {
            let _ = tx.send(connect_any(&target, deadline));
        })
        .map_err(|e| unreachable(format!("cannot start a connecting thread: {e}")))?;
    loop {
        if limits.cancel.is_cancelled() {
            return Err(MemoryError::Cancelled);
        }
        match rx.recv_timeout(POLL) {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => return Err(timeout()),
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() >= limits.deadline {
                    return Err(timeout());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(unreachable("the connecting thread died".into()));
            }
        }
    }
}

/// The first of `addr`'s resolved addresses that accepts a TCP connection before `deadline` (shared
/// with network serial ports).
pub(crate) fn connect_any(addr: &str, deadline: Instant) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot resolve `{addr}` (host:port): {e}"),
            )
        })?
        .collect();
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("`{addr}` resolves to no address"),
    );
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => return Ok(s),
            Err(e) => {
                last = io::Error::new(e.kind(), format!("cannot connect to {a}: {e}"));
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::codec::*;
    use super::*;
    use proptest::prelude::*;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    // ---- codec ----

    fn decode_all(bytes: &[u8], max: usize) -> Result<Vec<Frame>, DecodeError> {
        let mut d = Decoder::new(max);
        let mut out = Vec::new();
        d.feed(bytes, &mut out)?;
        Ok(out)
    }

    #[test]
    fn memory_checksum_and_encoding_match_the_protocol() {
        assert_eq!(checksum(b""), 0);
        assert_eq!(checksum(b"OK"), 0x9a);
        assert_eq!(encode(b"OK"), b"$OK#9a");
        assert_eq!(encode(b"m0,4"), b"$m0,4#fd");
        assert_eq!(encode(b""), b"$#00");
        // `$ # } *` are escaped as `}` + byte ^ 0x20, and the checksum covers the escaped body.
        assert_eq!(escape(b"a$b#c}d*e"), b"a}\x04b}\x03c}]d}\x0ae");
        let p = encode(b"}");
        assert_eq!(
            p,
            format!("$}}]#{:02x}", b'}'.wrapping_add(b']')).as_bytes()
        );
    }

    #[test]
    fn memory_codec_round_trips_every_byte() {
        let payload: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
        let frames = decode_all(&encode(&payload), MAX_PACKET).unwrap();
        assert_eq!(frames, vec![Frame::Packet(payload)]);
    }

    #[test]
    fn memory_decoder_reads_acks_packets_and_notifications_in_pieces() {
        let mut stream = b"+-".to_vec();
        stream.extend(encode(b"S05"));
        stream.extend(b"%Stop:T05#");
        stream.extend(format!("{:02X}", checksum(b"Stop:T05")).as_bytes()); // upper-case digits
        let mut d = Decoder::new(64);
        let mut out = Vec::new();
        for b in &stream {
            d.feed(std::slice::from_ref(b), &mut out).unwrap();
        }
        assert_eq!(
            out,
            vec![
                Frame::Ack,
                Frame::Nack,
                Frame::Packet(b"S05".to_vec()),
                Frame::Notification(b"Stop:T05".to_vec()),
            ]
        );
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn memory_decoder_flags_bad_checksums() {
        assert_eq!(
            decode_all(b"$OK#00", 64).unwrap(),
            vec![Frame::Corrupt {
                expected: 0x9a,
                got: Some(0)
            }]
        );
        assert_eq!(
            decode_all(b"$OK#zz+", 64).unwrap(),
            vec![
                Frame::Corrupt {
                    expected: 0x9a,
                    got: None
                },
                Frame::Ack
            ]
        );
    }

    #[test]
    fn memory_decoder_undoes_run_length_encoding() {
        // "0* " is "0000": the count byte ' ' (32) means 32 - 29 = 3 more.
        assert_eq!(unpack(b"0* ", 64).unwrap(), b"0000");
        assert_eq!(unpack(b"ab*\"c", 64).unwrap(), b"abbbbbbc");
        assert_eq!(unpack(b"x*~", 200).unwrap(), vec![b'x'; 98]);
        // An escaped byte can be repeated.
        assert_eq!(unpack(b"}]* ", 64).unwrap(), b"}}}}");
        assert_eq!(unpack(b"* ", 64), Err(DecodeError::RunWithoutByte));
        assert_eq!(unpack(b"a*", 64), Err(DecodeError::DanglingRun));
        assert_eq!(unpack(b"a*\x10", 64), Err(DecodeError::BadRunCount(0x10)));
        assert_eq!(unpack(b"a}", 64), Err(DecodeError::DanglingEscape));
        // A run cannot blow past the bound.
        assert_eq!(
            unpack(b"a*~*~*~", 100),
            Err(DecodeError::TooLong { limit: 100 })
        );
        let body = rle(b"1111111122222222222222223");
        assert!(body.len() < 25, "{}", String::from_utf8_lossy(&body));
        let frames = decode_all(&frame_body(&body), 64).unwrap();
        assert_eq!(
            frames,
            vec![Frame::Packet(b"1111111122222222222222223".to_vec())]
        );
    }

    #[test]
    fn memory_decoder_bounds_packets_and_noise() {
        let mut long = b"$".to_vec();
        long.extend(vec![b'a'; 65]);
        assert_eq!(
            decode_all(&long, 64),
            Err(DecodeError::TooLong { limit: 64 })
        );
        assert_eq!(decode_all(&[b'z'; 65], 64), Err(DecodeError::Noise(64)));
        // Noise between frames is skipped; a `$` inside a body restarts the packet.
        assert_eq!(
            decode_all(b"hello$junk$OK#9a", 64).unwrap(),
            vec![Frame::Packet(b"OK".to_vec())]
        );
    }

    #[test]
    fn memory_reply_parsing_tells_errors_from_data() {
        assert_eq!(parse_memory_reply(b"E01"), MemoryReply::Error("E01".into()));
        assert_eq!(
            parse_memory_reply(b"E.locked"),
            MemoryReply::Error("E.locked".into())
        );
        assert_eq!(parse_memory_reply(b"e0"), MemoryReply::Data(vec![0xe0]));
        assert_eq!(
            parse_memory_reply(b"E0A1"),
            MemoryReply::Data(vec![0xe0, 0xa1])
        );
        assert!(matches!(parse_memory_reply(b"OK"), MemoryReply::Bad(_)));
        assert!(matches!(parse_memory_reply(b"abc"), MemoryReply::Bad(_)));
        assert_eq!(parse_memory_reply(b""), MemoryReply::Data(vec![]));
    }

    fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = bytes;
        for &c in cuts {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at(c % (rest.len() + 1));
            out.push(a.to_vec());
            rest = b;
        }
        out.push(rest.to_vec());
        out
    }

    fn wire_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            any::<u8>(),
            Just(b'$'),
            Just(b'#'),
            Just(b'*'),
            Just(b'}'),
            Just(b'%'),
            Just(b'+'),
            Just(b'0'),
        ]
    }

    proptest! {
        #[test]
        fn memory_decoder_survives_any_stream(
            stream in prop::collection::vec(wire_byte(), 0..4096),
            cuts in prop::collection::vec(0usize..512, 0..16),
        ) {
            let max = 64;
            let mut d = Decoder::new(max);
            for piece in chunks(&stream, &cuts) {
                let mut out = Vec::new();
                // An error puts the decoder back between frames; it goes on with the rest.
                let _ = d.feed(&piece, &mut out);
                prop_assert!(d.buffered() <= max);
                prop_assert!(out.len() <= piece.len());
                for f in out {
                    if let Frame::Packet(p) | Frame::Notification(p) = f {
                        prop_assert!(p.len() <= max);
                    }
                }
            }
        }

        #[test]
        fn memory_codec_round_trips_in_any_pieces(
            payload in prop::collection::vec(any::<u8>(), 0..300),
            cuts in prop::collection::vec(0usize..400, 0..8),
            use_rle in any::<bool>(),
        ) {
            let body = escape(&payload);
            let body = if use_rle { rle(&body) } else { body };
            let wire = frame_body(&body);
            let mut d = Decoder::new(MAX_PACKET);
            let mut out = Vec::new();
            for piece in chunks(&wire, &cuts) {
                d.feed(&piece, &mut out).unwrap();
            }
            prop_assert_eq!(out, vec![Frame::Packet(payload)]);
            prop_assert_eq!(d.buffered(), 0);
        }
    }

    // ---- a scripted fake stub ----

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum OnRead {
        Serve,
        Locked,
        Silent,
        CloseMidReply,
        Babble,
        Empty,
    }

    #[derive(Clone)]
    struct Fake {
        base: u64,
        memory: Vec<u8>,
        packet_size: usize,
        offer_no_ack: bool,
        /// Answer at most this many bytes to one `m`.
        short: Option<usize>,
        on_read: OnRead,
        rle: bool,
        /// Answer `-` to this many of the client's first packets.
        nacks: usize,
        /// Send the first reply to `m` with a bad checksum (in acknowledgement mode).
        corrupt_first_read: bool,
    }

    impl Default for Fake {
        fn default() -> Self {
            Fake {
                base: 0x2000_0000,
                memory: (0..10_000u32).map(|i| (i * 7 + i / 251) as u8).collect(),
                packet_size: 0x100,
                offer_no_ack: true,
                short: None,
                on_read: OnRead::Serve,
                rle: false,
                nacks: 0,
                corrupt_first_read: false,
            }
        }
    }

    /// What the fake saw.
    #[derive(Debug, Default)]
    struct Log {
        packets: Vec<String>,
        nacks_received: usize,
        acks_after_no_ack: usize,
        oversized_requests: usize,
    }

    struct FakeConn {
        stream: TcpStream,
        decoder: Decoder,
        frames: VecDeque<Frame>,
        ack_mode: bool,
    }

    impl FakeConn {
        fn next(&mut self) -> Option<Frame> {
            loop {
                if let Some(f) = self.frames.pop_front() {
                    return Some(f);
                }
                let mut buf = [0u8; 4096];
                match self.stream.read(&mut buf) {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => {
                        let mut out = Vec::new();
                        self.decoder.feed(&buf[..n], &mut out).ok()?;
                        self.frames.extend(out);
                    }
                }
            }
        }

        fn send(&mut self, body: &[u8], log: &Mutex<Log>, corrupt: bool) -> Option<()> {
            let mut wire = frame_body(body);
            if corrupt {
                let n = wire.len();
                wire[n - 1] = if wire[n - 1] == b'0' { b'1' } else { b'0' };
            }
            self.stream.write_all(&wire).ok()?;
            if !self.ack_mode {
                return Some(());
            }
            loop {
                match self.next()? {
                    Frame::Ack => return Some(()),
                    Frame::Nack => {
                        log.lock().unwrap().nacks_received += 1;
                        self.stream.write_all(&frame_body(body)).ok()?;
                    }
                    other => {
                        self.frames.push_front(other);
                        return Some(());
                    }
                }
            }
        }
    }

    fn serve(fake: Fake, stream: TcpStream, log: Arc<Mutex<Log>>) {
        stream.set_nodelay(true).unwrap();
        let mut c = FakeConn {
            stream,
            decoder: Decoder::new(MAX_PACKET),
            frames: VecDeque::new(),
            ack_mode: true,
        };
        let mut nacks_left = fake.nacks;
        let mut corrupt_read = fake.corrupt_first_read;
        while let Some(frame) = c.next() {
            let p = match frame {
                Frame::Packet(p) => p,
                Frame::Ack => {
                    if !c.ack_mode {
                        log.lock().unwrap().acks_after_no_ack += 1;
                    }
                    continue;
                }
                Frame::Corrupt { .. } => {
                    let _ = c.stream.write_all(b"-");
                    continue;
                }
                _ => continue,
            };
            if c.ack_mode {
                if nacks_left > 0 {
                    nacks_left -= 1;
                    let _ = c.stream.write_all(b"-");
                    continue;
                }
                let _ = c.stream.write_all(b"+");
            }
            let text = String::from_utf8_lossy(&p).into_owned();
            log.lock().unwrap().packets.push(text.clone());
            let reply: Vec<u8> = if text.starts_with("qSupported") {
                let mut r = format!("PacketSize={:x}", fake.packet_size);
                if fake.offer_no_ack {
                    r.push_str(";QStartNoAckMode+");
                }
                r.into_bytes()
            } else if text == "QStartNoAckMode" {
                c.send(b"OK", &log, false);
                c.ack_mode = false;
                continue;
            } else if text == "?" {
                b"S05".to_vec()
            } else if text == "D" {
                c.send(b"OK", &log, false);
                return;
            } else if let Some(args) = text.strip_prefix('m') {
                let (a, l) = args.split_once(',').unwrap();
                let addr = u64::from_str_radix(a, 16).unwrap();
                let len = usize::from_str_radix(l, 16).unwrap();
                if len * 2 > fake.packet_size {
                    log.lock().unwrap().oversized_requests += 1;
                }
                match fake.on_read {
                    OnRead::Serve => {}
                    OnRead::Locked => {
                        c.send(b"E01", &log, false);
                        continue;
                    }
                    OnRead::Silent => continue,
                    OnRead::Empty => {
                        c.send(b"", &log, false);
                        continue;
                    }
                    OnRead::CloseMidReply => {
                        let _ = c.stream.write_all(b"$0011223");
                        return;
                    }
                    OnRead::Babble => {
                        let _ = c.stream.write_all(b"$");
                        let junk = [b'a'; 4096];
                        while c.stream.write_all(&junk).is_ok() {}
                        return;
                    }
                }
                let off = (addr - fake.base) as usize;
                let len = fake.short.map_or(len, |s| len.min(s));
                let hex = hex::encode(&fake.memory[off..off + len]).into_bytes();
                let body = if fake.rle { rle(&hex) } else { hex };
                let corrupt = std::mem::take(&mut corrupt_read);
                c.send(&body, &log, corrupt);
                continue;
            } else {
                Vec::new()
            };
            c.send(&escape(&reply), &log, false);
        }
    }

    fn start(fake: Fake) -> (String, Arc<Mutex<Log>>, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Log::default()));
        let l = log.clone();
        let h = std::thread::spawn(move || {
            if let Ok((s, _)) = listener.accept() {
                serve(fake, s, l);
            }
        });
        (addr, log, h)
    }

    fn limits(within: Duration) -> Limits {
        Limits::new(1 << 20, within, Cancel::new())
    }

    fn region(fake: &Fake, start: u64, len: u64) -> Region {
        Region {
            name: "ram".into(),
            start: fake.base + start,
            len,
        }
    }

    #[test]
    fn memory_gdb_reads_in_chunks_within_the_packet_size() {
        let fake = Fake::default();
        let (addr, log, h) = start(fake.clone());
        let lim = limits(Duration::from_secs(20));
        let mut link = GdbRemote::connect(&addr, &lim).unwrap();
        assert_eq!(link.describe(), format!("gdb-remote {addr}"));
        assert_eq!(link.packet_size(), 0x100);
        assert!(link.no_ack());
        let bytes = link.read(&region(&fake, 3, 9_000), &lim).unwrap();
        assert_eq!(bytes, fake.memory[3..9_003]);
        drop(link);
        h.join().unwrap();
        let log = log.lock().unwrap();
        let reads = log.packets.iter().filter(|p| p.starts_with('m')).count();
        assert_eq!(reads, 9_000usize.div_ceil(0x80));
        assert_eq!(log.oversized_requests, 0);
        // No-ack mode: the only acknowledgement after the switch is the one for its `OK`.
        assert!(log.acks_after_no_ack <= 1, "{log:?}");
        assert_eq!(log.packets.last().map(String::as_str), Some("D"));
        assert_eq!(
            log.packets[..2],
            ["qSupported:swbreak+;hwbreak+", "QStartNoAckMode"]
        );
    }

    #[test]
    fn memory_gdb_continues_after_short_replies_with_run_length_encoding() {
        let mut fake = Fake {
            short: Some(50),
            rle: true,
            offer_no_ack: false,
            ..Fake::default()
        };
        fake.memory[100..4_000].fill(0);
        fake.memory[5_000..6_000].fill(0xff);
        let (addr, log, h) = start(fake.clone());
        let lim = limits(Duration::from_secs(20));
        let mut link = GdbRemote::connect(&addr, &lim).unwrap();
        assert!(!link.no_ack());
        let bytes = link.read(&region(&fake, 0, 10_000), &lim).unwrap();
        assert_eq!(bytes, fake.memory);
        drop(link);
        h.join().unwrap();
        let reads = log
            .lock()
            .unwrap()
            .packets
            .iter()
            .filter(|p| p.starts_with('m'))
            .count();
        assert_eq!(reads, 10_000usize.div_ceil(50));
    }

    #[test]
    fn memory_gdb_retransmits_on_nack_and_nacks_damaged_replies() {
        let fake = Fake {
            offer_no_ack: false,
            nacks: 2,
            corrupt_first_read: true,
            ..Fake::default()
        };
        let (addr, log, h) = start(fake.clone());
        let lim = limits(Duration::from_secs(20));
        let mut link = GdbRemote::connect(&addr, &lim).unwrap();
        let bytes = link.read(&region(&fake, 0, 300), &lim).unwrap();
        assert_eq!(bytes, fake.memory[..300]);
        drop(link);
        h.join().unwrap();
        assert_eq!(log.lock().unwrap().nacks_received, 1);
    }

    #[test]
    fn memory_gdb_gives_up_after_bounded_retransmits() {
        let fake = Fake {
            nacks: 1000,
            ..Fake::default()
        };
        let (addr, _log, h) = start(fake);
        let started = Instant::now();
        let err = GdbRemote::connect(&addr, &limits(Duration::from_secs(20))).unwrap_err();
        assert!(matches!(err, MemoryError::Protocol { .. }), "{err}");
        assert!(err.to_string().contains("rejected"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        h.join().unwrap();
    }

    #[test]
    fn memory_gdb_error_reply_is_a_refusal() {
        let fake = Fake {
            on_read: OnRead::Locked,
            ..Fake::default()
        };
        let (addr, _log, h) = start(fake.clone());
        let lim = limits(Duration::from_secs(20));
        let mut link = GdbRemote::connect(&addr, &lim).unwrap();
        let err = link.read(&region(&fake, 0, 64), &lim).unwrap_err();
        assert!(err.is_refusal(), "{err}");
        assert!(err.to_string().contains("E01"), "{err}");
        // A refusal leaves the conversation in step: the next read is asked and refused again.
        let again = link.read(&region(&fake, 64, 64), &lim).unwrap_err();
        assert!(again.is_refusal(), "{again}");
        drop(link);
        h.join().unwrap();
    }

    #[test]
    fn memory_gdb_empty_reply_is_a_protocol_error() {
        let fake = Fake {
            on_read: OnRead::Empty,
            ..Fake::default()
        };
        let (addr, _log, h) = start(fake.clone());
        let lim = limits(Duration::from_secs(20));
        let mut link = GdbRemote::connect(&addr, &lim).unwrap();
        let err = link.read(&region(&fake, 0, 64), &lim).unwrap_err();
        assert!(matches!(err, MemoryError::Protocol { .. }), "{err}");
        assert!(!err.is_refusal());
        drop(link);
        h.join().unwrap();
    }

    #[test]
    fn memory_gdb_endless_packet_is_a_protocol_error_quickly() {
        let fake = Fake {
            on_read: OnRead::Babble,
            ..Fake::default()
        };
        let (addr, _log, h) = start(fake.clone());
        let lim = limits(Duration::from_secs(30));
        let mut link = GdbRemote::connect(&addr, &lim).unwrap();
        let started = Instant::now();
        let err = link.read(&region(&fake, 0, 64), &lim).unwrap_err();
        assert!(matches!(err, MemoryError::Protocol { .. }), "{err}");
        assert!(err.to_string().contains("longer than"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // Later reads fail fast instead of reading the babble as a reply.
        let again = link.read(&region(&fake, 0, 64), &lim).unwrap_err();
        assert!(again.to_string().contains("out of step"), "{again}");
        drop(link);
        h.join().unwrap();
    }

    #[test]
    fn memory_gdb_silent_stub_times_out_at_the_deadline() {
        let fake = Fake {
            on_read: OnRead::Silent,
            ..Fake::default()
        };
        let (addr, _log, h) = start(fake.clone());
        let lim = limits(Duration::from_secs(20));
        let mut link = GdbRemote::connect(&addr, &lim).unwrap();
        let short = limits(Duration::from_millis(400));
        let started = Instant::now();
        let err = link.read(&region(&fake, 0, 64), &short).unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, MemoryError::Timeout { .. }), "{err}");
        assert!(took >= Duration::from_millis(350), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
        drop(link);
        h.join().unwrap();
    }

    #[test]
    fn memory_gdb_cancel_ends_a_wait() {
        let fake = Fake {
            on_read: OnRead::Silent,
            ..Fake::default()
        };
        let (addr, _log, h) = start(fake.clone());
        let lim = limits(Duration::from_secs(60));
        let mut link = GdbRemote::connect(&addr, &lim).unwrap();
        let canceller = lim.cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            canceller.cancel(2);
        });
        let started = Instant::now();
        let err = link.read(&region(&fake, 0, 64), &lim).unwrap_err();
        assert!(matches!(err, MemoryError::Cancelled), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
        t.join().unwrap();
        drop(link);
        h.join().unwrap();
    }

    #[test]
    fn memory_gdb_stub_closing_mid_reply_is_an_error_not_a_hang() {
        let fake = Fake {
            on_read: OnRead::CloseMidReply,
            ..Fake::default()
        };
        let (addr, _log, h) = start(fake.clone());
        let lim = limits(Duration::from_secs(30));
        let mut link = GdbRemote::connect(&addr, &lim).unwrap();
        let started = Instant::now();
        let err = link.read(&region(&fake, 0, 64), &lim).unwrap_err();
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("closed"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(link);
        h.join().unwrap();
    }

    #[test]
    fn memory_gdb_nothing_listening_is_unreachable() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = GdbRemote::connect(
            &format!("127.0.0.1:{port}"),
            &limits(Duration::from_secs(5)),
        )
        .unwrap_err();
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
        assert!(!err.is_refusal());
        let err = GdbRemote::connect("no port here", &limits(Duration::from_secs(5))).unwrap_err();
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
    }

    #[test]
    fn memory_gdb_limits_are_checked_before_asking() {
        let fake = Fake::default();
        let (addr, log, h) = start(fake.clone());
        let lim = limits(Duration::from_secs(20));
        let mut link = GdbRemote::connect(&addr, &lim).unwrap();
        let small = Limits::new(100, Duration::from_secs(20), Cancel::new());
        let err = link.read(&region(&fake, 0, 101), &small).unwrap_err();
        assert!(matches!(err, MemoryError::TooLarge { .. }), "{err}");
        assert_eq!(link.read(&region(&fake, 0, 0), &lim).unwrap(), b"");
        drop(link);
        h.join().unwrap();
        assert!(
            !log.lock()
                .unwrap()
                .packets
                .iter()
                .any(|p| p.starts_with('m'))
        );
    }

    #[test]
    fn memory_gdb_caps_a_huge_packet_size() {
        let fake = Fake {
            packet_size: 0x10_0000,
            memory: vec![0x5a; 100_000],
            ..Fake::default()
        };
        let (addr, log, h) = start(fake.clone());
        let lim = limits(Duration::from_secs(20));
        let mut link = GdbRemote::connect(&addr, &lim).unwrap();
        assert_eq!(link.packet_size(), MAX_PACKET);
        let bytes = link.read(&region(&fake, 0, 100_000), &lim).unwrap();
        assert_eq!(bytes, fake.memory);
        drop(link);
        h.join().unwrap();
        let log = log.lock().unwrap();
        let reads: Vec<&String> = log.packets.iter().filter(|p| p.starts_with('m')).collect();
        assert_eq!(reads.len(), 100_000usize.div_ceil(MAX_PACKET / 2));
    }
}
