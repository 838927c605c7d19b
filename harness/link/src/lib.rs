//! hilt's links to the device under test.
//!
//! `serial` drives a console (real UART or the virtual board's pseudo-terminal) with send/expect
//! scripts and keeps a timestamped, secret-masked transcript as evidence. `usb` lists what is on the USB
//! bus and finds boards by identity; `ble` scans, connects and drives GATT. `memory` reads a
//! device's storage (flash images, GDB remote stubs, debug probes, vendor dump commands) into snapshots.

pub mod ble;
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
pub use error::{LinkError, NetTrouble};
pub use serial::{
    Console, ConsoleOptions, Dir, ExpectError, FlowControl, LineSettings, Match, NetPort, Pacing,
    Parity, Port, Reattach, Secrets, SerialPort, StopBits, Transcript, UsbMatch, find_usb_serial,
    reveals,
};
