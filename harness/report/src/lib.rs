//! The conformance report: its data model, the roll-up per provision, and signing as a DSSE envelope
//! around an in-toto Statement so that other tools can verify it.

pub mod atomic;
pub mod campaign;
pub mod digest;
pub mod html;
pub mod junit;
pub mod keys;
pub mod model;
pub mod printable;
pub mod rollup;
pub mod schema;
pub mod sign;
pub mod verify;
