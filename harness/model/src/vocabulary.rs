//! The abstract vocabulary scenarios are written in. A board profile binds each action to concrete
//! steps over its links; a scenario never names a link or a prompt.

/// One abstract action and what it may observe.
#[derive(Debug)]
pub struct ActionSpec {
    pub name: &'static str,
    pub summary: &'static str,
    /// Arguments the scenario passes (all required).
    pub args: &'static [&'static str],
    /// Outcomes the binding may report; empty = the action reports none.
    pub outcomes: &'static [&'static str],
    /// Values the binding may capture (named regex groups).
    pub captures: &'static [&'static str],
}

pub const ACTIONS: &[ActionSpec] = &[
    ActionSpec {
        name: "login",
        summary: "Authenticate to the device's user interface with a username and password",
        args: &["username", "password"],
        outcomes: &["accepted", "rejected", "locked"],
        captures: &[],
    },
    ActionSpec {
        name: "logout",
        summary: "End an authenticated session and return to the unauthenticated state",
        args: &[],
        outcomes: &[],
        captures: &[],
    },
    ActionSpec {
        name: "identify",
        summary: "Read the device's model designation, serial number and firmware version from its UI",
        args: &[],
        outcomes: &[],
        captures: &["model", "serial", "firmware"],
    },
];

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
