//! The mock cloud's HTTPS services: the update server, the companion-app API and third-party recipients,
//! served over real TLS from the run's PKI, obeying injected faults and recording every request in the
//! flow log. Scenarios drive the state through [`CloudState`]'s synchronous accessors.

mod api;
mod app;
mod record;
mod server;
mod state;
mod thirdparty;
mod update;

pub use server::{Https, HttpsConfig};
pub use state::{
    Account, CloudState, ConsentEvent, NewAccount, Notice, Received, Release, StateError,
};

use std::net::SocketAddr;

/// Largest request body accepted; larger ones are answered 413.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

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
