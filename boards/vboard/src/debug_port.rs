//! The debug port: a GDB remote serial protocol stub on TCP (the `gdbstub` crate), as a JTAG/SWD
//! probe's GDB server would expose the unit.
//!
//! Memory map: the flash partition at [`FLASH_BASE`], [`FLASH_SIZE`] bytes, read from the current
//! image file on each request (so it is always what flash holds now; past the end of a shorter
//! file it reads as erased flash). Nothing else is mapped. Registers read as zeros (a fake
//! single-core ARMv4T that never runs); the target cannot be resumed.
//!
//! Locked by default, as a production part with readout protection: every memory read is answered
//! `E01` and every write refused. The `debug-port-open` defect unlocks reads. Writes are refused
//! either way (the port never changes the unit). An address outside the map is answered `E0e`.
//!
//! A read that starts inside flash and runs past its end returns the mapped part. (A request longer
//! than the announced `PacketSize`, which no well-behaved client sends, is served by `gdbstub` in
//! several pieces; if one of the later pieces falls outside flash, the reply is the mapped bytes
//! followed by `E0e`, which a client takes as malformed.)
//!
//! One client at a time, on a thread of its own; a client idle for [`IDLE_TIMEOUT`] is dropped, a
//! malformed packet ends its session, and stopping the board ([`DebugPort::shutdown`], or dropping
//! the handle) ends the session and the thread within about [`POLL`].

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{GdbStub, SingleThreadStopReason};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::base::singlethread::SingleThreadBase;
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::arm::Armv4t;
use gdbstub_arch::arm::reg::ArmCoreRegs;

use crate::flash::{ERASED, FLASH_SIZE};

/// Where the flash partition is mapped.
pub const FLASH_BASE: u32 = 0x0000_0000;
/// The packet buffer, announced as `PacketSize=4000` (hex): memory reads up to 8 KiB per packet.
pub const PACKET_SIZE: usize = 0x4000;
/// A client that sends nothing for this long is dropped, so it cannot hold the port forever.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one reply may take to go out to a client that does not read.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a waiting thread looks at the stop flag.
pub const POLL: Duration = Duration::from_millis(100);
/// Error code for a read of a locked port (readout protection): `E01`.
const LOCKED: u8 = 0x01;
/// Error code for an address outside the memory map: `E0e` (EFAULT).
const UNMAPPED: u8 = 0x0e;
/// Error code for a write (never allowed): `E01`.
const REFUSED: u8 = 0x01;
/// Error code when the flash image file cannot be read: `E05` (EIO).
const IO_ERROR: u8 = 0x05;

/// Whether memory reads are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Readout protection on: every memory access is an error (conformant).
    Locked,
    /// The `debug-port-open` defect: reads return the bytes.
    Open,
}

/// A listening debug port and its thread; stopped by [`DebugPort::shutdown`] or when dropped.
#[derive(Debug)]
pub struct DebugPort {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DebugPort {
    /// Binds `addr` (port 0 picks a free one) and serves the image at `image` from a new thread.
    pub fn start(addr: SocketAddr, image: PathBuf, access: Access) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("debug-port".into())
            .spawn({
                let stop = stop.clone();
                move || serve(listener, image, access, stop)
            })?;
        tracing::info!(%addr, ?access, "debug port listening");
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where the port listens (with the port the system picked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Ends the session in progress, closes the port and waits for the thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("debug port thread panicked");
        }
    }
}

impl Drop for DebugPort {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Accepts one client at a time until told to stop; the listener closes when this returns.
fn serve(listener: TcpListener, image: PathBuf, access: Access, stop: Arc<AtomicBool>) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let timeout = PollTimeout::try_from(POLL.as_millis() as u64).unwrap_or(PollTimeout::MAX);
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "debug port: poll failed, closing the port");
                return;
            }
        }
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                tracing::warn!(error = %e, "debug port: accept failed");
                std::thread::sleep(POLL);
                continue;
            }
        };
        tracing::info!(%peer, "debug port: client connected");
        match session(stream, &image, access, stop.clone()) {
            Ok(reason) => tracing::info!(%peer, reason, "debug port: client gone"),
            Err(e) => tracing::info!(%peer, error = %e, "debug port: session ended"),
        }
    }
}

/// Serves one client until it detaches, disconnects, misbehaves or the board stops.
fn session(
    stream: TcpStream,
    image: &std::path::Path,
    access: Access,
    stop: Arc<AtomicBool>,
) -> io::Result<String> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(POLL))?;
    let client = Client {
        stream,
        inbox: Vec::with_capacity(4096),
        at: 0,
        outbox: Vec::with_capacity(PACKET_SIZE * 2),
        stop,
    };
    let mut target = Memory {
        image: image.to_path_buf(),
        access,
    };
    let stub = GdbStub::<Memory, Client>::builder(client)
        .packet_buffer_size(PACKET_SIZE)
        .build()
        .map_err(|e| io::Error::other(e.to_string()))?;
    match stub.run_blocking::<Events>(&mut target) {
        Ok(reason) => Ok(format!("{reason:?}")),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

/// The memory the port serves.
struct Memory {
    image: PathBuf,
    access: Access,
}

impl Memory {
    /// Reads flash at `offset` into `data` (already clamped to the partition).
    fn read_flash(&self, offset: usize, data: &mut [u8]) -> io::Result<()> {
        let file = std::fs::File::open(&self.image)?;
        let mut filled = 0;
        while filled < data.len() {
            match file.read_at(&mut data[filled..], (offset + filled) as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Past the end of a shorter (older) image: erased flash.
        data[filled..].fill(ERASED);
        Ok(())
    }
}

impl Target for Memory {
    type Arch = Armv4t;
    type Error = std::convert::Infallible;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    // The target never runs, so no breakpoint is ever needed.
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }
}

impl SingleThreadBase for Memory {
    fn read_registers(&mut self, regs: &mut ArmCoreRegs) -> TargetResult<(), Self> {
        *regs = ArmCoreRegs::default();
        Ok(())
    }

    fn write_registers(&mut self, _regs: &ArmCoreRegs) -> TargetResult<(), Self> {
        Err(TargetError::Errno(REFUSED))
    }

    fn read_addrs(&mut self, start: u32, data: &mut [u8]) -> TargetResult<usize, Self> {
        if self.access == Access::Locked {
            return Err(TargetError::Errno(LOCKED));
        }
        let Some(offset) = start.checked_sub(FLASH_BASE).map(|o| o as usize) else {
            return Err(TargetError::Errno(UNMAPPED));
        };
        if offset >= FLASH_SIZE {
            return Err(TargetError::Errno(UNMAPPED));
        }
        // A read running past the end of flash returns what is mapped.
        let n = data.len().min(FLASH_SIZE - offset);
        match self.read_flash(offset, &mut data[..n]) {
            Ok(()) => Ok(n),
            Err(e) => {
                tracing::warn!(error = %e, "debug port: cannot read the flash image");
                Err(TargetError::Errno(IO_ERROR))
            }
        }
    }

    fn write_addrs(&mut self, _start: u32, _data: &[u8]) -> TargetResult<(), Self> {
        Err(TargetError::Errno(REFUSED))
    }
}

/// The blocking event loop: the target never runs, so it never stops on its own.
enum Events {}

impl BlockingEventLoop for Events {
    type Target = Memory;
    type Connection = Client;
    type StopReason = SingleThreadStopReason<u32>;

    fn wait_for_stop_reason(
        _target: &mut Memory,
        conn: &mut Self::Connection,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<std::convert::Infallible, io::Error>>
    {
        conn.read()
            .map(Event::IncomingData)
            .map_err(WaitForStopReasonError::Connection)
    }

    fn on_interrupt(
        _target: &mut Memory,
    ) -> Result<Option<Self::StopReason>, std::convert::Infallible> {
        Ok(Some(SingleThreadStopReason::Signal(Signal::SIGINT)))
    }
}

/// The client's TCP connection: reads buffered and bounded by the idle timeout and the stop flag,
/// each reply sent whole on flush (gdbstub writes byte by byte).
struct Client {
    stream: TcpStream,
    inbox: Vec<u8>,
    at: usize,
    outbox: Vec<u8>,
    stop: Arc<AtomicBool>,
}

fn stopping() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "the board is stopping")
}

fn is_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

impl Connection for Client {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> io::Result<()> {
        self.outbox.push(byte);
        if self.outbox.len() >= PACKET_SIZE * 4 {
            self.send()?;
        }
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.outbox.extend_from_slice(buf);
        if self.outbox.len() >= PACKET_SIZE * 4 {
            self.send()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }

    fn on_session_start(&mut self) -> io::Result<()> {
        self.stream.set_nodelay(true)
    }
}

impl Client {
    /// Sends what is queued, giving up after [`SEND_TIMEOUT`] or when the board stops.
    fn send(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + SEND_TIMEOUT;
        let mut sent = 0;
        while sent < self.outbox.len() {
            if self.stop.load(Ordering::SeqCst) {
                return Err(stopping());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client does not read its replies",
                ));
            }
            match Write::write(&mut self.stream, &self.outbox[sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if is_wait(&e) => {}
                Err(e) => return Err(e),
            }
        }
        self.outbox.clear();
        Ok(())
    }
}

impl ConnectionExt for Client {
    fn read(&mut self) -> io::Result<u8> {
        let idle_until = Instant::now() + IDLE_TIMEOUT;
        loop {
            if let Some(&byte) = self.inbox.get(self.at) {
                self.at += 1;
                return Ok(byte);
            }
            if self.stop.load(Ordering::SeqCst) {
                return Err(stopping());
            }
            if Instant::now() >= idle_until {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "client idle"));
            }
            let mut buf = [0u8; 4096];
            match Read::read(&mut self.stream, &mut buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.inbox.clear();
                    self.inbox.extend_from_slice(&buf[..n]);
                    self.at = 0;
                }
                Err(e) if is_wait(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.inbox.get(self.at).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash::{Flash, MAGIC};
    use crate::storage::DeviceKey;
    use hilt_link::memory::gdb_remote::codec::{self, Decoder, Frame};

    const WAIT: Duration = Duration::from_secs(5);

    /// A raw GDB remote client, in acknowledgement mode: every reply is acknowledged with `+`. The
    /// framing is hilt's own client codec (`hilt_link::memory::gdb_remote::codec`).
    struct Raw {
        s: TcpStream,
        decoder: Decoder,
        frames: std::collections::VecDeque<Frame>,
    }

    impl Raw {
        fn connect(addr: SocketAddr) -> Self {
            let s = TcpStream::connect_timeout(&addr, WAIT).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            s.set_write_timeout(Some(WAIT)).unwrap();
            Raw {
                s,
                decoder: Decoder::new(64 * 1024),
                frames: Default::default(),
            }
        }

        fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
            Write::write_all(&mut self.s, bytes)
        }

        fn send(&mut self, payload: &str) {
            self.send_raw(&codec::encode(payload.as_bytes())).unwrap();
        }

        /// The next reply packet, unescaped and run-length decoded; `Err` when the connection
        /// closed, nothing came within `WAIT`, or the reply was malformed.
        fn reply(&mut self) -> Result<String, String> {
            let deadline = Instant::now() + WAIT;
            loop {
                while let Some(frame) = self.frames.pop_front() {
                    match frame {
                        Frame::Ack => {}
                        Frame::Packet(body) => {
                            Write::write_all(&mut self.s, b"+").map_err(|e| e.to_string())?;
                            return String::from_utf8(body).map_err(|e| e.to_string());
                        }
                        other => return Err(format!("not a reply: {other:?}")),
                    }
                }
                if Instant::now() >= deadline {
                    return Err("timed out".into());
                }
                let mut buf = [0u8; 4096];
                match Read::read(&mut self.s, &mut buf) {
                    Ok(0) => return Err("closed".into()),
                    Ok(n) => {
                        let mut out = Vec::new();
                        let fed = self.decoder.feed(&buf[..n], &mut out);
                        self.frames.extend(out);
                        fed.map_err(|e| e.to_string())?;
                    }
                    Err(e) if is_wait(&e) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        }

        fn ask(&mut self, payload: &str) -> String {
            self.send(payload);
            self.reply()
                .unwrap_or_else(|e| panic!("no reply to {payload}: {e}"))
        }
    }

    /// A state directory with a provisioned image in it.
    fn unit() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flash.img");
        let state = crate::provision::provision(Some("SN-DBG"), 1, &Default::default())
            .unwrap()
            .state;
        Flash::new(&path, DeviceKey::generate().unwrap())
            .store(&state)
            .unwrap();
        let image = std::fs::read(&path).unwrap();
        (dir, path, image)
    }

    fn start(path: &std::path::Path, access: Access) -> DebugPort {
        DebugPort::start("127.0.0.1:0".parse().unwrap(), path.to_path_buf(), access).unwrap()
    }

    #[test]
    fn a_locked_port_refuses_every_memory_access() {
        let (_dir, path, _) = unit();
        let port = start(&path, Access::Locked);
        let mut c = Raw::connect(port.local_addr());
        c.send_raw(b"+").unwrap();
        let features = c.ask("qSupported:swbreak+;hwbreak+");
        assert!(features.contains("PacketSize=4000"), "{features}");
        let halt = c.ask("?");
        assert!(halt.starts_with("T05") || halt == "S05", "{halt}");
        assert_eq!(c.ask("m0,10"), "E01");
        assert_eq!(c.ask("m3fff0,10"), "E01");
        assert_eq!(c.ask("m20000000,4"), "E01");
        assert!(c.ask("M0,1:00").starts_with('E'));
        assert!(c.ask("X0,1:a").starts_with('E'));
        let regs = c.ask("g");
        assert!(
            regs.starts_with("00000000") && regs.bytes().all(|b| b == b'0' || b == b'x'),
            "{regs}"
        );
        assert_eq!(c.ask("vMustReplyEmpty"), "");
        assert_eq!(c.ask("D"), "OK");
        port.shutdown();
    }

    #[test]
    fn an_open_port_serves_the_flash_image_and_nothing_else() {
        let (_dir, path, image) = unit();
        let port = start(&path, Access::Open);
        let mut c = Raw::connect(port.local_addr());
        c.ask("qSupported:swbreak+;hwbreak+");
        assert_eq!(c.ask("QStartNoAckMode"), "OK");
        let first = c.ask("m0,10");
        assert_eq!(first, hex::encode(&image[..16]));
        assert!(first.starts_with(&hex::encode(MAGIC)), "{first}");
        // The whole partition, in PacketSize-sized reads, is the image file.
        let mut dump = Vec::new();
        let chunk = PACKET_SIZE / 2;
        for at in (0..FLASH_SIZE).step_by(chunk) {
            let reply = c.ask(&format!("m{at:x},{chunk:x}"));
            dump.extend(hex::decode(&reply).unwrap_or_else(|_| panic!("{reply}")));
        }
        assert_eq!(dump, image);
        // Across the end: what is mapped; past it, and elsewhere: errors. Writes: refused.
        let end = FLASH_SIZE - 8;
        assert_eq!(c.ask(&format!("m{end:x},10")), hex::encode(&image[end..]));
        assert_eq!(c.ask(&format!("m{FLASH_SIZE:x},10")), "E0e");
        assert_eq!(c.ask("m20000000,4"), "E0e");
        assert_eq!(c.ask("mffffffff,4"), "E0e");
        assert!(c.ask("M0,1:00").starts_with('E'));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            image,
            "the port changed flash"
        );
        // Each read sees what flash holds now.
        let mut changed = image.clone();
        changed[FLASH_SIZE - 1] = 0x00;
        crate::flash::write_atomic(&path, &changed, 0o600).unwrap();
        assert_eq!(c.ask(&format!("m{:x},1", FLASH_SIZE - 1)), "00");
        drop(c);
        port.shutdown();
    }

    #[test]
    fn garbage_ends_a_session_without_taking_the_port_down() {
        let (_dir, path, image) = unit();
        let port = start(&path, Access::Open);
        let junk: Vec<&[u8]> = vec![
            b"hello, world\r\n",
            b"$m0,10#00",
            b"$mzz,10#1a",
            b"$m0#6d",
            b"$qSupported:;;;;=#ff",
            b"}}}}****####$$$$",
            &[0xff, 0x00, 0x03, 0x80, 0x24],
            b"$m123456789abcdef01,10#00",
        ];
        let mut oversized = b"$".to_vec();
        oversized.extend(std::iter::repeat_n(b'm', PACKET_SIZE * 3));
        oversized.extend_from_slice(b"#00");
        for bytes in junk.iter().copied().chain([oversized.as_slice()]) {
            let mut c = Raw::connect(port.local_addr());
            // The port may answer, or hang up: either is fine, as long as it never hangs.
            let _ = c.send_raw(bytes);
            let _ = c.reply();
        }
        // Addresses wider than the target's are not an error that takes anything down.
        let mut c = Raw::connect(port.local_addr());
        c.send("m123456789abcdef01,10");
        let _ = c.reply();
        // Still serving.
        let mut c = Raw::connect(port.local_addr());
        assert_eq!(c.ask("m0,8"), hex::encode(&image[..8]));
        drop(c);
        port.shutdown();
    }

    #[test]
    fn stopping_ends_the_session_and_closes_the_port() {
        let (_dir, path, _) = unit();
        let port = start(&path, Access::Locked);
        let addr = port.local_addr();
        let mut c = Raw::connect(addr);
        assert_eq!(c.ask("m0,4"), "E01");
        let started = Instant::now();
        port.shutdown();
        assert!(started.elapsed() < Duration::from_secs(2), "slow to stop");
        assert!(c.reply().is_err(), "the session outlived the port");
        assert!(
            TcpStream::connect_timeout(&addr, WAIT).is_err(),
            "still listening"
        );

        // Dropping the handle stops it as well.
        let port = start(&path, Access::Locked);
        let addr = port.local_addr();
        drop(port);
        assert!(
            TcpStream::connect_timeout(&addr, WAIT).is_err(),
            "still listening"
        );
    }

    #[test]
    fn a_missing_image_is_an_error_reply() {
        let dir = tempfile::tempdir().unwrap();
        let port = start(&dir.path().join("flash.img"), Access::Open);
        let mut c = Raw::connect(port.local_addr());
        assert_eq!(c.ask("m0,4"), "E05");
        port.shutdown();
    }
}
