//! hilt's links to the device under test.
//!
//! `serial` drives a console (real UART or the virtual board's pseudo-terminal) with send/expect
//! scripts and keeps a timestamped, secret-masked transcript as evidence. USB, BLE and debug-probe
//! links will sit beside it and reuse [`Port`], [`Console`] and [`Transcript`]. `memory` reads a
//! device's storage (flash images, GDB remote stubs, debug probes, vendor dump commands) into snapshots.

mod cancel;
mod error;
pub mod memory;
pub mod serial;
pub mod usb;

pub use cancel::Cancel;

/// How often a cancellable wait looks at its [`Cancel`] flag.
pub fn cancel_poll() -> std::time::Duration {
    cancel::POLL
}
pub use error::LinkError;
pub use serial::{
    Console, ConsoleOptions, Dir, ExpectError, Match, Pacing, Port, Secrets, SerialPort,
    Transcript, UsbMatch, find_usb_serial, reveals,
};
