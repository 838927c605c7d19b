//! The privacy side of devices: pairing and unpairing users, the consent decisions and erasures (factory
//! resets) devices report, and the switch for the mock backend's own erasure propagation to third
//! parties. What a device reports is kept per device, bounded, so the harness can hold the device to it.

use super::{
    CloudState, ConsentEvent, DeviceConsent, DeviceErasure, ErasureReport, Inner, StateError, now,
};
use std::collections::VecDeque;

/// Consent reports and erasure reports kept per device, each; the oldest go first.
pub const DEVICE_RECORDS_KEPT: usize = 1024;

/// Append to a per-device record, dropping the oldest entry at the bound.
pub(super) fn push_bounded<T>(list: &mut VecDeque<T>, item: T, bound: usize) {
    if list.len() >= bound {
        list.pop_front();
    }
    list.push_back(item);
}

impl Inner {
    /// Whether `user` is a live user linked to `device`: erased users no longer count as paired.
    fn is_linked(&self, device: &str, user: &str) -> bool {
        let linked = self
            .links
            .get(device)
            .is_some_and(|us| us.iter().any(|u| u == user));
        linked && self.users.get(user).is_some_and(|u| u.erased.is_none())
    }

    /// Remove one link; true if it existed. A device left with no users drops out of the map.
    fn remove_link(&mut self, device: &str, user: &str) -> bool {
        let Some(users) = self.links.get_mut(device) else {
            return false;
        };
        let before = users.len();
        users.retain(|u| u != user);
        let removed = users.len() != before;
        if users.is_empty() {
            self.links.remove(device);
        }
        removed
    }

    /// The mock backend's own propagation: with the switch on, give every recipient that received data
    /// about `user` an erasure notice and return their names; with it off, do nothing.
    pub(super) fn propagate_erasure(&mut self, user: &str) -> Vec<String> {
        if !self.backend_propagation {
            return Vec::new();
        }
        let mut notified = Vec::new();
        for (name, r) in self.recipients.iter_mut() {
            if r.received.iter().any(|x| x.user.as_deref() == Some(user)) {
                r.erasures.push(user.to_string());
                notified.push(name.clone());
            }
        }
        notified
    }
}

impl CloudState {
    /// Turn the mock backend's automatic erasure propagation on or off (off by default). When off, an
    /// erasure (the user's, or a device's report) notifies no third party: only what the device itself
    /// sends them counts.
    pub fn set_backend_propagation(&self, on: bool) {
        self.lock().backend_propagation = on;
        tracing::info!(on, "backend erasure propagation");
    }

    /// Whether the mock backend propagates erasures to third parties itself.
    pub fn backend_propagation(&self) -> bool {
        self.lock().backend_propagation
    }

    /// Remove the link between `device` and `user`; true if there was one (erased users included).
    pub fn unlink(&self, device: &str, user: &str) -> bool {
        let removed = self.lock().remove_link(device, user);
        tracing::debug!(device, user, removed, "unlink");
        removed
    }

    /// Record a consent decision `device` reports for one of its live linked users: in the user's
    /// history and in the device's own record. Refused ([`StateError::NotLinked`]) for anyone else.
    pub(crate) fn record_device_consent(
        &self,
        device: &str,
        user: &str,
        purpose: &str,
        granted: bool,
    ) -> Result<ConsentEvent, StateError> {
        let mut st = self.lock();
        // One lock for the check and both records, so a concurrent unlink cannot slip in between.
        if !st.is_linked(device, user) {
            return Err(StateError::NotLinked {
                device: device.to_string(),
                user: user.to_string(),
            });
        }
        let ev = ConsentEvent {
            granted,
            time: now(),
        };
        Self::live(&mut st, user)?
            .consents
            .entry(purpose.to_string())
            .or_default()
            .push(ev.clone());
        let report = DeviceConsent {
            user: user.to_string(),
            purpose: purpose.to_string(),
            granted,
            time: ev.time.clone(),
        };
        let list = st.device_consents.entry(device.to_string()).or_default();
        push_bounded(list, report, DEVICE_RECORDS_KEPT);
        Ok(ev)
    }

    /// Consent decisions `device` reported, oldest first (at most [`DEVICE_RECORDS_KEPT`], the latest).
    pub fn device_consents(&self, device: &str) -> Vec<DeviceConsent> {
        self.lock()
            .device_consents
            .get(device)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Record that `device` says it was erased, naming `users`: unlink those it was linked to and, with
    /// backend propagation on, notify the recipients holding data about them. Only users actually linked
    /// are acted on, so a device cannot get strangers' data erased.
    pub(crate) fn record_device_erasure(&self, device: &str, users: &[String]) -> ErasureReport {
        let mut st = self.lock();
        let mut report = ErasureReport::default();
        for user in users {
            if !st.remove_link(device, user) {
                continue;
            }
            report.unlinked.push(user.clone());
            let notified = st.propagate_erasure(user);
            if !notified.is_empty() {
                report.notified.push((user.clone(), notified));
            }
        }
        let record = DeviceErasure {
            users: users.to_vec(),
            time: now(),
        };
        let list = st.device_erasures.entry(device.to_string()).or_default();
        push_bounded(list, record, DEVICE_RECORDS_KEPT);
        drop(st);
        tracing::info!(device, unlinked = ?report.unlinked, notified = ?report.notified, "device erasure reported");
        report
    }

    /// Erasures `device` reported, oldest first (at most [`DEVICE_RECORDS_KEPT`], the latest).
    pub fn device_erasures(&self, device: &str) -> Vec<DeviceErasure> {
        self.lock()
            .device_erasures
            .get(device)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Received;
    use serde_json::Value;

    fn data_about(s: &CloudState, recipient: &str, user: &str) {
        let r = Received {
            user: Some(user.into()),
            body: Value::Null,
            payload_sha256: String::new(),
            time: now(),
        };
        s.ingest(recipient, r).unwrap();
    }

    #[test]
    fn propagation_is_off_by_default_and_switchable() {
        let s = CloudState::default();
        assert!(!s.backend_propagation());
        s.set_backend_propagation(true);
        assert!(s.backend_propagation());
        s.set_backend_propagation(false);
        assert!(!s.backend_propagation());
    }

    #[test]
    fn unlink_removes_only_that_link() {
        let s = CloudState::new(&[]);
        let a = s.create_account("a").unwrap();
        let b = s.create_account("b").unwrap();
        s.link("D1", &a.id).unwrap();
        s.link("D1", &b.id).unwrap();
        s.link("D2", &a.id).unwrap();
        assert!(s.unlink("D1", &a.id));
        assert!(!s.unlink("D1", &a.id));
        assert!(!s.unlink("D9", &a.id));
        assert_eq!(s.device_users("D1"), vec![b.id.clone()]);
        assert_eq!(s.account(&a.id).unwrap().devices, vec!["D2".to_string()]);
    }

    #[test]
    fn device_consents_need_a_live_link_and_are_recorded_bounded() {
        let s = CloudState::new(&[]);
        let a = s.create_account("a").unwrap();
        let b = s.create_account("b").unwrap();
        s.link("D1", &a.id).unwrap();
        s.link("D1", &b.id).unwrap();
        s.record_device_consent("D1", &a.id, "analytics", true)
            .unwrap();
        assert!(s.consent_granted(&a.id, "analytics"));
        let not_linked = StateError::NotLinked {
            device: "D2".into(),
            user: a.id.clone(),
        };
        assert_eq!(
            s.record_device_consent("D2", &a.id, "analytics", false),
            Err(not_linked)
        );
        s.erase(&b.id).unwrap();
        assert!(matches!(
            s.record_device_consent("D1", &b.id, "ads", true),
            Err(StateError::NotLinked { .. })
        ));
        for i in 0..DEVICE_RECORDS_KEPT {
            s.record_device_consent("D1", &a.id, "ads", i % 2 == 0)
                .unwrap();
        }
        let kept = s.device_consents("D1");
        assert_eq!(kept.len(), DEVICE_RECORDS_KEPT);
        assert_eq!(kept[0].purpose, "ads");
        assert!(!kept.last().unwrap().granted);
        assert!(s.device_consents("D2").is_empty());
    }

    #[test]
    fn device_erasure_unlinks_its_own_users_and_propagates_only_when_on() {
        let s = CloudState::default();
        let a = s.create_account("a").unwrap();
        let b = s.create_account("b").unwrap();
        let stranger = s.create_account("c").unwrap();
        s.link("D1", &a.id).unwrap();
        s.link("D1", &b.id).unwrap();
        data_about(&s, "ads", &a.id);
        data_about(&s, "analytics", &stranger.id);

        let off = s.record_device_erasure("D1", &[a.id.clone(), stranger.id.clone()]);
        assert_eq!(off.unlinked, vec![a.id.clone()]);
        assert!(off.notified.is_empty());
        assert!(s.erasure_notices("ads").is_empty());
        assert_eq!(s.device_users("D1"), vec![b.id.clone()]);

        s.set_backend_propagation(true);
        data_about(&s, "analytics", &b.id);
        let on = s.record_device_erasure("D1", &[b.id.clone(), stranger.id.clone()]);
        assert_eq!(on.unlinked, vec![b.id.clone()]);
        assert_eq!(on.notified, vec![(b.id.clone(), vec!["analytics".into()])]);
        // The stranger's data stays: the device never had that user.
        assert_eq!(s.erasure_notices("analytics"), vec![b.id.clone()]);

        let reports = s.device_erasures("D1");
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].users, vec![a.id.clone(), stranger.id.clone()]);
        assert!(s.device_erasures("D2").is_empty());
    }
}
