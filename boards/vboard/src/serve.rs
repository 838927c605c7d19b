//! The event loop: moves bytes between the pty master and the console,
//! persists state, wakes the console when an agent has news, restarts
//! it from flash when it reboots (re-enumerating a native-USB console onto a
//! new pty when asked to), and stops on SIGTERM/SIGINT or (optionally)
//! stdin EOF.

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::agent_link::WakeSource;
use crate::clock::Clock;
use crate::console::Console;
use crate::flash::{Flash, FlashState};
use crate::pty::Pty;
use crate::usb::UsbLink;

/// Output kept for a host that does not read; beyond this it is dropped,
/// as a UART without flow control would.
const MAX_PENDING_OUT: usize = 64 * 1024;
const READ_CHUNK: usize = 4096;

#[derive(Debug, thiserror::Error)]
#[error("console loop failed ({step}): {source}")]
pub struct ServeError {
    step: &'static str,
    source: Errno,
}

fn step(step: &'static str) -> impl FnOnce(Errno) -> ServeError {
    move |source| ServeError { step, source }
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Signal(i32),
    StdinClosed,
}

/// Blocks SIGTERM and SIGINT and returns a descriptor that reports them,
/// so they are handled in the loop rather than in an async handler.
pub fn signal_fd() -> Result<SignalFd, ServeError> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    mask.thread_block().map_err(step("block signals"))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(step("signalfd"))
}

pub struct Loop<'a, C: Clock> {
    pub console: &'a mut Console<C>,
    pub pty: Pty,
    pub flash: &'a Flash,
    pub signals: &'a SignalFd,
    /// The agents' links, whose descriptors wake the loop.
    pub agents: Vec<&'a dyn WakeSource>,
    pub watch_stdin: bool,
    /// A USB device that re-enumerates at each reboot, its console coming back on a new pty.
    pub usb: Option<&'a UsbLink>,
}

impl<C: Clock> Loop<'_, C> {
    /// Serves the console until a stop condition; state is persisted on the way out.
    pub fn run(mut self) -> Result<Stop, ServeError> {
        let mut pending: Vec<u8> = Vec::new();
        let mut unsaved = false;
        let stop = loop {
            if self.console.take_reboot() {
                if self.usb.is_some() {
                    self.last_words(&mut pending);
                }
                unsaved = !self.reboot();
                self.reenumerate();
            }
            unsaved |= self.console.take_dirty();
            if unsaved {
                unsaved = !self.persist();
            }
            queue_output(&mut pending, self.console.take_output());
            flush_output(self.pty.master.as_fd(), &mut pending)?;
            if let Some(stop) = self.wait_and_read(!pending.is_empty())? {
                break stop;
            }
            self.console.tick();
        };
        queue_output(&mut pending, self.console.take_output());
        let _ = flush_output(self.pty.master.as_fd(), &mut pending);
        self.console.take_dirty();
        self.persist();
        Ok(stop)
    }

    /// Before a re-enumerating console goes away: what was said before the reboot goes to the old
    /// pty; what it does not take is lost, as it would be on a chip that resets.
    fn last_words(&mut self, pending: &mut Vec<u8>) {
        queue_output(pending, self.console.take_output());
        if let Err(e) = flush_output(self.pty.master.as_fd(), pending) {
            tracing::debug!(error = %e, "output before the reboot not delivered");
        }
        pending.clear();
    }

    /// A re-enumerating console comes back on a new pty, where the boot output waits for the host.
    fn reenumerate(&mut self) {
        let Some(usb) = self.usb else { return };
        if let Err(e) = usb.reenumerate(&mut self.pty) {
            tracing::error!(error = %e, "cannot re-enumerate: the console stays on its tty");
        }
    }

    /// Restarts the console as after power-on: its state saved, then read back from flash. False
    /// when the state could not be saved (the console then restarts from memory, still unsaved).
    fn reboot(&mut self) -> bool {
        self.console.take_dirty();
        let saved = self.persist();
        let state = if saved {
            self.read_back()
        } else {
            self.console.state().clone()
        };
        tracing::info!(firmware = %state.update.running.version, "console restarting");
        self.console.restart(state);
        saved
    }

    /// The state as flash holds it; the one in memory if flash cannot be read.
    fn read_back(&self) -> FlashState {
        match self.flash.load() {
            Ok(Some(state)) => state,
            Ok(None) => {
                tracing::error!("flash image missing at reboot: restarting from memory");
                self.console.state().clone()
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read flash at reboot: restarting from memory");
                self.console.state().clone()
            }
        }
    }

    fn persist(&self) -> bool {
        match self.flash.store(self.console.state()) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "cannot persist state");
                false
            }
        }
    }

    fn timeout(&self, now_ms: u64) -> PollTimeout {
        match self.console.next_deadline_ms() {
            None => PollTimeout::NONE,
            Some(at) => {
                let ms = at.saturating_sub(now_ms).min(60_000);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    fn wait_and_read(&mut self, want_write: bool) -> Result<Option<Stop>, ServeError> {
        let stdin = std::io::stdin();
        let stdin_fd = stdin.as_fd();
        let mut master_events = PollFlags::POLLIN;
        if want_write {
            master_events |= PollFlags::POLLOUT;
        }
        let mut fds = vec![
            PollFd::new(self.pty.master.as_fd(), master_events),
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
        ];
        for agent in &self.agents {
            fds.push(PollFd::new(agent.wake_fd(), PollFlags::POLLIN));
        }
        if self.watch_stdin {
            fds.push(PollFd::new(stdin_fd, PollFlags::POLLIN));
        }
        let timeout = self.timeout(self.console_now());
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(None),
            Err(e) => return Err(step("poll")(e)),
        }
        let ready = |fd: &PollFd| fd.revents().unwrap_or(PollFlags::empty());
        if ready(&fds[1]).contains(PollFlags::POLLIN)
            && let Ok(Some(info)) = self.signals.read_signal()
        {
            tracing::info!(signal = info.ssi_signo, "stopping on signal");
            return Ok(Some(Stop::Signal(info.ssi_signo as i32)));
        }
        let stdin_at = 2 + self.agents.len();
        for (agent, fd) in self.agents.iter().zip(&fds[2..stdin_at]) {
            if !ready(fd).is_empty() {
                agent.drain_wake();
            }
        }
        if self.watch_stdin && !ready(&fds[stdin_at]).is_empty() && stdin_closed(stdin_fd) {
            tracing::info!("stdin closed, stopping");
            return Ok(Some(Stop::StdinClosed));
        }
        if ready(&fds[0]).intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            self.read_master()?;
        }
        Ok(None)
    }

    fn console_now(&self) -> u64 {
        self.console.clock.now_ms()
    }

    fn read_master(&mut self) -> Result<(), ServeError> {
        let mut buf = [0u8; READ_CHUNK];
        match nix::unistd::read(self.pty.master.as_fd(), &mut buf) {
            Ok(n) => self.console.feed(&buf[..n]),
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            // EIO means no slave is open; ours always is, so treat it as transient.
            Err(Errno::EIO) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => return Err(step("read")(e)),
        }
        Ok(())
    }
}

/// Reads and discards stdin data; true at EOF or on error.
fn stdin_closed(fd: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 512];
    match nix::unistd::read(fd, &mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(Errno::EAGAIN | Errno::EINTR) => false,
        Err(_) => true,
    }
}

fn queue_output(pending: &mut Vec<u8>, out: Vec<u8>) {
    let room = MAX_PENDING_OUT.saturating_sub(pending.len());
    if out.len() > room {
        tracing::debug!(
            dropped = out.len() - room,
            "host not reading, output dropped"
        );
    }
    pending.extend_from_slice(&out[..out.len().min(room)]);
}

/// Writes as much pending output as the pty takes without blocking.
fn flush_output(master: BorrowedFd<'_>, pending: &mut Vec<u8>) -> Result<(), ServeError> {
    while !pending.is_empty() {
        match nix::unistd::write(master, pending) {
            Ok(0) => break,
            Ok(n) => {
                pending.drain(..n);
            }
            Err(Errno::EAGAIN | Errno::EINTR) => break,
            Err(e) => return Err(step("write")(e)),
        }
    }
    Ok(())
}
