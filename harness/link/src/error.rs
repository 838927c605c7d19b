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
    #[error("no USB serial port matches {wanted}; {seen}")]
    UsbNotFound { wanted: String, seen: String },
    #[error("USB serial match {wanted} is ambiguous, it matches {}: add the serial number", list(.ports))]
    UsbAmbiguous { wanted: String, ports: Vec<PathBuf> },
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
}

fn list(ports: &[PathBuf]) -> String {
    let names: Vec<String> = ports.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}
