//! The radio's socket: a listener thread accepting connections, each one BLE connection served on a
//! thread of its own. Requests are answered in order; notifications of subscribed characteristics
//! go out between the answers. Every thread looks at the stop flag at least every [`POLL`], so
//! stopping the radio ends them all.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hilt_link::ble::BleUuid;
use hilt_link::ble::wire::{Line, MAX_LINE, Reply, Request};

use super::frame::{Frame, LineFramer};
use super::gatt::{INVALID_PDU, Peripheral};

/// How often a waiting thread looks at the stop flag.
pub const POLL: Duration = Duration::from_millis(100);
/// The interval between notifications of a subscribed characteristic.
pub const NOTIFY_EVERY: Duration = Duration::from_millis(500);
/// Connections served at once; more are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 8;
/// How long one line may take to go out to a central that does not read.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const READ_CHUNK: usize = 4096;

/// A listening radio and its threads; stopped by [`BleRadio::shutdown`] or when dropped.
#[derive(Debug)]
pub struct BleRadio {
    path: PathBuf,
    /// The socket file's device and inode, so only our own socket is removed at the end.
    socket_id: (u64, u64),
    stop: Arc<AtomicBool>,
    live: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl BleRadio {
    /// Listens on `path` (replacing a stale socket there) and serves `peripheral` from a new thread.
    pub fn start(path: &Path, peripheral: Peripheral) -> io::Result<Self> {
        remove_stale_socket(path)?;
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let meta = std::fs::metadata(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(AtomicUsize::new(0));
        let accept = Acceptor {
            listener,
            peripheral: Arc::new(peripheral),
            stop: stop.clone(),
            live: live.clone(),
            sessions: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("ble-radio".into())
            .spawn(move || accept.run())?;
        tracing::info!(path = %path.display(), "BLE radio listening");
        Ok(Self {
            path: path.to_path_buf(),
            socket_id: (meta.dev(), meta.ino()),
            stop,
            live,
            thread: Some(thread),
        })
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Ends every connection, closes the socket and waits for the threads.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("BLE radio thread panicked");
        }
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.socket_id);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(error = %e, "cannot remove the BLE socket");
        }
    }
}

impl Drop for BleRadio {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// A socket left behind by an earlier run is removed; any other file at `path` is kept (refused).
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Counts a connection as live until dropped (with its thread, or with a thread never started).
struct LiveGuard(Arc<AtomicUsize>);

impl LiveGuard {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Self(live.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The listener thread.
struct Acceptor {
    listener: UnixListener,
    peripheral: Arc<Peripheral>,
    stop: Arc<AtomicBool>,
    live: Arc<AtomicUsize>,
    sessions: Vec<JoinHandle<()>>,
}

impl Acceptor {
    fn run(mut self) {
        while !self.stop.load(Ordering::SeqCst) {
            self.reap();
            match self.accept() {
                Ok(Some(stream)) => self.serve(stream),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "BLE radio: accept failed");
                    std::thread::sleep(POLL);
                }
            }
        }
        for session in self.sessions.drain(..) {
            let _ = session.join();
        }
    }

    /// Joins the threads of connections that ended.
    fn reap(&mut self) {
        let (done, running): (Vec<_>, Vec<_>) =
            self.sessions.drain(..).partition(|s| s.is_finished());
        self.sessions = running;
        for session in done {
            if session.join().is_err() {
                tracing::error!("BLE connection thread panicked");
            }
        }
    }

    /// A new connection, or `None` after [`POLL`] without one.
    fn accept(&self) -> io::Result<Option<UnixStream>> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let timeout = PollTimeout::try_from(POLL.as_millis() as u64).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        match self.listener.accept() {
            Ok((stream, _)) => Ok(Some(stream)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Serves `stream` on a thread of its own, unless too many connections are open.
    fn serve(&mut self, stream: UnixStream) {
        self.reap();
        // The live count drops as a connection ends, a little before its thread counts as finished.
        if self.live.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            tracing::warn!("BLE radio: too many connections, one refused");
            return;
        }
        let guard = LiveGuard::new(&self.live);
        let (peripheral, stop) = (self.peripheral.clone(), self.stop.clone());
        let spawned = std::thread::Builder::new()
            .name("ble-connection".into())
            .spawn(move || {
                let _guard = guard;
                connection(stream, &peripheral, &stop);
            });
        match spawned {
            Ok(thread) => self.sessions.push(thread),
            Err(e) => tracing::warn!(error = %e, "BLE radio: cannot start a connection thread"),
        }
    }
}

/// Serves one connection until the central hangs up, misbehaves or the board stops.
fn connection(stream: UnixStream, peripheral: &Peripheral, stop: &AtomicBool) {
    tracing::info!("BLE central connected");
    let session = Session {
        stream,
        peripheral,
        stop,
        framer: LineFramer::new(MAX_LINE),
        subscribed: BTreeSet::new(),
        next_notify: None,
    };
    match session.run() {
        Ok(why) => tracing::info!(why, "BLE central disconnected"),
        Err(e) => tracing::info!(error = %e, "BLE connection closed"),
    }
}

/// One connection's state.
struct Session<'a> {
    stream: UnixStream,
    peripheral: &'a Peripheral,
    stop: &'a AtomicBool,
    framer: LineFramer,
    subscribed: BTreeSet<BleUuid>,
    /// When the subscribed characteristics next notify.
    next_notify: Option<Instant>,
}

impl Session<'_> {
    fn run(mut self) -> io::Result<&'static str> {
        self.stream.set_nonblocking(false)?;
        let mut buf = [0u8; READ_CHUNK];
        while !self.stop.load(Ordering::SeqCst) {
            self.stream.set_read_timeout(Some(self.wait()))?;
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok("hung up"),
                Ok(n) => {
                    for frame in self.framer.push(&buf[..n]) {
                        self.handle(frame)?;
                    }
                }
                Err(e) if retry(&e) => {}
                Err(e) => return Err(e),
            }
            self.notify_if_due()?;
        }
        Ok("board stopping")
    }

    /// How long to wait for input: until the next notification, at most [`POLL`].
    fn wait(&self) -> Duration {
        let until = |at: Instant| at.saturating_duration_since(Instant::now());
        let wait = self.next_notify.map_or(POLL, |at| until(at).min(POLL));
        wait.max(Duration::from_millis(1))
    }

    fn handle(&mut self, frame: Frame) -> io::Result<()> {
        let reply = match frame {
            Frame::Overlong => Reply::Att(INVALID_PDU.into()),
            Frame::Line(line) if line.trim_ascii().is_empty() => return Ok(()),
            Frame::Line(line) => match serde_json::from_slice::<Request>(&line) {
                Ok(request) => self.answer(&request),
                Err(e) => {
                    tracing::debug!(error = %e, "BLE: malformed request");
                    Reply::Att(INVALID_PDU.into())
                }
            },
        };
        self.send(&Line::Reply(reply))
    }

    fn answer(&mut self, request: &Request) -> Reply {
        let reply = self.peripheral.answer(request);
        if let (Request::Subscribe { char }, Reply::Done) = (request, &reply) {
            self.subscribed.insert(*char);
            self.next_notify
                .get_or_insert_with(|| Instant::now() + NOTIFY_EVERY);
        }
        reply
    }

    fn notify_if_due(&mut self) -> io::Result<()> {
        let now = Instant::now();
        if self.next_notify.is_none_or(|at| now < at) {
            return Ok(());
        }
        self.next_notify = Some(now + NOTIFY_EVERY);
        let chars: Vec<BleUuid> = self.subscribed.iter().copied().collect();
        for char in chars {
            if let Some(value) = self.peripheral.notification(&char) {
                self.send(&Line::Notify { char, value })?;
            }
        }
        Ok(())
    }

    /// Writes one line, giving up after [`SEND_TIMEOUT`] or when the board stops.
    fn send(&mut self, line: &Line) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(io::Error::other)?;
        bytes.push(b'\n');
        self.stream.set_write_timeout(Some(POLL))?;
        let deadline = Instant::now() + SEND_TIMEOUT;
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            match self.stream.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(e) if retry(&e) => {
                    if self.stop.load(Ordering::SeqCst) || Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "central not reading",
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Errors that only mean "nothing yet": a timeout or an interrupted call.
fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}
