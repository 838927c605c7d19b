//! The mock cloud's shared core. The MQTT broker (`hilt-broker`) and the HTTPS services (`hilt-https`)
//! both take their certificates from [`pki`], record every exchange in the [`flowlog`], and obey the
//! [`faults`] a scenario injects.

pub mod faults;
pub mod flowlog;
pub mod pki;

pub use faults::{FaultState, Faults, OutageMode};
pub use flowlog::{Actor, Flow, FlowKind, FlowLog, Protocol, ServerCert};
pub use pki::{Pki, PkiError};
