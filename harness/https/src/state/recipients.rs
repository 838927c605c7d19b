//! Third-party recipients' side of the state: what each was sent and the erasure notices it got.

use super::{CloudState, Received, StateError};
use std::collections::BTreeMap;

impl CloudState {
    pub fn recipients(&self) -> Vec<String> {
        self.lock().recipients.keys().cloned().collect()
    }

    pub(crate) fn ingest(&self, recipient: &str, received: Received) -> Result<(), StateError> {
        let mut st = self.lock();
        let r = st
            .recipients
            .get_mut(recipient)
            .ok_or_else(|| StateError::UnknownRecipient(recipient.to_string()))?;
        r.received.push(received);
        Ok(())
    }

    pub(crate) fn record_erasure_notice(
        &self,
        recipient: &str,
        user: &str,
    ) -> Result<(), StateError> {
        let mut st = self.lock();
        let r = st
            .recipients
            .get_mut(recipient)
            .ok_or_else(|| StateError::UnknownRecipient(recipient.to_string()))?;
        r.erasures.push(user.to_string());
        Ok(())
    }

    /// What `recipient` was sent, oldest first.
    pub fn received(&self, recipient: &str) -> Vec<Received> {
        self.lock()
            .recipients
            .get(recipient)
            .map(|r| r.received.clone())
            .unwrap_or_default()
    }

    /// Users `recipient` was told to erase, oldest first.
    pub fn erasure_notices(&self, recipient: &str) -> Vec<String> {
        self.lock()
            .recipients
            .get(recipient)
            .map(|r| r.erasures.clone())
            .unwrap_or_default()
    }

    /// Recipients that received data about `user`.
    pub fn recipients_of(&self, user: &str) -> Vec<String> {
        let st = self.lock();
        st.recipients
            .iter()
            .filter(|(_, r)| r.received.iter().any(|x| x.user.as_deref() == Some(user)))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Data third parties received about `user`, by recipient.
    pub fn received_about(&self, user: &str) -> BTreeMap<String, Vec<Received>> {
        let st = self.lock();
        st.recipients
            .iter()
            .map(|(n, r)| {
                (
                    n.clone(),
                    r.received
                        .iter()
                        .filter(|x| x.user.as_deref() == Some(user))
                        .cloned()
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }
}
