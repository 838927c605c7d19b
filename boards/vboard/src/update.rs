//! The board's software update agent (EN 303 645 5.3): fetches the manufacturer's signed release
//! manifest over HTTPS with the device's client certificate, verifies it with [`hilt_update`] against
//! the one key provisioned at the factory, installs verified images into the standby slot of an A/B
//! pair, and tells the user and the cloud about security updates. The console talks to it through an
//! [`UpdateLink`]; named defects each leave out one of its duties.

mod agent;
mod config;
pub mod http;
mod judge;
mod link;
mod state;
pub mod url;

pub use agent::{NOTICES_PATH, StartError, UpdateHandle, start};
pub use config::{ConfigError, UpdateOptions, UpdateSettings};
pub use judge::{Outcome, Rejection, checks_for, judge_image, judge_manifest};
pub use link::{AgentEnd, Event, Request, Snapshot, UpdateLink, Wake, channel};
pub use state::{AutoMode, MAX_UPDATE_NOTICES, Notice, Slot, SlotInfo, UpdateState};
