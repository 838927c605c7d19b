//! The abstract vocabulary scenarios are written in. A board profile binds each action to concrete
//! steps over its links; a scenario never names a link or a prompt.
//!
//! Each action is one file holding its [`ActionSpec`]; [`ACTIONS`] registers them. Adding an action is
//! one new file and one line here.

mod check_update;
mod erase;
mod export_data;
mod identify;
mod install_update;
mod list_usb;
mod login;
mod logout;
mod pair;
mod power_cycle;
mod read_auto_update;
mod read_consent;
mod read_consent_record;
mod read_debug_port;
mod read_personal_data;
mod read_privacy_info;
mod read_storage;
mod read_support_period;
mod read_update_notice;
mod reboot;
mod set_auto_update;
mod set_consent;
mod set_personal_data;
mod survey_ble;

/// Every action of the vocabulary.
pub const ACTIONS: &[ActionSpec] = &[
    login::SPEC,
    logout::SPEC,
    identify::SPEC,
    reboot::SPEC,
    check_update::SPEC,
    install_update::SPEC,
    read_auto_update::SPEC,
    set_auto_update::SPEC,
    read_update_notice::SPEC,
    read_support_period::SPEC,
    pair::SPEC,
    set_personal_data::SPEC,
    read_personal_data::SPEC,
    set_consent::SPEC,
    read_consent::SPEC,
    read_consent_record::SPEC,
    read_debug_port::SPEC,
    read_storage::SPEC,
    erase::SPEC,
    export_data::SPEC,
    read_privacy_info::SPEC,
    list_usb::SPEC,
    survey_ble::SPEC,
    power_cycle::SPEC,
];

/// One abstract action and what it may observe.
#[derive(Debug)]
pub struct ActionSpec {
    pub name: &'static str,
    pub summary: &'static str,
    /// Arguments the scenario passes (all required).
    pub args: &'static [&'static str],
    /// Outcomes the binding may report; empty = the action reports none.
    pub outcomes: &'static [&'static str],
    /// Outcomes that mean the device refused the request (e.g. a wrong password).
    pub refusals: &'static [&'static str],
    /// Outcomes that mean the device refuses everything for a while (a lockout).
    pub lockouts: &'static [&'static str],
    /// Values the binding may capture (named regex groups).
    pub captures: &'static [&'static str],
    /// How a binding carries it out.
    pub kind: ActionKind,
}

/// How an action is carried out: by a script over a console (or BLE) link, or by the link itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// A binding's send/expect (or BLE) steps.
    Script,
    /// Reading memory over a memory link (outcome `read` or `refused`).
    ReadMemory,
    /// Listing the device's USB descriptors over a usb link (outcome `present`).
    ListUsb,
    /// Scanning for the device over a ble link, connecting unpaired, listing its GATT table and
    /// reading what it lets anyone read (outcome `surveyed`).
    SurveyBle,
    /// Switching the device's supply off and on over a power link (outcome `cycled`).
    PowerCycle,
}

impl ActionKind {
    /// The link kind a binding of such an action must use, when it is not a script.
    pub fn link_kind(self) -> Option<&'static str> {
        match self {
            ActionKind::Script => None,
            ActionKind::ReadMemory => Some("memory"),
            ActionKind::ListUsb => Some("usb"),
            ActionKind::SurveyBle => Some("ble"),
            ActionKind::PowerCycle => Some("power"),
        }
    }
}

impl ActionSpec {
    pub fn is_refusal(&self, outcome: &str) -> bool {
        self.refusals.contains(&outcome)
    }

    pub fn is_lockout(&self, outcome: &str) -> bool {
        self.lockouts.contains(&outcome)
    }
}

pub fn action(name: &str) -> Option<&'static ActionSpec> {
    ACTIONS.iter().find(|a| a.name == name)
}

pub fn action_names() -> String {
    ACTIONS
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_outcome_classes_are_outcomes() {
        for (i, a) in ACTIONS.iter().enumerate() {
            assert!(
                ACTIONS[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
            for o in a.refusals.iter().chain(a.lockouts) {
                assert!(a.outcomes.contains(o), "{}: {o}", a.name);
            }
        }
    }
}
