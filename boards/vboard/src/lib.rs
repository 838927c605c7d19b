//! hilt-vboard: the VRB-1 virtual reference board.
//!
//! A simulated consumer IoT device that runs as its own process and is reached
//! only through its links: a raw pseudo-terminal console, a flash image file,
//! when given a broker, an MQTT link to the mock [`cloud`] and, when given an
//! update service, an [`update`] agent and a [`privacy`] agent; when asked, a
//! [`usb`] descriptor set and a simulated [`ble`] radio. Conformant by
//! default; named [`defects`] each add one non-conformance.

pub mod agent_link;
pub mod auth;
pub mod ble;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod console;
pub mod debug_port;
pub mod defects;
pub mod flash;
pub mod line;
pub mod privacy;
pub mod provision;
pub mod pty;
pub mod run;
pub mod serve;
mod shell;
mod shell_privacy;
mod shell_update;
pub mod storage;
pub mod telemetry;
pub mod update;
pub mod usb;

#[cfg(test)]
mod console_privacy_tests;
#[cfg(test)]
mod console_tests;

pub use cli::main_with_args;
pub use console::Console;
pub use defects::{Defect, DefectSet};

pub const MODEL: &str = "VRB-1";
/// The factory firmware, in slot A as provisioned; what runs is the active slot's (flash).
pub const FW_VERSION: &str = "1.0.0";
pub const HW_VERSION: &str = "1.0";
/// The last day the model receives security updates, as the console's issue banner states.
pub const SUPPORT_END: &str = "2030-12-31";
/// The only account on the unit.
pub const ADMIN_USER: &str = "admin";
