//! The privacy notices the device sends to its users through the cloud (EN 303 645 6-1): each user
//! is told what the device processes when paired, and every paired user is told when that processing
//! changes. Here are their texts and who they are addressed to; the agent only delivers them.

use super::state::{PrivacyState, Purpose};
use crate::MODEL;

/// What the device processes about a user, as the console's `privacy` and each privacy notice say it.
pub const SUMMARY: &str = "processes your account id, presence and (only with the owner's consent) \
    usage analytics shared with an analytics processor; ask the device (privacy) or the manual for details";

/// The notice a newly paired user gets: `privacy notice: VRB-1 <serial> <summary>`.
pub fn privacy_notice(serial: &str) -> String {
    // The label's designation, whatever the console shows: the notice names the product bought.
    format!("privacy notice: {MODEL} {serial} {SUMMARY}")
}

/// The notice every paired user gets when `purpose` is switched on or off.
pub fn change_notice(purpose: Purpose, on: bool) -> String {
    let what = match purpose {
        Purpose::Analytics => "usage analytics to the analytics processor",
    };
    let state = if on { "on" } else { "off" };
    format!("privacy change: {what} are now {state}")
}

/// Who privacy notices go to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoticePolicy {
    /// The `notice-to-owner-only` defect: household members are never told.
    pub owner_only: bool,
}

impl NoticePolicy {
    /// The addressees of the privacy notice for `user`, just paired; `None` when nobody is told.
    pub fn on_pairing(self, state: &PrivacyState, user: &str) -> Option<Vec<String>> {
        let told = !self.owner_only || state.owner() == Some(user);
        told.then(|| vec![user.to_string()])
    }

    /// The addressees of a change notice: every paired user (the owner first); empty without users.
    pub fn on_change(self, state: &PrivacyState) -> Vec<String> {
        let users = &state.users;
        let told = if self.owner_only {
            &users[..users.len().min(1)]
        } else {
            &users[..]
        };
        told.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::state::tests::paired;

    #[test]
    fn texts_name_the_device_and_the_change() {
        let n = privacy_notice("VRB-0001");
        assert!(
            n.starts_with("privacy notice: VRB-1 VRB-0001 processes your account id, presence"),
            "{n}"
        );
        assert!(n.ends_with(SUMMARY), "{n}");
        assert_eq!(
            change_notice(Purpose::Analytics, true),
            "privacy change: usage analytics to the analytics processor are now on"
        );
        assert!(change_notice(Purpose::Analytics, false).ends_with("are now off"));
    }

    #[test]
    fn every_user_is_told_unless_the_defect_keeps_members_out() {
        let s = paired(&["alice", "bob", "carol"]);
        let all = NoticePolicy::default();
        assert_eq!(all.on_pairing(&s, "bob"), Some(vec!["bob".to_string()]));
        assert_eq!(all.on_change(&s), s.users);

        let owner_only = NoticePolicy { owner_only: true };
        assert_eq!(
            owner_only.on_pairing(&s, "alice"),
            Some(vec!["alice".to_string()])
        );
        assert_eq!(owner_only.on_pairing(&s, "bob"), None);
        assert_eq!(owner_only.on_change(&s), vec!["alice".to_string()]);
        assert!(owner_only.on_change(&PrivacyState::default()).is_empty());
    }
}
