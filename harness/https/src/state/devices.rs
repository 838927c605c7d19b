//! Notices devices post about themselves (e.g. "update refused: bad signature"): kept per device as
//! evidence, bounded, and passed on to the device's linked users like any privacy notice.

use super::privacy::push_bounded;
use super::{CloudState, Notice};
use std::collections::VecDeque;

/// Notices kept per device; the oldest go first, so a chatty device cannot grow the state unbounded.
pub const DEVICE_NOTICES_KEPT: usize = 256;

impl CloudState {
    /// Record a notice from `device` (its authenticated identity) and deliver it to the device's live
    /// linked users; returns how many users got it.
    pub fn device_notice(&self, device: &str, text: &str) -> usize {
        self.device_notice_to(device, text, None)
    }

    /// [`CloudState::device_notice`] addressed by the device to some of its users only.
    pub fn device_notice_to(&self, device: &str, text: &str, users: Option<&[String]>) -> usize {
        self.record_device_notice(device, text);
        let delivered = self.post_notice_to(device, text, users);
        tracing::info!(
            device,
            chars = text.chars().count(),
            delivered,
            "device notice"
        );
        delivered
    }

    fn record_device_notice(&self, device: &str, text: &str) {
        let mut st = self.lock();
        let notice = st.new_notice(device, text);
        let list: &mut VecDeque<Notice> = st.device_notices.entry(device.to_string()).or_default();
        push_bounded(list, notice, DEVICE_NOTICES_KEPT);
    }

    /// What `device` posted, oldest first (at most [`DEVICE_NOTICES_KEPT`], the latest ones).
    pub fn device_notices(&self, device: &str) -> Vec<Notice> {
        self.lock()
            .device_notices
            .get(device)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_notices_are_kept_in_order_bounded_and_delivered() {
        let s = CloudState::new(&[]);
        let a = s.create_account("a").unwrap();
        s.link("D1", &a.id).unwrap();
        assert_eq!(s.device_notice("D1", "first"), 1);
        assert_eq!(s.device_notice("D2", "nobody linked"), 0);
        assert_eq!(s.notices(&a.id)[0].text, "first");
        for i in 0..DEVICE_NOTICES_KEPT {
            s.device_notice("D1", &format!("n{i}"));
        }
        let kept = s.device_notices("D1");
        assert_eq!(kept.len(), DEVICE_NOTICES_KEPT);
        assert_eq!(kept[0].text, "n0");
        assert_eq!(
            kept.last().unwrap().text,
            format!("n{}", DEVICE_NOTICES_KEPT - 1)
        );
        assert!(kept.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(s.device_notices("D2").len(), 1);
        assert!(s.device_notices("D3").is_empty());
    }

    #[test]
    fn a_device_may_address_some_of_its_users_only() {
        let s = CloudState::new(&[]);
        let a = s.create_account("a").unwrap();
        let b = s.create_account("b").unwrap();
        s.link("D1", &a.id).unwrap();
        s.link("D1", &b.id).unwrap();
        assert_eq!(
            s.device_notice_to("D1", "to b", Some(std::slice::from_ref(&b.id))),
            1
        );
        assert!(s.notices(&b.id).iter().any(|n| n.text == "to b"));
        assert!(!s.notices(&a.id).iter().any(|n| n.text == "to b"));
        // An addressee not linked to the device gets nothing.
        assert_eq!(
            s.device_notice_to("D2", "x", Some(std::slice::from_ref(&b.id))),
            0
        );
        assert_eq!(s.device_notice_to("D1", "all", None), 2);
    }
}
