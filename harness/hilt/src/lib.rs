//! hilt: a hardware-in-the-loop conformance suite for consumer IoT devices against ETSI EN 303 645,
//! the UK PSTI regulations and the UK ICO guidance for consumer IoT.
//!
//! The pieces: [`board`] makes a board profile's unit reachable (launching a virtual board if needed),
//! [`exec`] runs one scenario against it, [`runner`] turns scenario × board into trials and a signed
//! report, and [`selftest`] proves every scenario can FAIL.

pub mod app;
pub mod ble;
pub mod board;
pub mod campaign;
pub mod checks;
pub mod cloud;
pub mod devkey;
pub mod display;
pub mod events;
pub mod exec;
pub mod fake;
pub mod faults;
pub mod inventory;
pub mod labgrid;
pub mod memory;
pub mod merge;
pub mod netserial;
pub mod power;
pub mod report;
pub mod runner;
pub mod selftest;
pub mod suite;
pub mod updates;
pub mod usb;
