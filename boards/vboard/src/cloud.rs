//! The board's link to hilt's mock cloud: MQTT over TLS, trusting only the run's CA, with its own
//! credentials. Publishes telemetry and presence, answers commands, stores notices; the console
//! reads the link's state through a [`CloudView`].

mod backoff;
mod config;
mod session;
mod state;
mod tls;
mod url;

pub use backoff::Backoff;
pub use config::{CloudOptions, CloudSettings, ConfigError, Credentials, Secret};
pub use session::{CloudError, CloudHandle, start};
pub use state::{CloudView, Link, MAX_NOTICES};
pub use tls::{TlsError, accepting_any, load_ca, server_name, trusting};
pub use url::{BrokerUrl, UrlError};
