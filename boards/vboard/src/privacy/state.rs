//! The privacy state kept in flash: paired users (the owner first), the personal data entered on the
//! device, consent decisions (with when each was made), and which recipients were sent each user's
//! data, so an erase can tell them. Everything here is checked before it is stored and again when an
//! image is read.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::sync::CloudDecision;

/// Most users one device is paired with.
pub const MAX_USERS: usize = 8;
/// Longest user id, in characters.
pub const MAX_USER_ID: usize = 64;
/// Longest personal-data text (name, e-mail, SSID, PSK), in characters.
pub const MAX_TEXT: usize = 128;
/// The third-party analytics processor, as a recipient of personal data.
pub const ANALYTICS: &str = "analytics";

/// A purpose the user decides on; `analytics` is the only optional one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Analytics,
}

impl Purpose {
    pub fn parse(word: &str) -> Option<Self> {
        (word == "analytics").then_some(Purpose::Analytics)
    }

    pub fn name(self) -> &'static str {
        match self {
            Purpose::Analytics => "analytics",
        }
    }
}

/// A user's decision on one purpose. Nothing is assumed before the user decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    #[default]
    Never,
    Granted,
    Withdrawn,
}

impl Decision {
    pub fn from_granted(granted: bool) -> Self {
        if granted {
            Decision::Granted
        } else {
            Decision::Withdrawn
        }
    }

    /// The word `consent` prints.
    pub fn word(self) -> &'static str {
        match self {
            Decision::Never => "never",
            Decision::Granted => "granted",
            Decision::Withdrawn => "withdrawn",
        }
    }
}

/// One user's decisions, each with when it was made (unix ms; 0 in images written before that was
/// kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consents {
    #[serde(default)]
    pub analytics: Decision,
    /// When `analytics` was decided: on the console (the device's clock), or in the cloud for a
    /// decision adopted from there (the time of the cloud's entry).
    #[serde(default)]
    pub analytics_ms: u64,
}

impl Consents {
    pub fn get(&self, purpose: Purpose) -> Decision {
        match purpose {
            Purpose::Analytics => self.analytics,
        }
    }

    /// When the decision on `purpose` was made (unix ms), 0 if never or not known.
    pub fn decided_ms(&self, purpose: Purpose) -> u64 {
        match purpose {
            Purpose::Analytics => self.analytics_ms,
        }
    }

    fn set(&mut self, purpose: Purpose, decision: Decision, at_ms: u64) {
        match purpose {
            Purpose::Analytics => {
                self.analytics = decision;
                self.analytics_ms = at_ms;
            }
        }
    }
}

/// A Wi-Fi pre-shared key: stored, never shown or logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Psk(String);

impl Psk {
    pub fn new(text: &str) -> Self {
        Self(text.to_string())
    }
}

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Psk(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wifi {
    pub ssid: String,
    pub psk: Psk,
}

/// The personal data entered on the device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub wifi: Option<Wifi>,
}

impl Profile {
    /// `profile: name=<name or -> email=<email or -> wifi=<ssid or ->`: never the PSK.
    pub fn line(&self) -> String {
        let or_dash = |v: Option<&str>| v.unwrap_or("-").to_string();
        format!(
            "profile: name={} email={} wifi={}",
            or_dash(self.name.as_deref()),
            or_dash(self.email.as_deref()),
            or_dash(self.wifi.as_ref().map(|w| w.ssid.as_str())),
        )
    }

    fn is_valid(&self) -> bool {
        let texts = [
            self.name.as_deref(),
            self.email.as_deref(),
            self.wifi.as_ref().map(|w| w.ssid.as_str()),
            self.wifi.as_ref().map(|w| w.psk.0.as_str()),
        ];
        texts.into_iter().flatten().all(valid_text)
    }
}

/// Why a user cannot be paired (checked before the cloud is asked, and again after).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PairRefusal {
    #[error("invalid user id")]
    InvalidId,
    #[error("already paired")]
    AlreadyPaired,
    #[error("too many users")]
    TooMany,
}

/// A privacy record read from flash that this firmware would never have written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid privacy record: {0}")]
pub struct InvalidRecord(&'static str);

/// Everything about users and their data that survives a reboot; empty at the factory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyState {
    /// Paired user ids, the owner first, then household members.
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub profile: Profile,
    /// Consent decisions by user id.
    #[serde(default)]
    pub consents: BTreeMap<String, Consents>,
    /// By user id, the recipients the device sent that user's data to.
    #[serde(default)]
    pub shared_with: BTreeMap<String, BTreeSet<String>>,
}

impl PrivacyState {
    /// The first paired user.
    pub fn owner(&self) -> Option<&str> {
        self.users.first().map(String::as_str)
    }

    /// Whether `user` could be paired now.
    pub fn may_pair(&self, user: &str) -> Result<(), PairRefusal> {
        if !valid_user_id(user) {
            Err(PairRefusal::InvalidId)
        } else if self.users.iter().any(|u| u == user) {
            Err(PairRefusal::AlreadyPaired)
        } else if self.users.len() >= MAX_USERS {
            Err(PairRefusal::TooMany)
        } else {
            Ok(())
        }
    }

    pub fn pair(&mut self, user: &str) -> Result<(), PairRefusal> {
        self.may_pair(user)?;
        self.users.push(user.to_string());
        Ok(())
    }

    /// The owner's decision on `purpose`; `None` without an owner.
    pub fn owner_decision(&self, purpose: Purpose) -> Option<Decision> {
        let owner = self.owner()?;
        Some(
            self.consents
                .get(owner)
                .map_or(Decision::Never, |c| c.get(purpose)),
        )
    }

    /// Records the owner's decision made at `at_ms`; `None` (and nothing recorded) without an owner.
    pub fn decide(&mut self, purpose: Purpose, granted: bool, at_ms: u64) -> Option<Decision> {
        let owner = self.owner()?.to_string();
        let decision = Decision::from_granted(granted);
        self.consents
            .entry(owner)
            .or_default()
            .set(purpose, decision, at_ms);
        Some(decision)
    }

    /// Adopts `latest`, the newest decision in the cloud's history of `user` on `purpose`, when
    /// [`should_adopt`] says so; the adopted decision, or `None` when nothing changed.
    pub fn adopt(
        &mut self,
        user: &str,
        purpose: Purpose,
        latest: CloudDecision,
    ) -> Option<Decision> {
        if self.owner() != Some(user) {
            return None;
        }
        let own = self.consents.get(user).cloned().unwrap_or_default();
        if !should_adopt(own.get(purpose), own.decided_ms(purpose), latest) {
            return None;
        }
        let decision = Decision::from_granted(latest.granted);
        // The cloud's time, not the device's: a later decision in the app must still be newer.
        self.consents
            .entry(user.to_string())
            .or_default()
            .set(purpose, decision, latest.at_ms);
        Some(decision)
    }

    /// Records that `recipient` was sent `user`'s data; true when that is new. Users no longer
    /// paired (an erase happened meanwhile) are not recorded.
    pub fn record_sent(&mut self, user: &str, recipient: &str) -> bool {
        if !self.users.iter().any(|u| u == user) || !valid_user_id(recipient) {
            return false;
        }
        let recipients = self.shared_with.entry(user.to_string()).or_default();
        recipients.insert(recipient.to_string())
    }

    /// (recipient, user) for every paired user and every recipient that got that user's data.
    pub fn erasure_notices(&self) -> Vec<(String, String)> {
        let mut notices = Vec::new();
        for user in &self.users {
            for recipient in self.shared_with.get(user).into_iter().flatten() {
                notices.push((recipient.clone(), user.clone()));
            }
        }
        notices
    }

    /// Removes users, consents and the recipient record; the personal data too unless `keep_profile`.
    pub fn wipe(&mut self, keep_profile: bool) {
        let profile = std::mem::take(&mut self.profile);
        *self = Self::default();
        if keep_profile {
            self.profile = profile;
        }
    }

    /// Checks a record read from flash: ids and texts are printed and put in URLs.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        if self.users.len() > MAX_USERS {
            return Err(InvalidRecord("too many users"));
        }
        let distinct: BTreeSet<_> = self.users.iter().collect();
        if distinct.len() != self.users.len() || !self.users.iter().all(|u| valid_user_id(u)) {
            return Err(InvalidRecord("bad user list"));
        }
        if !self.consents.keys().all(|u| valid_user_id(u)) {
            return Err(InvalidRecord("bad consent record"));
        }
        let ids = self
            .shared_with
            .iter()
            .flat_map(|(u, r)| r.iter().chain([u]));
        if !ids.into_iter().all(|id| valid_user_id(id)) {
            return Err(InvalidRecord("bad recipient record"));
        }
        if !self.profile.is_valid() {
            return Err(InvalidRecord("bad personal data"));
        }
        Ok(())
    }
}

/// Whether the device takes `latest` from the cloud over its own decision `local`, made at `local_ms`.
///
/// Only a different decision that is newer than the device's own last one. The cloud's history also
/// holds the device's own reports, stamped when the cloud received them, so a decision made on the
/// console and not yet reported is newer than anything the history holds (the device and the cloud
/// keep the same wall-clock time) and is not overwritten by an older cloud state; once reported, it is
/// the history's latest entry and agrees with the device. (The agent reads the history only with no
/// report queued or in flight, so the report of an earlier console decision, stamped after a later
/// one was made, is never read before the later one's report.) An empty history changes nothing.
pub fn should_adopt(local: Decision, local_ms: u64, latest: CloudDecision) -> bool {
    Decision::from_granted(latest.granted) != local && latest.at_ms > local_ms
}

/// 1 to 64 characters of `[A-Za-z0-9._-]` (also the rule for recipient names).
pub fn valid_user_id(id: &str) -> bool {
    (1..=MAX_USER_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// 1 to 128 printable characters: ASCII ones and space, or letters and digits of other scripts
/// (no control or formatting characters, which could rewrite the console when shown).
pub fn valid_text(text: &str) -> bool {
    let printable =
        |c: char| c == ' ' || c.is_ascii_graphic() || (!c.is_ascii() && c.is_alphanumeric());
    (1..=MAX_TEXT).contains(&text.chars().count()) && text.chars().all(printable)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A state with these users paired, the first as owner (shared by the privacy modules' tests).
    pub(crate) fn paired(users: &[&str]) -> PrivacyState {
        let mut s = PrivacyState::default();
        for u in users {
            s.pair(u).unwrap();
        }
        s
    }

    #[test]
    fn user_ids_and_texts() {
        assert!(valid_user_id("alice.o_k-1"));
        assert!(valid_user_id(&"a".repeat(64)));
        for bad in ["", "a b", "a/b", "ä", &"a".repeat(65), "../x"] {
            assert!(!valid_user_id(bad), "{bad}");
        }
        assert!(valid_text("Alice Example"));
        assert!(valid_text("Zoë Ørsted"));
        assert!(valid_text(&"x".repeat(128)));
        for bad in ["", "\u{1b}[2J", "a\u{202e}b", "\u{fffd}", &"x".repeat(129)] {
            assert!(!valid_text(bad), "{bad:?}");
        }
    }

    #[test]
    fn pairing_keeps_the_owner_first_and_refuses_duplicates_and_overflow() {
        let mut s = paired(&["alice", "bob"]);
        assert_eq!(s.owner(), Some("alice"));
        assert_eq!(s.pair("bob"), Err(PairRefusal::AlreadyPaired));
        assert_eq!(s.pair("bad id"), Err(PairRefusal::InvalidId));
        for i in 2..MAX_USERS {
            s.pair(&format!("u{i}")).unwrap();
        }
        assert_eq!(s.pair("one-more"), Err(PairRefusal::TooMany));
        assert_eq!(s.users.len(), MAX_USERS);
    }

    #[test]
    fn consent_is_the_owners_and_never_until_decided() {
        let mut s = PrivacyState::default();
        assert_eq!(s.owner_decision(Purpose::Analytics), None);
        assert_eq!(s.decide(Purpose::Analytics, true, 1), None);
        s = paired(&["alice", "bob"]);
        assert_eq!(s.owner_decision(Purpose::Analytics), Some(Decision::Never));
        assert_eq!(
            s.decide(Purpose::Analytics, true, 1),
            Some(Decision::Granted)
        );
        assert_eq!(
            s.decide(Purpose::Analytics, false, 2),
            Some(Decision::Withdrawn)
        );
        assert_eq!(s.consents["alice"].decided_ms(Purpose::Analytics), 2);
        assert_eq!(
            s.owner_decision(Purpose::Analytics),
            Some(Decision::Withdrawn)
        );
        assert!(!s.consents.contains_key("bob"));
        assert_eq!(Purpose::parse("analytics"), Some(Purpose::Analytics));
        assert_eq!(Purpose::parse("marketing"), None);
    }

    fn cloud(granted: bool, at_ms: u64) -> CloudDecision {
        CloudDecision { granted, at_ms }
    }

    #[test]
    fn only_a_different_and_newer_cloud_decision_is_adopted() {
        assert!(should_adopt(Decision::Granted, 100, cloud(false, 101)));
        assert!(!should_adopt(Decision::Granted, 100, cloud(false, 100)));
        assert!(
            !should_adopt(Decision::Granted, 100, cloud(false, 99)),
            "older: the console's decision is not in the cloud yet"
        );
        assert!(!should_adopt(Decision::Granted, 100, cloud(true, 200)));
        assert!(!should_adopt(Decision::Withdrawn, 100, cloud(false, 200)));
        assert!(should_adopt(Decision::Never, 0, cloud(true, 1)));
        assert!(should_adopt(Decision::Never, 0, cloud(false, 1)));
    }

    #[test]
    fn the_owners_decision_follows_the_cloud_unless_the_console_decided_later() {
        let analytics = Purpose::Analytics;
        let mut s = paired(&["alice", "bob"]);
        s.decide(analytics, true, 1_000);
        assert_eq!(s.adopt("bob", analytics, cloud(false, 2_000)), None);
        assert_eq!(s.adopt("alice", analytics, cloud(false, 999)), None);
        assert_eq!(s.owner_decision(analytics), Some(Decision::Granted));

        assert_eq!(
            s.adopt("alice", analytics, cloud(false, 2_000)),
            Some(Decision::Withdrawn)
        );
        assert_eq!(s.owner_decision(analytics), Some(Decision::Withdrawn));
        assert_eq!(s.consents["alice"].decided_ms(analytics), 2_000);
        assert_eq!(s.adopt("alice", analytics, cloud(false, 3_000)), None);
        assert!(!s.consents.contains_key("bob"));

        // Granted again on the console: the withdrawal the cloud still shows is older.
        s.decide(analytics, true, 2_500);
        assert_eq!(s.adopt("alice", analytics, cloud(false, 2_000)), None);
        assert_eq!(s.owner_decision(analytics), Some(Decision::Granted));
        assert_eq!(
            PrivacyState::default().adopt("alice", analytics, cloud(true, 1)),
            None
        );
    }

    #[test]
    fn recipients_are_recorded_per_paired_user_and_wiped() {
        let mut s = paired(&["alice", "bob"]);
        assert!(s.record_sent("alice", ANALYTICS));
        assert!(!s.record_sent("alice", ANALYTICS), "already recorded");
        assert!(!s.record_sent("mallory", ANALYTICS), "not paired");
        assert!(!s.record_sent("bob", "bad/recipient"));
        assert_eq!(
            s.erasure_notices(),
            vec![("analytics".to_string(), "alice".to_string())]
        );
        s.profile.name = Some("Alice".into());
        s.decide(Purpose::Analytics, true, 1);
        let mut kept = s.clone();
        s.wipe(false);
        assert_eq!(s, PrivacyState::default());
        kept.wipe(true);
        assert!(kept.users.is_empty() && kept.consents.is_empty() && kept.shared_with.is_empty());
        assert_eq!(kept.profile.name.as_deref(), Some("Alice"));
    }

    #[test]
    fn the_profile_line_never_shows_the_psk() {
        let mut p = Profile::default();
        assert_eq!(p.line(), "profile: name=- email=- wifi=-");
        p.name = Some("Alice Example".into());
        p.wifi = Some(Wifi {
            ssid: "HomeNet".into(),
            psk: Psk::new("hunter2-secret"),
        });
        assert_eq!(p.line(), "profile: name=Alice Example email=- wifi=HomeNet");
        assert!(!format!("{p:?}").contains("hunter2"), "{p:?}");
    }

    #[test]
    fn records_from_flash_are_checked() {
        let mut s = paired(&["alice"]);
        s.validate().unwrap();
        s.users.push("alice".into());
        assert!(s.validate().is_err(), "duplicate user");
        let mut s = paired(&["alice"]);
        s.shared_with
            .entry("alice".into())
            .or_default()
            .insert("../evil".into());
        assert!(
            s.validate().is_err(),
            "recipient that would escape the URL path"
        );
        let mut s = PrivacyState::default();
        s.profile.email = Some("\u{1b}[2J".into());
        assert!(s.validate().is_err());
        let s: PrivacyState = serde_json::from_str("{}").unwrap();
        assert_eq!(s, PrivacyState::default());
        let c: Consents = serde_json::from_str(r#"{"analytics":"granted"}"#).unwrap();
        assert_eq!((c.analytics, c.analytics_ms), (Decision::Granted, 0));
    }
}
