//! hilt-vboard: the VRB-1 virtual reference board.
//!
//! A simulated consumer IoT device that runs as its own process and is reached
//! only through its links: a raw pseudo-terminal console, a flash image file
//! and, when given a broker, an MQTT link to the mock [`cloud`]. Conformant by
//! default; named [`defects`] each add one non-conformance.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod console;
pub mod defects;
pub mod flash;
pub mod line;
pub mod provision;
pub mod pty;
pub mod run;
pub mod serve;
mod shell;
pub mod telemetry;

#[cfg(test)]
mod console_tests;

pub use cli::main_with_args;
pub use console::Console;
pub use defects::{Defect, DefectSet};

pub const MODEL: &str = "VRB-1";
pub const FW_VERSION: &str = "1.0.0";
pub const HW_VERSION: &str = "1.0";
/// The only account on the unit.
pub const ADMIN_USER: &str = "admin";
