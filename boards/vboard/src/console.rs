//! The serial console state machine: bytes in, bytes out, no I/O of its own.
//!
//! The event loop feeds it host bytes, calls [`Console::tick`] when
//! [`Console::next_deadline_ms`] passes or the update agent queues an event,
//! writes [`Console::take_output`] to the UART, persists the state whenever
//! [`Console::take_dirty`] says so, and restarts it from flash when
//! [`Console::take_reboot`] says so. The update and privacy agents are reached through their links.

use std::collections::VecDeque;

use crate::auth::{Gate, LoginCounters, RateLimitPolicy, remaining_secs};
use crate::ble::{DeviceFacts, SharedFacts};
use crate::clock::Clock;
use crate::cloud::CloudView;
use crate::flash::FlashState;
use crate::line::{Edit, LineEditor};
use crate::privacy::{self, NoticePolicy, PrivacyLink};
use crate::update::{Request, Snapshot, UpdateLink};
use crate::{ADMIN_USER, MODEL, SUPPORT_END};

pub(crate) const LOGIN_PROMPT: &str = "login: ";
pub(crate) const SHELL_PROMPT: &str = "vrb$ ";
/// Bytes typed while an answer is being delayed are kept up to this many,
/// as a UART FIFO plus driver buffer would; the rest is dropped.
const MAX_QUEUED: usize = 4096;

/// Where the console is in its dialogue.
#[derive(Debug)]
pub(crate) enum Mode {
    Login,
    Password {
        user: Vec<u8>,
    },
    Shell,
    PasswdCurrent,
    PasswdNew {
        current: Vec<u8>,
    },
    PasswdRetype {
        current: Vec<u8>,
        new: Vec<u8>,
    },
    /// Waiting (at most until `until_ms`) for the update agent's answer to request `id`.
    UpdateWait {
        id: u64,
        until_ms: u64,
        what: Wait,
    },
    /// `erase` asked for confirmation: the next line decides.
    EraseConfirm,
    /// The `withdrawal-harder` defect asked to confirm a withdrawal: the next line decides.
    WithdrawConfirm,
    /// Waiting (at most until `until_ms`) for the privacy agent's answer to request `id`.
    PrivacyWait {
        id: u64,
        until_ms: u64,
        what: PrivacyWait,
    },
}

/// What a [`Mode::PrivacyWait`] waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrivacyWait {
    Pair,
    /// The erase notices; `expected` names everyone asked to be told.
    Erase {
        expected: Vec<String>,
    },
}

/// What an [`Mode::UpdateWait`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    Check,
    Install,
}

impl Mode {
    fn echoes(&self) -> bool {
        matches!(
            self,
            Mode::Login | Mode::Shell | Mode::EraseConfirm | Mode::WithdrawConfirm
        )
    }

    fn prompt(&self) -> &'static str {
        match self {
            Mode::Login => LOGIN_PROMPT,
            Mode::Password { .. } => "Password: ",
            Mode::Shell => SHELL_PROMPT,
            Mode::PasswdCurrent => "Current password: ",
            Mode::PasswdNew { .. } => "New password: ",
            Mode::PasswdRetype { .. } => "Retype new password: ",
            Mode::UpdateWait { .. }
            | Mode::EraseConfirm
            | Mode::WithdrawConfirm
            | Mode::PrivacyWait { .. } => "",
        }
    }

    /// Until when an agent is being waited for, if one is.
    fn wait_deadline(&self) -> Option<u64> {
        match self {
            Mode::UpdateWait { until_ms, .. } | Mode::PrivacyWait { until_ms, .. } => {
                Some(*until_ms)
            }
            _ => None,
        }
    }

    fn logged_in(&self) -> bool {
        !matches!(self, Mode::Login | Mode::Password { .. })
    }
}

/// An answer held back (the failure delay); input waits in the queue meanwhile.
struct Deferred {
    until_ms: u64,
    output: String,
}

pub struct Console<C: Clock> {
    pub(crate) state: FlashState,
    pub(crate) policy: RateLimitPolicy,
    pub(crate) clock: C,
    pub(crate) mode: Mode,
    pub(crate) out: Vec<u8>,
    pub(crate) dirty: bool,
    pub(crate) cloud: CloudView,
    /// The model designation the UI shows (the label's, unless a defect says otherwise).
    pub(crate) model: &'static str,
    /// The `lockout-bypass` defect: the lockout refuses only wrong passwords.
    lockout_bypass: bool,
    /// The update agent's end, when the board has one.
    pub(crate) update: Option<UpdateLink>,
    /// The issue banner states the support period (not under `no-support-period`).
    support_period: bool,
    /// Set by `reboot` and by an install: the loop restarts the console from flash.
    pub(crate) reboot: bool,
    /// The id of the next request to an agent.
    pub(crate) next_request: u64,
    /// The privacy agent's end, when the board has one.
    pub(crate) privacy: Option<PrivacyLink>,
    /// The `erase-keeps-user-data` defect.
    pub(crate) erase_keeps_profile: bool,
    /// The `erase-skips-third-parties` defect.
    pub(crate) erase_skips_third_parties: bool,
    /// The `withdrawal-harder` defect: withdrawing consent needs a confirmation.
    pub(crate) withdrawal_needs_confirmation: bool,
    /// Who privacy notices go to (the owner only under `notice-to-owner-only`).
    pub(crate) notices: NoticePolicy,
    /// The `export-leaks-other-user` defect.
    pub(crate) export_leaks_others: bool,
    /// The `ignores-app-consent` defect: decisions made in the companion app are never adopted.
    pub(crate) ignores_app_consent: bool,
    /// The `privacy-needs-login` defect: `privacy` at the login prompt is taken as a user name.
    privacy_needs_login: bool,
    /// The `consent-record-unstamped` defect: consent decisions are stored without when they were made.
    pub(crate) unstamped_consents: bool,
    /// The `erase-keeps-presence-name` defect: the cloud session keeps the last owner name it saw.
    presence_keeps_name: bool,
    /// The `erase-keeps-wifi-history` defect: joined networks are listed in the clear, past erases.
    pub(crate) keeps_wifi_history: bool,
    /// What the BLE radio shows of the unit, when the board has one.
    ble: Option<SharedFacts>,
    line: LineEditor,
    deferred: Option<Deferred>,
    queued: VecDeque<u8>,
}

impl<C: Clock> Console<C> {
    pub fn new(state: FlashState, policy: RateLimitPolicy, clock: C) -> Self {
        Self {
            state,
            policy,
            clock,
            mode: Mode::Login,
            out: Vec::new(),
            dirty: false,
            cloud: CloudView::off(),
            model: MODEL,
            lockout_bypass: false,
            update: None,
            support_period: true,
            reboot: false,
            next_request: 1,
            privacy: None,
            erase_keeps_profile: false,
            erase_skips_third_parties: false,
            withdrawal_needs_confirmation: false,
            notices: NoticePolicy::default(),
            export_leaks_others: false,
            ignores_app_consent: false,
            privacy_needs_login: false,
            unstamped_consents: false,
            presence_keeps_name: false,
            keeps_wifi_history: false,
            ble: None,
            line: LineEditor::default(),
            deferred: None,
            queued: VecDeque::new(),
        }
    }

    /// Lets the `cloud` and `notices` commands show the cloud link (off until attached).
    pub fn attach_cloud(&mut self, view: CloudView) {
        self.cloud = view;
    }

    /// Show another model designation in the UI than the one on the label.
    pub fn show_model(&mut self, model: &'static str) {
        self.model = model;
    }

    /// The `lockout-bypass` defect: while locked out, the right password is still accepted (the
    /// lockout is consulted only once the password has been found wrong), so a lockout an attacker
    /// who holds the password walks through. Wrong passwords are answered "locked" as usual.
    pub fn bypass_lockout_for_the_right_password(&mut self) {
        self.lockout_bypass = true;
    }

    /// Lets the `update` commands reach the update agent (none until attached).
    pub fn attach_update(&mut self, link: UpdateLink) {
        self.update = Some(link);
        self.publish_update();
    }

    /// The `no-support-period` defect: the issue banner does not say until when updates come.
    pub fn hide_support_period(&mut self) {
        self.support_period = false;
    }

    /// Lets the privacy commands reach the cloud and the analytics run (neither until attached).
    pub fn attach_privacy(&mut self, link: PrivacyLink) {
        self.privacy = Some(link);
        self.publish_privacy();
    }

    /// The `erase-keeps-user-data` defect: an erase leaves the personal data in flash.
    pub fn keep_user_data_on_erase(&mut self) {
        self.erase_keeps_profile = true;
    }

    /// The `withdrawal-harder` defect: withdrawing consent takes one more answer than giving it.
    pub fn confirm_withdrawals(&mut self) {
        self.withdrawal_needs_confirmation = true;
    }

    /// The `erase-skips-third-parties` defect: an erase tells only the manufacturer's cloud.
    pub fn skip_third_parties_on_erase(&mut self) {
        self.erase_skips_third_parties = true;
    }

    /// The `notice-to-owner-only` defect: household members get no privacy or change notices.
    pub fn notify_owner_only(&mut self) {
        self.notices.owner_only = true;
    }

    /// The `export-leaks-other-user` defect: an export holds every other paired user's entry too.
    pub fn leak_other_users_in_export(&mut self) {
        self.export_leaks_others = true;
    }

    /// The `ignores-app-consent` defect: only decisions made on the console count.
    pub fn ignore_app_consent(&mut self) {
        self.ignores_app_consent = true;
    }

    /// The `privacy-needs-login` defect: the privacy summary is shown only to a logged-in user.
    pub fn require_login_for_privacy(&mut self) {
        self.privacy_needs_login = true;
    }

    /// The `consent-record-unstamped` defect: a consent decision is kept, but not when it was made.
    pub fn store_consents_unstamped(&mut self) {
        self.unstamped_consents = true;
    }

    /// The `erase-keeps-presence-name` defect: presence reports go on carrying the erased owner's
    /// name (the cloud session keeps its own copy, which the erase forgets to clear).
    pub fn keep_presence_name(&mut self) {
        self.presence_keeps_name = true;
    }

    /// The `erase-keeps-wifi-history` defect: the networks the device joined are kept in a list in the
    /// clear that the erase function forgets.
    pub fn keep_wifi_history(&mut self) {
        self.keeps_wifi_history = true;
    }

    /// Keeps the BLE radio's view of the unit (serial, firmware, owner's name) current.
    pub fn attach_ble(&mut self, facts: SharedFacts) {
        self.ble = Some(facts);
        self.publish_privacy();
    }

    /// Prints the boot banner and the first login prompt.
    pub fn boot(&mut self) {
        let banner = format!(
            "\r\n{} virtual reference board, firmware {}\r\n\r\n",
            self.model, self.state.update.running.version
        );
        self.emit(&banner);
        self.login_prompt();
    }

    /// Starts again as after power-on, from `state` as read back from flash.
    pub fn restart(&mut self, state: FlashState) {
        self.state = state;
        self.mode = Mode::Login;
        self.line = LineEditor::default();
        self.deferred = None;
        self.queued.clear();
        self.reboot = false;
        self.dirty = false;
        if let Some(link) = &self.update
            && !link.request(Request::Booted)
        {
            tracing::warn!("the update agent did not take the boot notification");
        }
        self.boot();
        self.publish_update();
        self.publish_privacy();
    }

    /// Whether a restart was asked for (by `reboot` or an install) since the last call.
    pub fn take_reboot(&mut self) -> bool {
        std::mem::take(&mut self.reboot)
    }

    /// Handles bytes received from the host.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.tick();
        for &b in bytes {
            if self.holding_input() {
                if self.queued.len() < MAX_QUEUED {
                    self.queued.push_back(b);
                }
            } else {
                self.byte(b);
            }
        }
        self.publish_update();
        self.publish_privacy();
    }

    /// Applies the update agent's events, releases a delayed answer or an update answer once due,
    /// then processes input typed meanwhile.
    pub fn tick(&mut self) {
        self.take_update_events();
        self.take_privacy_events();
        let now = self.clock.now_ms();
        if self.deferred.as_ref().is_some_and(|d| now >= d.until_ms)
            && let Some(d) = self.deferred.take()
        {
            self.emit(&d.output);
        }
        self.expire_update_wait(now);
        self.expire_privacy_wait(now);
        self.drain_queued();
        self.publish_update();
        self.publish_privacy();
    }

    /// When [`Console::tick`] next needs calling, if ever (besides when an agent wakes it).
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let wait = self.mode.wait_deadline();
        let deferred = self.deferred.as_ref().map(|d| d.until_ms);
        match (deferred, wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Input waits while an answer is held back, an agent is being waited for, or a restart is
    /// due (a rebooting device drops what was typed).
    fn holding_input(&self) -> bool {
        self.deferred.is_some() || self.mode.wait_deadline().is_some() || self.reboot
    }

    fn drain_queued(&mut self) {
        while !self.holding_input()
            && let Some(b) = self.queued.pop_front()
        {
            self.byte(b);
        }
    }

    /// Tells the update agent what it must know: the update state and whether a user is logged in.
    fn publish_update(&self) {
        if let Some(link) = &self.update {
            link.publish(Snapshot {
                update: self.state.update.clone(),
                session: self.mode.logged_in(),
            });
        }
    }

    /// Tells the privacy agent the owner and their analytics decision; no owner while an erase is
    /// under way, so nothing more is sent about users who are being erased. Also tells the BLE radio
    /// the unit's facts, the owner's name among them.
    pub(crate) fn publish_privacy(&self) {
        if let Some(facts) = &self.ble {
            facts.set(&DeviceFacts::of(&self.state));
        }
        // The cloud session's copy of the owner's name, for presence reports; the
        // `erase-keeps-presence-name` defect never lets it go.
        let name = self.state.privacy.profile.name.as_deref();
        if name.is_some() || !self.presence_keeps_name {
            self.cloud.set_owner_name(name);
        }
        let Some(link) = &self.privacy else { return };
        let mut snapshot = privacy::Snapshot::of(&self.state.privacy);
        if self.erasing() {
            snapshot.owner = None;
        }
        link.publish(snapshot);
    }

    /// Whether an erase waits for its notices (the users are as good as gone).
    pub(crate) fn erasing(&self) -> bool {
        matches!(
            self.mode,
            Mode::PrivacyWait {
                what: PrivacyWait::Erase { .. },
                ..
            }
        )
    }

    /// The issue banner (unless the `no-support-period` defect hides it) and the login prompt.
    pub(crate) fn login_prompt(&mut self) {
        if self.support_period {
            let line = format!("{} security updates until {SUPPORT_END}\r\n", self.model);
            self.emit(&line);
        }
        self.set_mode(Mode::Login);
    }

    /// Bytes to send to the host.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Whether the state changed since the last call (and must be persisted).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn state(&self) -> &FlashState {
        &self.state
    }

    pub(crate) fn emit(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// Emits `output` after `delay_ms`, holding back input meanwhile.
    pub(crate) fn answer_after(&mut self, delay_ms: u64, output: String) {
        if delay_ms == 0 {
            self.emit(&output);
        } else {
            let until_ms = self.clock.now_ms().saturating_add(delay_ms);
            self.deferred = Some(Deferred { until_ms, output });
        }
    }

    pub(crate) fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        let prompt = self.mode.prompt();
        self.emit(prompt);
    }

    fn byte(&mut self, b: u8) {
        let echo = self.mode.echoes();
        match self.line.push(b) {
            Edit::None => {}
            Edit::Added(b) if echo => self.out.push(b),
            Edit::Added(_) => {}
            Edit::Erased if echo => self.emit("\x08 \x08"),
            Edit::Erased => {}
            Edit::Enter(line) => {
                if echo {
                    self.emit("\r\n");
                }
                self.enter(line);
            }
            Edit::TooLong => {
                tracing::debug!("input line too long, discarded");
                self.emit("\r\nerror: line too long\r\n");
                let prompt = self.mode.prompt();
                self.emit(prompt);
            }
            Edit::Interrupt => {
                self.emit("^C\r\n");
                let back = if self.mode.logged_in() {
                    Mode::Shell
                } else {
                    Mode::Login
                };
                self.set_mode(back);
            }
        }
    }

    fn enter(&mut self, line: Vec<u8>) {
        match std::mem::replace(&mut self.mode, Mode::Login) {
            Mode::Login if line.is_empty() => self.login_prompt(),
            Mode::Login if self.privacy_without_login(&line) => {
                tracing::info!("privacy information shown at the login prompt");
                self.show_privacy();
                self.set_mode(Mode::Login);
            }
            Mode::Login => self.set_mode(Mode::Password { user: line }),
            Mode::Password { user } => self.attempt_login(&user, &line),
            Mode::Shell => self.run_command(&line),
            Mode::PasswdCurrent => {
                self.emit("\r\n");
                self.set_mode(Mode::PasswdNew { current: line });
            }
            Mode::PasswdNew { current } => {
                self.emit("\r\n");
                self.set_mode(Mode::PasswdRetype { current, new: line });
            }
            Mode::PasswdRetype { current, new } => {
                self.emit("\r\n");
                self.finish_passwd(&current, &new, &line);
            }
            Mode::EraseConfirm => self.confirm_erase(&line),
            Mode::WithdrawConfirm => self.confirm_withdrawal(&line),
            // Input is queued while waiting; restore the mode if a line slips through.
            wait @ (Mode::UpdateWait { .. } | Mode::PrivacyWait { .. }) => self.mode = wait,
        }
    }

    /// Whether `user`, typed at the login prompt, asks for the privacy information: anyone may read
    /// it, account or not (unless the `privacy-needs-login` defect makes it a user name).
    fn privacy_without_login(&self, user: &[u8]) -> bool {
        !self.privacy_needs_login && user.trim_ascii() == b"privacy"
    }

    fn attempt_login(&mut self, user: &[u8], password: &[u8]) {
        let now = self.clock.now_ms();
        let before = self.state.login.clone();
        let gate = self.policy.gate(&mut self.state.login, now);
        if let Gate::Locked { remaining_ms } = gate
            && !self.lockout_bypass
        {
            self.refuse_locked(remaining_ms, &before);
            return;
        }
        // Always hash, so an unknown user costs the same time as a wrong password.
        let matches = self.state.admin_password.verify(password);
        let known = user == ADMIN_USER.as_bytes();
        if let Gate::Locked { remaining_ms } = gate {
            if !(matches && known) {
                self.refuse_locked(remaining_ms, &before);
                return;
            }
            tracing::warn!(
                remaining_ms,
                "lockout bypassed: right password accepted while locked out"
            );
        }
        if matches && known {
            self.policy.record_success(&mut self.state.login);
            self.dirty |= self.state.login != before;
            tracing::info!("login succeeded for admin");
            self.emit(&format!("\r\nWelcome, {ADMIN_USER}\r\n"));
            self.set_mode(Mode::Shell);
        } else {
            // Recorded (and persisted by the loop) before the delay, so cutting
            // power during the delay does not erase the attempt.
            let delay = self.policy.record_failure(&mut self.state.login, now);
            self.dirty |= self.state.login != before;
            tracing::warn!(
                known_user = known,
                failures = self.state.login.failures,
                locked = self.state.login.locked_until_ms != 0,
                "login failed"
            );
            self.mode = Mode::Login;
            self.answer_after(delay, format!("\r\nLogin incorrect\r\n\r\n{LOGIN_PROMPT}"));
        }
    }

    /// Answers an attempt made while locked out, without checking its password.
    fn refuse_locked(&mut self, remaining_ms: u64, before: &LoginCounters) {
        self.dirty |= self.state.login != *before;
        tracing::warn!(remaining_ms, "login refused: locked out");
        self.emit(&format!(
            "\r\nToo many failed attempts, try again in {} s\r\n\r\n",
            remaining_secs(remaining_ms)
        ));
        self.set_mode(Mode::Login);
    }
}
