//! A board that is a labgrid place: hilt acquires the place through the labgrid coordinator before the
//! board's first case, reads its resources (the network serial port the exporter publishes, a power
//! port), and releases it when the run ends, whatever way it ends.
//!
//! ```toml
//! [labgrid]
//! place = "vrb-1"
//! coordinator = "lab-coordinator:20408"   # default: LG_COORDINATOR, else 127.0.0.1:20408
//! acquire_timeout_ms = 60000              # how long a place someone else holds is waited for
//!
//! [links.console]
//! kind = "serial"
//! net = "rfc2217://{labgrid.serial}"      # HOST:PORT of the place's NetworkSerialPort
//! ```

use serde::Deserialize;

/// Waiting a minute for a taken place, then ERROR (the bench's trouble, not the device's).
pub const DEFAULT_ACQUIRE_TIMEOUT_MS: u64 = 60_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabgridPlace {
    pub place: String,
    /// `HOST:PORT` of the coordinator; `None`: labgrid's own default.
    #[serde(default)]
    pub coordinator: Option<String>,
    /// The `labgrid-client` program; `None`: found on `PATH`.
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default = "default_acquire_timeout")]
    pub acquire_timeout_ms: u64,
}

impl LabgridPlace {
    /// Place `place` with labgrid's default coordinator and client and the default wait.
    pub fn new(place: impl Into<String>) -> Self {
        LabgridPlace {
            place: place.into(),
            coordinator: None,
            client: None,
            acquire_timeout_ms: DEFAULT_ACQUIRE_TIMEOUT_MS,
        }
    }
}

fn default_acquire_timeout() -> u64 {
    DEFAULT_ACQUIRE_TIMEOUT_MS
}
