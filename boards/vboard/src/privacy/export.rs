//! A user's data export (right of access and portability, ICO-ACCESS-01/02, ICO-PORT-01): one compact
//! JSON object with that user's role, consent decisions and the recipients of their data, and the
//! personal data entered on the device when the user is the owner (it is the owner's). Never the
//! Wi-Fi PSK, and never another user's data (unless the `export-leaks-other-user` defect says so).

use std::collections::BTreeMap;

use serde::Serialize;

use super::state::{Decision, PrivacyState, Purpose};

/// No paired user has the id asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no such user")]
pub struct NoSuchUser;

/// One user's entry, in the order the keys are printed.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    user: &'a str,
    role: Role,
    /// The user's place in the pairing order, 1 for the owner (the device keeps no pairing time).
    paired: usize,
    consents: BTreeMap<&'static str, Decision>,
    shared_with: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<ProfileEntry<'a>>,
    /// Only under the `export-leaks-other-user` defect.
    #[serde(skip_serializing_if = "Option::is_none")]
    others: Option<Vec<Entry<'a>>>,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    Owner,
    Member,
}

/// The personal data, without the PSK.
#[derive(Debug, Serialize)]
struct ProfileEntry<'a> {
    name: Option<&'a str>,
    email: Option<&'a str>,
    wifi_ssid: Option<&'a str>,
}

/// The compact JSON export of `user`; with `leak_others`, every other paired user's entry too.
pub fn export(state: &PrivacyState, user: &str, leak_others: bool) -> Result<String, NoSuchUser> {
    let index = state
        .users
        .iter()
        .position(|u| u == user)
        .ok_or(NoSuchUser)?;
    let mut own = entry(state, index);
    if leak_others {
        let others = (0..state.users.len()).filter(|&i| i != index);
        own.others = Some(others.map(|i| entry(state, i)).collect());
    }
    // Plain strings and maps only: serialising cannot fail.
    Ok(serde_json::to_string(&own).unwrap_or_default())
}

/// The entry of the `index`th paired user (which must exist).
fn entry(state: &PrivacyState, index: usize) -> Entry<'_> {
    let user = state.users[index].as_str();
    let owner = index == 0;
    // Only decisions the user made: a member decides nothing on this device.
    let consents = state
        .consents
        .get(user)
        .map(|c| BTreeMap::from([(Purpose::Analytics.name(), c.get(Purpose::Analytics))]))
        .unwrap_or_default();
    let shared_with = state
        .shared_with
        .get(user)
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let p = &state.profile;
    Entry {
        user,
        role: if owner { Role::Owner } else { Role::Member },
        paired: index + 1,
        consents,
        shared_with,
        profile: owner.then(|| ProfileEntry {
            name: p.name.as_deref(),
            email: p.email.as_deref(),
            wifi_ssid: p.wifi.as_ref().map(|w| w.ssid.as_str()),
        }),
        others: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::{ANALYTICS, Psk, Wifi};

    fn lived_in() -> PrivacyState {
        let mut s = PrivacyState::default();
        s.pair("alice").unwrap();
        s.pair("bob").unwrap();
        s.profile.name = Some("Alice Example".into());
        s.profile.wifi = Some(Wifi {
            ssid: "HomeNet".into(),
            psk: Psk::new("hunter2-secret"),
        });
        s.decide(Purpose::Analytics, true, 1);
        s.record_sent("alice", ANALYTICS);
        s
    }

    #[test]
    fn the_owner_gets_the_personal_data_and_a_member_only_their_own() {
        let s = lived_in();
        assert_eq!(
            export(&s, "alice", false).unwrap(),
            r#"{"user":"alice","role":"owner","paired":1,"consents":{"analytics":"granted"},"shared_with":["analytics"],"profile":{"name":"Alice Example","email":null,"wifi_ssid":"HomeNet"}}"#
        );
        assert_eq!(
            export(&s, "bob", false).unwrap(),
            r#"{"user":"bob","role":"member","paired":2,"consents":{},"shared_with":[]}"#
        );
        assert_eq!(export(&s, "mallory", false), Err(NoSuchUser));
        assert_eq!(
            export(&PrivacyState::default(), "alice", false),
            Err(NoSuchUser)
        );
        assert!(!export(&s, "alice", true).unwrap().contains("hunter2"));
    }

    #[test]
    fn the_leak_defect_adds_every_other_users_entry() {
        let s = lived_in();
        let leaked: serde_json::Value =
            serde_json::from_str(&export(&s, "bob", true).unwrap()).unwrap();
        assert_eq!(leaked["user"], "bob");
        assert_eq!(leaked["others"][0]["user"], "alice");
        assert_eq!(leaked["others"][0]["profile"]["name"], "Alice Example");
        assert_eq!(leaked["others"].as_array().unwrap().len(), 1);
    }
}
