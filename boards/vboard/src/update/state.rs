//! The update state kept in flash: the two firmware slots (A/B), which one runs, the automatic-update
//! setting and the device's update notices.

use serde::{Deserialize, Serialize};

use crate::FW_VERSION;

/// Update notices kept in flash; older ones are dropped.
pub const MAX_UPDATE_NOTICES: usize = 16;
/// The security version the factory image carries.
pub const FACTORY_SECURITY_VERSION: u64 = 1;
/// What the factory slot records as its digest: there is no image file behind it.
pub const FACTORY_SHA256: &str = "factory";

/// One of the two firmware slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    pub fn letter(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }

    /// The slot's image file in the state directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Slot::A => "slot-a.bin",
            Slot::B => "slot-b.bin",
        }
    }
}

/// The firmware held by a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    pub version: String,
    pub security_version: u64,
    /// The release's SHA-256 (lowercase hex), as its manifest names it.
    pub sha256: String,
}

impl SlotInfo {
    pub fn factory() -> Self {
        Self {
            version: FW_VERSION.to_string(),
            security_version: FACTORY_SECURITY_VERSION,
            sha256: FACTORY_SHA256.to_string(),
        }
    }
}

/// A device notice with the wall-clock time it was made, so it can be ordered among cloud notices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub at_unix_ms: u64,
    pub text: String,
}

/// Everything about updates that survives a reboot.
///
/// The running slot's firmware is always present (`running`), so no flash image can name an active
/// slot without firmware in it; `standby` is the other slot, empty until first written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateState {
    pub active: Slot,
    pub running: SlotInfo,
    pub standby: Option<SlotInfo>,
    pub auto: bool,
    pub postponed_until_unix_ms: Option<u64>,
    /// Update notices, newest last, at most [`MAX_UPDATE_NOTICES`].
    pub notices: Vec<Notice>,
}

impl Default for UpdateState {
    /// The factory state; also what an image written before updates existed boots with.
    fn default() -> Self {
        Self::factory(true)
    }
}

/// The `autoupdate` setting as the console shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoMode {
    On,
    Off,
    Postponed,
}

impl AutoMode {
    pub fn word(self) -> &'static str {
        match self {
            AutoMode::On => "on",
            AutoMode::Off => "off",
            AutoMode::Postponed => "postponed",
        }
    }
}

impl UpdateState {
    /// Slot A holds the factory firmware; slot B is empty.
    pub fn factory(auto: bool) -> Self {
        Self {
            active: Slot::A,
            running: SlotInfo::factory(),
            standby: None,
            auto,
            postponed_until_unix_ms: None,
            notices: Vec::new(),
        }
    }

    pub fn auto_mode(&self, now_unix_ms: u64) -> AutoMode {
        match self.postponed_until_unix_ms {
            _ if !self.auto => AutoMode::Off,
            Some(until) if now_unix_ms < until => AutoMode::Postponed,
            _ => AutoMode::On,
        }
    }

    /// Records `info` as written to the standby slot and makes that slot the active one.
    pub fn switch_to(&mut self, info: SlotInfo) {
        let previous = std::mem::replace(&mut self.running, info);
        self.standby = Some(previous);
        self.active = self.active.other();
    }

    pub fn push_notice(&mut self, at_unix_ms: u64, text: String) {
        if self.notices.len() >= MAX_UPDATE_NOTICES {
            self.notices.remove(0);
        }
        self.notices.push(Notice { at_unix_ms, text });
    }

    pub fn has_notice(&self, text: &str) -> bool {
        self.notices.iter().any(|n| n.text == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(v: &str) -> SlotInfo {
        SlotInfo {
            version: v.into(),
            security_version: 2,
            sha256: "ab".into(),
        }
    }

    #[test]
    fn switching_alternates_slots_and_keeps_the_previous_firmware() {
        let mut s = UpdateState::default();
        assert_eq!((s.active, s.running.version.as_str()), (Slot::A, "1.0.0"));
        s.switch_to(info("1.1.0"));
        assert_eq!(s.active, Slot::B);
        assert_eq!(s.running, info("1.1.0"));
        assert_eq!(s.standby, Some(SlotInfo::factory()));
        s.switch_to(info("1.2.0"));
        assert_eq!((s.active, s.running.version.as_str()), (Slot::A, "1.2.0"));
        assert_eq!(s.standby.map(|i| i.version), Some("1.1.0".into()));
    }

    #[test]
    fn auto_mode_follows_the_setting_and_the_postponement() {
        let mut s = UpdateState::factory(true);
        assert_eq!(s.auto_mode(10), AutoMode::On);
        s.postponed_until_unix_ms = Some(100);
        assert_eq!(s.auto_mode(99), AutoMode::Postponed);
        assert_eq!(s.auto_mode(100), AutoMode::On);
        s.auto = false;
        assert_eq!(s.auto_mode(99), AutoMode::Off);
        assert_eq!(UpdateState::factory(false).auto_mode(0), AutoMode::Off);
    }

    #[test]
    fn keeps_the_newest_sixteen_notices() {
        let mut s = UpdateState::default();
        for i in 0..20 {
            s.push_notice(i, format!("n{i}"));
        }
        assert_eq!(s.notices.len(), MAX_UPDATE_NOTICES);
        assert_eq!(s.notices[0].text, "n4");
        assert!(s.has_notice("n19") && !s.has_notice("n3"));
    }
}
