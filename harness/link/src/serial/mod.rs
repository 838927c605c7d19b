//! Serial console link: a [`Port`] (real UART, pseudo-terminal, or a [`NetPort`] over RFC 2217 or
//! raw TCP), the expect engine [`Console`], and its evidence, the [`Transcript`]. A [`Reattach`]
//! lets a console survive its USB device re-enumerating.

mod console;
#[cfg(test)]
mod console_tests;
mod escape;
mod expect;
mod mask;
mod net;
mod port;
mod reattach;
mod rxbuf;
mod transcript;
mod usb_match;

pub use console::{Console, ConsoleOptions, DEFAULT_MAX_BUFFER, Pacing};
pub use expect::{ExpectError, Match};
pub use mask::{Secrets, reveals};
pub use net::{FlowControl, LineSettings, NetPort, Parity, StopBits};
pub use port::{Port, SerialPort};
pub use reattach::{Reattach, Reopen, Reopened};
pub use transcript::{DEFAULT_TRANSCRIPT_LIMIT, Dir, Transcript};
pub use usb_match::{UsbMatch, find_usb_serial};
