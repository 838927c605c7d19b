//! What the mock cloud's HTTPS services remember: companion-app accounts, device links, consents, notices
//! (to users and from devices), what devices reported about privacy (consents, erasures), third-party
//! receipts and the offered update files. Shared by the async handlers and the synchronous harness, so
//! it sits behind a std mutex and every accessor returns owned copies.

mod devices;
mod privacy;
mod recipients;
mod types;
mod update;

pub use devices::DEVICE_NOTICES_KEPT;
pub use privacy::DEVICE_RECORDS_KEPT;
pub(crate) use types::ErasureReport;
pub use types::{
    Account, ConsentEvent, DeviceConsent, DeviceErasure, NewAccount, Notice, Received, StateError,
};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

struct User {
    name: String,
    created: String,
    erased: Option<String>,
    consents: BTreeMap<String, Vec<ConsentEvent>>,
    notices: Vec<Notice>,
}

#[derive(Default)]
struct Recipient {
    received: Vec<Received>,
    erasures: Vec<String>,
}

#[derive(Default)]
struct Inner {
    next_user: u64,
    next_notice: u64,
    users: BTreeMap<String, User>,
    /// SHA-256 of a token → user id: the tokens themselves are never stored.
    tokens: HashMap<String, String>,
    /// Device serial → linked user ids, in link order.
    links: BTreeMap<String, Vec<String>>,
    recipients: BTreeMap<String, Recipient>,
    /// Absolute path (under `/update/`) → bytes: what the update server currently offers.
    update_files: BTreeMap<String, Bytes>,
    /// Device identity → notices it posted, oldest first, bounded.
    device_notices: BTreeMap<String, VecDeque<Notice>>,
    /// Device identity → consent decisions it reported, oldest first, bounded.
    device_consents: BTreeMap<String, VecDeque<DeviceConsent>>,
    /// Device identity → erasures (factory resets) it reported, oldest first, bounded.
    device_erasures: BTreeMap<String, VecDeque<DeviceErasure>>,
    /// Whether the mock backend passes erasures on to third parties itself. Off by default: the mock
    /// plays the manufacturer's backend, and its own propagation must never earn a device a PASS.
    backend_propagation: bool,
}

impl Inner {
    /// A notice about `device`, with the next id.
    fn new_notice(&mut self, device: &str, text: &str) -> Notice {
        self.next_notice += 1;
        Notice {
            id: self.next_notice,
            device: device.to_string(),
            text: text.to_string(),
            time: now(),
        }
    }
}

/// The services' shared state: cheap to clone, all accessors synchronous.
#[derive(Clone)]
pub struct CloudState {
    inner: Arc<Mutex<Inner>>,
}

impl Default for CloudState {
    /// Third-party recipients `analytics` and `ads`.
    fn default() -> Self {
        Self::new(&["analytics", "ads"])
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn token_key(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl CloudState {
    pub fn new(recipients: &[&str]) -> CloudState {
        let mut inner = Inner::default();
        for r in recipients {
            inner
                .recipients
                .insert((*r).to_string(), Recipient::default());
        }
        CloudState {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- accounts and devices ----

    /// Create a companion-app account and its bearer token.
    pub fn create_account(&self, name: &str) -> Result<NewAccount, StateError> {
        let mut raw = [0u8; 32];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut raw)
            .map_err(|e| StateError::Random(format!("{e:?}")))?;
        let token = hex::encode(raw);
        let mut st = self.lock();
        st.next_user += 1;
        let id = format!("user-{}", st.next_user);
        let user = User {
            name: name.to_string(),
            created: now(),
            erased: None,
            consents: BTreeMap::new(),
            notices: Vec::new(),
        };
        st.users.insert(id.clone(), user);
        st.tokens.insert(token_key(&token), id.clone());
        tracing::debug!(user = %id, "account created");
        Ok(NewAccount { id, token })
    }

    /// The live (not erased) user a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<String> {
        let st = self.lock();
        let id = st.tokens.get(&token_key(token))?;
        st.users
            .get(id)
            .filter(|u| u.erased.is_none())
            .map(|_| id.clone())
    }

    fn live<'a>(st: &'a mut Inner, user: &str) -> Result<&'a mut User, StateError> {
        match st.users.get_mut(user) {
            None => Err(StateError::UnknownUser(user.to_string())),
            Some(u) if u.erased.is_some() => Err(StateError::Erased(user.to_string())),
            Some(u) => Ok(u),
        }
    }

    /// Link a user to a device (idempotent).
    pub fn link(&self, device: &str, user: &str) -> Result<(), StateError> {
        let mut st = self.lock();
        Self::live(&mut st, user)?;
        let users = st.links.entry(device.to_string()).or_default();
        if !users.iter().any(|u| u == user) {
            users.push(user.to_string());
        }
        Ok(())
    }

    /// Live users linked to a device, in link order.
    pub fn device_users(&self, device: &str) -> Vec<String> {
        let st = self.lock();
        let linked = st.links.get(device).map(Vec::as_slice).unwrap_or_default();
        linked
            .iter()
            .filter(|u| st.users.get(*u).is_some_and(|u| u.erased.is_none()))
            .cloned()
            .collect()
    }

    pub fn account(&self, id: &str) -> Option<Account> {
        let st = self.lock();
        let u = st.users.get(id)?;
        let devices = st
            .links
            .iter()
            .filter(|(_, us)| us.iter().any(|x| x == id))
            .map(|(d, _)| d.clone())
            .collect();
        Some(Account {
            id: id.to_string(),
            name: u.name.clone(),
            created: u.created.clone(),
            erased: u.erased.clone(),
            devices,
        })
    }

    /// Every account, erased ones included, by id.
    pub fn accounts(&self) -> Vec<Account> {
        let ids: Vec<String> = self.lock().users.keys().cloned().collect();
        ids.iter().filter_map(|id| self.account(id)).collect()
    }

    // ---- notices ----

    /// Deliver a privacy notice to every live user linked to `device`; returns how many got it.
    pub fn post_notice(&self, device: &str, text: &str) -> usize {
        self.post_notice_to(device, text, None)
    }

    /// Deliver a notice to the live users linked to `device` that `only` names (all of them when
    /// `None`): the device decides who is told, the cloud only delivers. Returns how many got it.
    pub fn post_notice_to(&self, device: &str, text: &str, only: Option<&[String]>) -> usize {
        let users: Vec<String> = self
            .device_users(device)
            .into_iter()
            .filter(|u| only.is_none_or(|o| o.contains(u)))
            .collect();
        let mut st = self.lock();
        for u in &users {
            let notice = st.new_notice(device, text);
            if let Some(user) = st.users.get_mut(u) {
                user.notices.push(notice);
            }
        }
        users.len()
    }

    pub fn notices(&self, user: &str) -> Vec<Notice> {
        self.lock()
            .users
            .get(user)
            .map(|u| u.notices.clone())
            .unwrap_or_default()
    }

    // ---- consents ----

    /// Record a consent decision (a withdrawal is `granted == false`).
    pub fn set_consent(
        &self,
        user: &str,
        purpose: &str,
        granted: bool,
    ) -> Result<ConsentEvent, StateError> {
        let mut st = self.lock();
        let u = Self::live(&mut st, user)?;
        let ev = ConsentEvent {
            granted,
            time: now(),
        };
        u.consents
            .entry(purpose.to_string())
            .or_default()
            .push(ev.clone());
        Ok(ev)
    }

    /// A purpose's decisions, oldest first.
    pub fn consent_history(&self, user: &str, purpose: &str) -> Vec<ConsentEvent> {
        self.lock()
            .users
            .get(user)
            .and_then(|u| u.consents.get(purpose).cloned())
            .unwrap_or_default()
    }

    /// Whether consent currently stands (never given means not granted).
    pub fn consent_granted(&self, user: &str, purpose: &str) -> bool {
        self.consent_history(user, purpose)
            .last()
            .is_some_and(|e| e.granted)
    }

    /// Every purpose's history for a user.
    pub fn consents(&self, user: &str) -> BTreeMap<String, Vec<ConsentEvent>> {
        self.lock()
            .users
            .get(user)
            .map(|u| u.consents.clone())
            .unwrap_or_default()
    }

    // ---- erasure ----

    /// Mark a user erased and revoke its tokens; the record (and its device links) stays, as evidence.
    /// With [backend propagation](Self::set_backend_propagation) on, every recipient that had received
    /// data about the user is also given an erasure notice; returns those recipients (none when off).
    pub fn erase(&self, user: &str) -> Result<Vec<String>, StateError> {
        let mut st = self.lock();
        Self::live(&mut st, user)?.erased = Some(now());
        st.tokens.retain(|_, u| u != user);
        let notified = st.propagate_erasure(user);
        tracing::info!(user, ?notified, "account erased");
        Ok(notified)
    }

    pub fn is_erased(&self, user: &str) -> bool {
        self.lock()
            .users
            .get(user)
            .is_some_and(|u| u.erased.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn tokens_die_with_erasure_and_only_recipients_with_data_are_notified() {
        let s = CloudState::default();
        s.set_backend_propagation(true);
        let a = s.create_account("alice").unwrap();
        let b = s.create_account("bob").unwrap();
        assert!(!format!("{a:?}").contains(&a.token));
        assert_eq!(s.authenticate(&a.token).as_deref(), Some(a.id.as_str()));
        let rec = |u: &str| Received {
            user: Some(u.into()),
            body: Value::Null,
            payload_sha256: String::new(),
            time: now(),
        };
        s.ingest("ads", rec(&a.id)).unwrap();
        s.ingest("analytics", rec(&b.id)).unwrap();
        assert_eq!(
            s.ingest("nobody", rec(&a.id)),
            Err(StateError::UnknownRecipient("nobody".into()))
        );
        assert_eq!(s.erase(&a.id).unwrap(), vec!["ads".to_string()]);
        assert_eq!(s.authenticate(&a.token), None);
        assert_eq!(s.authenticate(&b.token).as_deref(), Some(b.id.as_str()));
        assert_eq!(s.erasure_notices("ads"), vec![a.id.clone()]);
        assert!(s.erasure_notices("analytics").is_empty());
        assert_eq!(s.erase(&a.id), Err(StateError::Erased(a.id.clone())));
        assert_eq!(s.link("dev", &a.id), Err(StateError::Erased(a.id.clone())));
    }

    #[test]
    fn erasure_without_backend_propagation_notifies_nobody() {
        let s = CloudState::default();
        let a = s.create_account("alice").unwrap();
        let r = Received {
            user: Some(a.id.clone()),
            body: Value::Null,
            payload_sha256: String::new(),
            time: now(),
        };
        s.ingest("ads", r).unwrap();
        assert_eq!(s.erase(&a.id).unwrap(), Vec::<String>::new());
        assert!(s.is_erased(&a.id));
        assert_eq!(s.authenticate(&a.token), None);
        assert!(s.erasure_notices("ads").is_empty());
    }

    #[test]
    fn notices_reach_only_live_linked_users() {
        let s = CloudState::new(&[]);
        let a = s.create_account("a").unwrap();
        let b = s.create_account("b").unwrap();
        let c = s.create_account("c").unwrap();
        s.link("D1", &a.id).unwrap();
        s.link("D1", &b.id).unwrap();
        s.link("D1", &b.id).unwrap();
        s.link("D2", &c.id).unwrap();
        s.erase(&b.id).unwrap();
        assert_eq!(s.post_notice("D1", "new policy"), 1);
        assert_eq!(s.notices(&a.id).len(), 1);
        assert!(s.notices(&b.id).is_empty() && s.notices(&c.id).is_empty());
        assert_eq!(s.account(&a.id).unwrap().devices, vec!["D1".to_string()]);
    }
}
