//! The serial link: a raw pseudo-terminal standing in for the board's UART.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the serial pseudo-terminal ({step}): {source}")]
pub struct PtyError {
    step: &'static str,
    source: nix::Error,
}

fn step(step: &'static str) -> impl FnOnce(nix::Error) -> PtyError {
    move |source| PtyError { step, source }
}

/// A pseudo-terminal pair: the board owns the master, the harness opens the
/// slave path. The slave fd is kept open so the master never reads EIO and
/// output written before the host opens the port stays buffered.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub slave_path: PathBuf,
}

/// Opens a pty in raw mode (no kernel echo or line editing: the board does
/// its own, like an MCU UART) with a non-blocking master.
pub fn open_raw() -> Result<Pty, PtyError> {
    let pair = openpty(None, None).map_err(step("openpty"))?;
    let mut termios = tcgetattr(pair.slave.as_fd()).map_err(step("tcgetattr"))?;
    cfmakeraw(&mut termios);
    tcsetattr(pair.slave.as_fd(), SetArg::TCSANOW, &termios).map_err(step("tcsetattr"))?;
    let slave_path = nix::unistd::ttyname(pair.slave.as_fd()).map_err(step("ttyname"))?;
    for fd in [&pair.master, &pair.slave] {
        fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(step("cloexec"))?;
    }
    let flags = fcntl(pair.master.as_fd(), FcntlArg::F_GETFL).map_err(step("getfl"))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(pair.master.as_fd(), FcntlArg::F_SETFL(flags)).map_err(step("nonblock"))?;
    Ok(Pty {
        master: pair.master,
        slave: pair.slave,
        slave_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::termios::LocalFlags;

    #[test]
    fn pty_is_raw_and_has_a_dev_path() {
        let pty = open_raw().unwrap();
        assert!(pty.slave_path.starts_with("/dev/"), "{:?}", pty.slave_path);
        let t = tcgetattr(pty.slave.as_fd()).unwrap();
        assert!(!t.local_flags.contains(LocalFlags::ECHO));
        assert!(!t.local_flags.contains(LocalFlags::ICANON));
        let fl = fcntl(pty.master.as_fd(), FcntlArg::F_GETFL).unwrap();
        assert!(OFlag::from_bits_truncate(fl).contains(OFlag::O_NONBLOCK));
    }
}
