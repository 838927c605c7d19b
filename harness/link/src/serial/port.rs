//! The byte transport under the expect engine, and its implementation on a tty.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serialport::TTYPort;
use tracing::info;

use crate::LinkError;

/// Byte transport with bounded reads; implemented for serial ports and for test fakes.
pub trait Port: Send {
    /// Read what is available, waiting at most `timeout`. `Ok(0)` = nothing arrived in time
    /// (not end of stream); `Err` of kind `UnexpectedEof`/`BrokenPipe` = the device end went away.
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    /// Write all of `data`; `BrokenPipe`/`UnexpectedEof` = the device end went away.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
}

impl<T: Port + ?Sized> Port for Box<T> {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        (**self).read_timeout(buf, timeout)
    }
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        (**self).write_all(data)
    }
}

/// True for the error kinds a [`Port`] uses to say the device end went away.
pub(crate) fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe
    )
}

/// A serial device (UART, USB CDC/FTDI, or a pseudo-terminal), opened exclusively in raw 8N1 mode.
pub struct SerialPort {
    tty: TTYPort,
    path: PathBuf,
    write_timeout: Duration,
}

impl SerialPort {
    /// Open `path` at `baud` (ignored by pseudo-terminals). A missing or busy path is an error naming it.
    pub fn open(path: &Path, baud: u32) -> Result<Self, LinkError> {
        let open_err = |source| LinkError::Open {
            path: path.to_path_buf(),
            source,
        };
        let name = path.to_str().ok_or_else(|| {
            open_err(serialport::Error::new(
                serialport::ErrorKind::InvalidInput,
                "path is not valid UTF-8",
            ))
        })?;
        let tty = serialport::new(name, baud)
            .open_native()
            .map_err(open_err)?;
        info!(path = %path.display(), baud, "opened serial port");
        Ok(Self {
            tty,
            path: path.to_path_buf(),
            write_timeout: Duration::from_secs(5),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long a write may wait for the device to accept data (flow control) before failing.
    pub fn set_write_timeout(&mut self, timeout: Duration) {
        self.write_timeout = timeout;
    }

    fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd is owned by `self.tty`, which outlives the returned borrow.
        unsafe { BorrowedFd::borrow_raw(self.tty.as_raw_fd()) }
    }

    /// Wait for `flags` on the fd. Ok(true) = ready, Ok(false) = timed out.
    fn wait(&self, flags: PollFlags, timeout: Duration) -> io::Result<bool> {
        let mut fds = [PollFd::new(self.fd(), flags)];
        match poll(&mut fds, poll_timeout(timeout)) {
            Ok(0) | Err(Errno::EINTR) => return Ok(false),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        // Check readiness first: after a hang-up the device's last bytes are still readable.
        if revents.intersects(flags) {
            Ok(true)
        } else if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)
        {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "serial device hung up",
            ))
        } else {
            Ok(false)
        }
    }
}

/// Round up to whole milliseconds so a sub-millisecond remainder does not become a busy loop.
pub(crate) fn poll_timeout(timeout: Duration) -> PollTimeout {
    let ms = timeout.as_micros().div_ceil(1000);
    PollTimeout::try_from(ms.min(i32::MAX as u128) as u64).unwrap_or(PollTimeout::MAX)
}

/// Map errno from a tty read/write: EIO is what a tty gives once its other end is gone; ENODEV
/// and ENXIO what some USB serial drivers give once their device is unplugged.
fn tty_error(e: Errno) -> io::Error {
    match e {
        Errno::EIO | Errno::ENODEV | Errno::ENXIO => {
            io::Error::new(io::ErrorKind::UnexpectedEof, "serial device went away")
        }
        other => other.into(),
    }
}

impl Port for SerialPort {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if buf.is_empty() || !self.wait(PollFlags::POLLIN, timeout)? {
            return Ok(0);
        }
        match nix::unistd::read(self.fd(), buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "serial device closed",
            )),
            Ok(n) => Ok(n),
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(0),
            Err(e) => Err(tty_error(e)),
        }
    }

    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + self.write_timeout;
        while !data.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.wait(PollFlags::POLLOUT, left)? {
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "serial device does not accept data",
                    ));
                }
                continue;
            }
            match nix::unistd::write(self.fd(), data) {
                Ok(n) => data = &data[n..],
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Err(tty_error(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_timeout_rounds_up() {
        assert_eq!(i32::from(poll_timeout(Duration::ZERO)), 0);
        assert_eq!(i32::from(poll_timeout(Duration::from_micros(1))), 1);
        assert_eq!(i32::from(poll_timeout(Duration::from_millis(300))), 300);
        assert_eq!(i32::from(poll_timeout(Duration::MAX)), i32::MAX);
    }

    #[test]
    fn missing_path_is_named() {
        let err = SerialPort::open(Path::new("/dev/hilt-no-such-tty"), 115_200)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/dev/hilt-no-such-tty"), "{err}");
    }
}
