//! The board's privacy behaviour: users paired through the cloud (the first is the owner), personal
//! data entered on the device, the owner's consent to usage analytics (off until the owner opts in,
//! given or withdrawn on the console or in the companion app), a privacy agent that sends analytics
//! to a third-party processor only while consent allows it, and an erase that tells every recipient
//! of a user's data before wiping it, privacy notices to every paired user (and the privacy summary
//! to anyone at the login prompt), and each user's own data export. Named defects each break one of
//! these duties.

mod agent;
mod config;
mod export;
mod link;
mod notice;
mod state;
mod sync;

pub use agent::{CLOUD, DEVICE_ERASURE_PATH, INGEST_PATH, PAIR_PATH, StartError, start};
pub use config::{
    ConsentPolicy, DEFAULT_ANALYTICS_MS, LIMITS, MIN_ANALYTICS_MS, POLL_LIMITS, PrivacyOptions,
};
pub use export::{NoSuchUser, export};
pub use link::{Event, PrivacyEnd, PrivacyLink, PrivacyOutbox, Request, Snapshot, channel};
pub use notice::{NoticePolicy, SUMMARY, change_notice, privacy_notice};
pub use state::{
    ANALYTICS, Consents, Decision, InvalidRecord, MAX_TEXT, MAX_USER_ID, MAX_USERS, PairRefusal,
    PrivacyState, Profile, Psk, Purpose, Wifi, should_adopt, valid_text, valid_user_id,
};
pub use sync::{CloudDecision, SyncError, history_path, latest, unix_ms};
