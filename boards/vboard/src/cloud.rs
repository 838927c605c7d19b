//! The board's link to hilt's mock cloud: MQTT over TLS, trusting only the run's CA, with its own
//! credentials. Publishes telemetry and presence, answers commands, stores notices; the console
//! reads the link's state through a [`CloudView`].

mod backoff;
mod config;
mod session;
mod state;
mod tls;
pub(crate) mod url;

pub use backoff::Backoff;
pub use config::{CloudOptions, CloudSettings, ConfigError, Credentials, Secret};
pub use session::{CloudError, CloudHandle, start};
pub use state::{CloudView, Link, MAX_NOTICES, printable};
pub use tls::{
    Identity, TlsError, accepting_any, load_ca, load_identity, server_name, trusting, trusting_as,
};
pub use url::{BrokerUrl, UrlError};
