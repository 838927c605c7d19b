//! Errors of the links (opening, finding and talking to a device).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// What went wrong on a link, outside an `expect` (see [`crate::ExpectError`] for those).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot open serial port {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: serialport::Error,
    },
    /// Nothing matches; `seen` says what is present, or why the bus could not be listed.
    #[error("no USB serial port matches {wanted}; {seen}")]
    UsbNotFound { wanted: String, seen: String },
    /// Several ports, devices or interfaces match; `add` names what would tell them apart.
    #[error("USB serial match {wanted} is ambiguous, it matches {}: add the {add}", .matches.join("; "))]
    UsbAmbiguous {
        wanted: String,
        matches: Vec<String>,
        add: &'static str,
    },
    /// The device is there but has no tty where one is wanted.
    #[error("USB device {device} has no serial port (tty) {}; {has}", on_interface(*.interface))]
    UsbNoTty {
        device: String,
        interface: Option<u8>,
        /// Which interfaces do have one, if any.
        has: String,
    },
    #[error("the device closed the link")]
    Closed,
    #[error("serial {op} failed: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("interrupted")]
    Cancelled,
    #[error("the line did not stay quiet for {quiet:?} within {max:?}")]
    Unsettled { quiet: Duration, max: Duration },
    /// A serial link over the network (RFC 2217 or raw TCP) could not be set up; `addr` is the
    /// server's `host:port` as given.
    #[error("serial server {addr}: {why}")]
    Net {
        addr: String,
        trouble: NetTrouble,
        why: String,
    },
}

/// What kind of failure a [`LinkError::Net`] is: whether the bench could not reach the server at
/// all, or reached something that does not behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetTrouble {
    /// Nothing listening (connection refused), no route, a name that does not resolve, or no
    /// answer to the connection attempt in time.
    Unreachable,
    /// The server accepted the connection and closed it during the set-up: ser2net does this
    /// when it cannot open its device (the reason it sent is in the message).
    HungUp,
    /// The address is not `host:port`, or the line settings are out of range.
    Invalid,
    /// The server refused COM-PORT-OPTION (not an RFC 2217 server, or RFC 2217 turned off), or
    /// answered a setting with another value than asked.
    Refused,
    /// The server did not finish the negotiation in time.
    NoAnswer,
    /// The server broke the telnet protocol.
    Protocol,
    /// A local socket operation failed.
    Io,
}

impl LinkError {
    /// Whether opening failed because the port is held by another (its lock is taken): worth a
    /// short retry, unlike a missing device or a refused permission.
    pub fn is_busy(&self) -> bool {
        matches!(self, LinkError::Open { source, .. }
            if source.kind() == serialport::ErrorKind::NoDevice
                && source.description.contains("lock"))
    }

    /// Whether the bench could not reach the device's server at all (refused, no route, or the
    /// server could not open the device): the case cannot be tested here, which is no fault of the
    /// device (NOT_TESTED). Every other failure is the bench's or the server's error (ERROR).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            LinkError::Net {
                trouble: NetTrouble::Unreachable | NetTrouble::HungUp,
                ..
            }
        )
    }
}

fn on_interface(interface: Option<u8>) -> String {
    match interface {
        Some(n) => format!("on interface {n}"),
        None => "on any interface".into(),
    }
}

#[cfg(test)]
mod tests {
    use crate::SerialPort;

    #[test]
    fn a_port_held_by_another_is_busy_and_a_missing_one_is_not() {
        let pair = nix::pty::openpty(None, None).unwrap();
        let path = nix::unistd::ttyname(&pair.slave).unwrap();
        let first = SerialPort::open(&path, 115_200).unwrap();
        let again = SerialPort::open(&path, 115_200)
            .err()
            .expect("held by the first");
        assert!(again.is_busy(), "{again}");
        drop(first);
        assert!(SerialPort::open(&path, 115_200).is_ok());
        let missing = SerialPort::open(std::path::Path::new("/dev/hilt-no-such-port"), 115_200)
            .err()
            .unwrap();
        assert!(!missing.is_busy(), "{missing}");
    }
}
