//! The mock cloud's HTTPS services: the update server (files the harness offers), device notices and
//! privacy reports (pairing, consents, erasure), the companion-app API and third-party recipients,
//! served over real TLS from the run's PKI (and optionally plain HTTP), obeying injected faults and
//! recording every request in the flow log, with who made it. Scenarios drive the state through
//! [`CloudState`]'s synchronous accessors.

mod api;
mod app;
mod backend;
mod device;
mod device_privacy;
mod record;
mod server;
mod state;
mod thirdparty;
mod update;

pub use server::{Https, HttpsConfig};
pub use state::{
    Account, CloudState, ConsentEvent, DEVICE_NOTICES_KEPT, DEVICE_RECORDS_KEPT, DeviceConsent,
    DeviceErasure, NewAccount, Notice, Received, StateError,
};

use std::net::SocketAddr;

/// Largest request body accepted; larger ones are answered 413.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Longest device notice text, in characters; longer ones are answered 400.
pub const MAX_NOTICE_CHARS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Pki(#[from] hilt_cloud::PkiError),
}
