//! hilt's domain model: what a device declares (board profile: identity, links, ICS, IXIT, bindings),
//! what a scenario verifies (abstract steps and checks, the provisions it evidences), the verdicts,
//! and the catalogue of EN 303 645 / PSTI / ICO provisions they trace to.
//!
//! Everything here is loaded from files written by people, so every error names file, line and key.

pub mod campaign;
pub mod catalogue;
pub mod error;
pub mod flow_vocab;
pub mod flows;
pub mod fsread;
pub mod ics;
pub mod ixit;
pub mod profile;
pub mod scenario;
pub mod template;
pub mod var;
pub mod verdict;
pub mod vocabulary;

pub use error::{LoadError, Location};
pub use fsread::ReadError;
pub use verdict::Verdict;
