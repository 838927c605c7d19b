//! The console's side of privacy: the `pair`, `users`, `set`, `show`, `consent`, `privacy`, `export`
//! and `erase` commands, the wait for the privacy agent's answer, what the agent reports (a pairing,
//! the erase notices, data sent to a recipient, the owner's latest consent decision in the cloud),
//! and the privacy notices users are sent (on pairing, and to every paired user when processing
//! changes).

use crate::clock::Clock;
use crate::cloud::printable;
use crate::console::{Console, Mode, PrivacyWait};
use crate::privacy::{
    CLOUD, CloudDecision, Decision, Event, PrivacyState, Psk, Purpose, Request, SUMMARY, Wifi,
    change_notice, export, privacy_notice, valid_text,
};

/// How long `pair` and `erase` wait for the privacy agent (its exchanges are bounded well below).
pub const PRIVACY_WAIT_MS: u64 = 15_000;
/// Longest failure line `pair` prints, in characters.
const MAX_FAILURE_LINE: usize = 200;
const SET_USAGE: &str = "usage: set name <text> | set email <text> | set wifi <ssid> <psk>\r\n";
const CONSENT_USAGE: &str = "usage: consent analytics [on|off|record]\r\n";
const ERASE_QUESTION: &str =
    "erase: this removes every user's data and credentials; type ERASE to confirm\r\n";
const ERASE_DONE: &str = "erase: done; user data and credentials removed\r\n";

/// A personal-data field `set` writes.
#[derive(Debug, Clone, Copy)]
enum Field {
    Name,
    Email,
}

impl<C: Clock> Console<C> {
    /// `pair <user-id>`; true when the console now waits for the privacy agent's answer.
    pub(crate) fn pair_command(&mut self, user: &str) -> bool {
        if user.is_empty() {
            self.emit("usage: pair <user-id>\r\n");
            return false;
        }
        if let Err(refusal) = self.state.privacy.may_pair(user) {
            self.emit(&pair_failed(&refusal.to_string()));
            return false;
        }
        let id = self.next_request;
        let request = Request::Pair {
            id,
            user: user.to_string(),
        };
        match &self.privacy {
            None => self.emit(&pair_failed("no cloud configured")),
            Some(link) if !link.request(request) => {
                tracing::warn!("the privacy agent did not take the pairing request");
                self.emit(&pair_failed("the privacy agent is busy"));
            }
            Some(_) => {
                self.next_request += 1;
                self.wait_for_privacy(id, PrivacyWait::Pair);
                return true;
            }
        }
        false
    }

    fn wait_for_privacy(&mut self, id: u64, what: PrivacyWait) {
        let until_ms = self.clock.now_ms().saturating_add(PRIVACY_WAIT_MS);
        self.mode = Mode::PrivacyWait { id, until_ms, what };
    }

    /// `user N: <id>` per paired user, owner first, then `end of users`.
    pub(crate) fn list_users(&mut self) {
        let users = self.state.privacy.users.iter().enumerate();
        let lines: String = users
            .map(|(i, user)| format!("user {}: {user}\r\n", i + 1))
            .collect();
        self.emit(&lines);
        self.emit("end of users\r\n");
    }

    /// `set name|email <text>` or `set wifi <ssid> <psk>`.
    pub(crate) fn set_command(&mut self, rest: &str) {
        let (field, value) = split_word(rest);
        match field {
            _ if value.is_empty() => self.emit(SET_USAGE),
            "name" => self.save_text(Field::Name, value),
            "email" => self.save_text(Field::Email, value),
            "wifi" => self.save_wifi(value),
            _ => self.emit(SET_USAGE),
        }
    }

    fn save_text(&mut self, field: Field, text: &str) {
        let word = match field {
            Field::Name => "name",
            Field::Email => "email",
        };
        if !valid_text(text) {
            self.emit(&format!("set: invalid {word}\r\n"));
            return;
        }
        let profile = &mut self.state.privacy.profile;
        let slot = match field {
            Field::Name => &mut profile.name,
            Field::Email => &mut profile.email,
        };
        *slot = Some(text.to_string());
        self.saved(word);
    }

    fn save_wifi(&mut self, value: &str) {
        let (ssid, psk) = split_word(value);
        if psk.is_empty() {
            self.emit(SET_USAGE);
            return;
        }
        if !valid_text(ssid) || !valid_text(psk) {
            self.emit("set: invalid wifi\r\n");
            return;
        }
        self.state.privacy.profile.wifi = Some(Wifi {
            ssid: ssid.to_string(),
            psk: Psk::new(psk),
        });
        if self.keeps_wifi_history {
            remember_network(&mut self.state.wifi_history, ssid);
        }
        self.saved("wifi");
    }

    fn saved(&mut self, word: &str) {
        self.dirty = true;
        tracing::info!(field = word, "personal data saved");
        self.emit(&format!("set: {word} saved\r\n"));
    }

    /// `profile: name=... email=... wifi=<ssid>` (never the PSK).
    pub(crate) fn show_profile(&mut self) {
        let line = self.state.privacy.profile.line();
        self.emit(&format!("{line}\r\n"));
    }

    /// `consent analytics [on|off]`: shows the owner's decision, after recording and reporting a
    /// new one if asked.
    pub(crate) fn consent_command(&mut self, args: &[&str]) {
        if let [p, "record"] = args {
            return self.emit_record(Purpose::parse(p));
        }
        let (purpose, setting) = match args {
            [p] => (Purpose::parse(p), None),
            [p, "on"] => (Purpose::parse(p), Some(true)),
            [p, "off"] => (Purpose::parse(p), Some(false)),
            _ => (None, None),
        };
        let Some(purpose) = purpose else {
            self.emit(CONSENT_USAGE);
            return;
        };
        if self.state.privacy.owner().is_none() {
            self.emit("consent: no user paired\r\n");
            return;
        }
        let granted_now = self.state.privacy.owner_decision(purpose) == Some(Decision::Granted);
        if setting == Some(false) && granted_now && self.withdrawal_needs_confirmation {
            self.emit(&format!(
                "consent: withdrawing stops {}; type yes to confirm\r\n",
                purpose.name()
            ));
            self.set_mode(Mode::WithdrawConfirm);
            return;
        }
        if let Some(granted) = setting {
            self.decide(purpose, granted);
        }
        self.emit_decision(purpose);
    }

    /// `consent: PURPOSE=granted|withdrawn|never`.
    fn emit_decision(&mut self, purpose: Purpose) {
        let decision = self
            .state
            .privacy
            .owner_decision(purpose)
            .unwrap_or_default();
        let line = format!("consent: {}={}\r\n", purpose.name(), decision.word());
        self.emit(&line);
    }

    /// `consent PURPOSE record`: the stored record of the owner's decision, `consent record:
    /// user=ID PURPOSE=DECISION at_ms=UNIX_MS` (EN 303 645 6-3B), the time left out when not known.
    fn emit_record(&mut self, purpose: Option<Purpose>) {
        let Some(purpose) = purpose else {
            self.emit(CONSENT_USAGE);
            return;
        };
        let privacy = &self.state.privacy;
        let Some(owner) = privacy.owner() else {
            self.emit("consent: no user paired\r\n");
            return;
        };
        let consents = privacy.consents.get(owner).cloned().unwrap_or_default();
        let mut line = format!(
            "consent record: user={owner} {}={}",
            purpose.name(),
            consents.get(purpose).word()
        );
        match consents.decided_ms(purpose) {
            0 => {}
            at => line.push_str(&format!(" at_ms={at}")),
        }
        line.push_str("\r\n");
        self.emit(&line);
    }

    /// The `withdrawal-harder` defect's confirmation: `yes` withdraws analytics consent.
    pub(crate) fn confirm_withdrawal(&mut self, answer: &[u8]) {
        let purpose = Purpose::Analytics;
        if answer.trim_ascii() == b"yes" {
            self.decide(purpose, false);
        }
        self.emit_decision(purpose);
        self.set_mode(Mode::Shell);
    }

    /// Records the owner's decision at once (it binds the device whatever the cloud hears), then
    /// has the agent report it.
    fn decide(&mut self, purpose: Purpose, granted: bool) {
        let before = self.state.privacy.clone();
        let now = if self.unstamped_consents {
            0
        } else {
            self.clock.now_ms()
        };
        let Some(decision) = self.state.privacy.decide(purpose, granted, now) else {
            return;
        };
        self.dirty |= self.state.privacy != before;
        let was_on = before.owner_decision(purpose) == Some(Decision::Granted);
        tracing::info!(
            purpose = purpose.name(),
            decision = decision.word(),
            "consent decided"
        );
        let user = self.state.privacy.owner().unwrap_or_default().to_string();
        let request = Request::ReportConsent {
            user,
            purpose,
            granted,
        };
        match &self.privacy {
            None => tracing::debug!("no cloud configured: consent decision not reported"),
            Some(link) if !link.request(request) => {
                tracing::warn!("the privacy agent is busy: consent decision not reported");
            }
            Some(_) => {}
        }
        self.announce_switch(purpose, was_on, granted);
    }

    /// Adopts `latest`, the owner's newest decision in the cloud (made in the companion app, say),
    /// when it differs from the device's and is newer (see [`crate::privacy::should_adopt`]). Stored
    /// like a decision made here, but not reported back: the cloud has it already.
    fn cloud_consent(&mut self, user: &str, purpose: Purpose, latest: CloudDecision) {
        if self.ignores_app_consent {
            tracing::debug!(
                purpose = purpose.name(),
                "consent decision in the cloud ignored"
            );
            return;
        }
        // The users are being erased: nothing more is decided or announced for them.
        if self.erasing() {
            return;
        }
        let was_on = self.state.privacy.owner_decision(purpose) == Some(Decision::Granted);
        let Some(decision) = self.state.privacy.adopt(user, purpose, latest) else {
            tracing::debug!(
                purpose = purpose.name(),
                "consent decision in the cloud not adopted"
            );
            return;
        };
        if self.unstamped_consents {
            self.state
                .privacy
                .decide(purpose, decision == Decision::Granted, 0);
        }
        self.dirty = true;
        tracing::info!(
            purpose = purpose.name(),
            decision = decision.word(),
            "consent decision adopted from the cloud"
        );
        self.announce_switch(purpose, was_on, decision == Decision::Granted);
    }

    /// Tells every paired user when `purpose` was switched on or off.
    fn announce_switch(&self, purpose: Purpose, was_on: bool, on: bool) {
        // Only a switch changes the processing: repeating "on", or "off" before any grant, does not.
        if was_on != on {
            let users = self.notices.on_change(&self.state.privacy);
            self.notify(change_notice(purpose, on), users);
        }
    }

    /// Has the agent send `text` to `users` (best effort: nobody hears of a failure but the log).
    fn notify(&self, text: String, users: Vec<String>) {
        if users.is_empty() {
            return;
        }
        let addressees = users.len();
        match &self.privacy {
            None => tracing::debug!("no cloud configured: privacy notice not sent"),
            Some(link) if !link.request(Request::Notify { text, users }) => {
                tracing::warn!("the privacy agent is busy: privacy notice not sent");
            }
            Some(_) => tracing::debug!(addressees, "privacy notice queued"),
        }
    }

    /// `privacy: <what the device processes>`, the text every user's privacy notice carries (also
    /// shown at the login prompt, to anyone who types `privacy`).
    pub(crate) fn show_privacy(&mut self) {
        self.emit(&format!("privacy: {SUMMARY}\r\n"));
    }

    /// `export <user-id>`: `export: <JSON>` with that user's data only, or `export: no such user`.
    pub(crate) fn export_command(&mut self, user: &str) {
        if user.is_empty() {
            self.emit("usage: export <user-id>\r\n");
            return;
        }
        let line = match export(&self.state.privacy, user, self.export_leaks_others) {
            Ok(json) => {
                tracing::info!(
                    leaks_others = self.export_leaks_others,
                    "user data exported"
                );
                format!("export: {json}\r\n")
            }
            Err(e) => format!("export: {e}\r\n"),
        };
        self.emit(&line);
    }

    /// `erase`: asks for confirmation; the next line decides.
    pub(crate) fn ask_erase(&mut self) {
        self.emit(ERASE_QUESTION);
        self.set_mode(Mode::EraseConfirm);
    }

    /// The answer to `erase`: `ERASE` tells every recipient of users' data, then wipes; anything
    /// else cancels.
    pub(crate) fn confirm_erase(&mut self, answer: &[u8]) {
        if answer.trim_ascii() != b"ERASE" {
            tracing::info!("erase cancelled");
            self.emit("erase: cancelled\r\n");
            self.set_mode(Mode::Shell);
            return;
        }
        tracing::info!("erase confirmed");
        let third_parties = if self.erase_skips_third_parties {
            Vec::new()
        } else {
            self.state.privacy.erasure_notices()
        };
        let mut expected: Vec<String> = third_parties.iter().map(|(r, _)| r.clone()).collect();
        expected.sort();
        expected.dedup();
        let users = self.state.privacy.users.clone();
        let Some(link) = self.privacy.clone() else {
            // No cloud link: whoever got data cannot be told now (and without users, nobody needs to be).
            if !users.is_empty() {
                expected.push(CLOUD.to_string());
            }
            self.finish_erase(&expected);
            return;
        };
        expected.push(CLOUD.to_string());
        let id = self.next_request;
        self.next_request += 1;
        // Published before the request: the analytics stop before any notice goes out.
        self.wait_for_privacy(id, PrivacyWait::Erase { expected });
        self.publish_privacy();
        let request = Request::Erase {
            id,
            third_parties,
            users,
        };
        if !link.request(request) {
            tracing::warn!("the privacy agent did not take the erase request: wiping anyway");
            self.expire_privacy_wait(u64::MAX);
        }
    }

    /// Reports whoever could not be told, wipes, and logs the user out.
    fn finish_erase(&mut self, not_told: &[String]) {
        for recipient in not_told {
            self.emit(&format!("erase: could not tell {recipient}\r\n"));
        }
        self.wipe();
        self.emit(ERASE_DONE);
        self.emit("\r\n");
        self.set_mode(Mode::Login);
    }

    /// Removes users, their data, consents and recipient record, and restores the label's password.
    fn wipe(&mut self) {
        self.state.privacy.wipe(self.erase_keeps_profile);
        if let Some(factory) = &self.state.factory_password {
            self.state.admin_password = factory.clone();
        } else {
            tracing::warn!("no factory password hash in flash: the current password stays");
        }
        self.dirty = true;
        tracing::info!(
            kept_personal_data = self.erase_keeps_profile,
            "user data erased"
        );
    }

    /// Gives up on a privacy agent that did not answer in time (an erase wipes regardless).
    pub(crate) fn expire_privacy_wait(&mut self, now_ms: u64) {
        let Mode::PrivacyWait { until_ms, .. } = self.mode else {
            return;
        };
        if now_ms < until_ms {
            return;
        }
        tracing::warn!("no answer from the privacy agent");
        match std::mem::replace(&mut self.mode, Mode::Shell) {
            Mode::PrivacyWait {
                what: PrivacyWait::Erase { expected },
                ..
            } => self.finish_erase(&expected),
            _ => {
                self.emit(&pair_failed("timed out"));
                self.set_mode(Mode::Shell);
            }
        }
    }

    /// Applies what the privacy agent queued.
    pub(crate) fn take_privacy_events(&mut self) {
        let Some(link) = &self.privacy else { return };
        for event in link.take_events() {
            match event {
                Event::Paired { id, user, result } => self.paired(id, &user, result),
                Event::Erased { id, not_told } => self.erased(id, &not_told),
                Event::Sent { user, recipient } => {
                    self.dirty |= self.state.privacy.record_sent(&user, &recipient);
                }
                Event::CloudConsent {
                    user,
                    purpose,
                    latest,
                } => self.cloud_consent(&user, purpose, latest),
            }
        }
    }

    /// The waited-for request `id`, if it is the one the console waits for (taking it out of the wait).
    fn answered(&mut self, id: u64) -> Option<PrivacyWait> {
        match &self.mode {
            Mode::PrivacyWait { id: waiting, .. } if *waiting == id => {}
            _ => {
                tracing::debug!(id, "late privacy answer dropped");
                return None;
            }
        }
        match std::mem::replace(&mut self.mode, Mode::Shell) {
            Mode::PrivacyWait { what, .. } => Some(what),
            _ => None,
        }
    }

    fn paired(&mut self, id: u64, user: &str, result: Result<(), String>) {
        if self.answered(id) != Some(PrivacyWait::Pair) {
            return;
        }
        let line = match result.and_then(|()| store(&mut self.state.privacy, user)) {
            Ok(()) => {
                self.dirty = true;
                tracing::info!(users = self.state.privacy.users.len(), "user paired");
                if let Some(users) = self.notices.on_pairing(&self.state.privacy, user) {
                    self.notify(privacy_notice(&self.state.serial), users);
                }
                format!("pair: paired with {user}\r\n")
            }
            Err(reason) => pair_failed(&reason),
        };
        self.emit(&line);
        self.set_mode(Mode::Shell);
    }

    fn erased(&mut self, id: u64, not_told: &[String]) {
        if matches!(self.answered(id), Some(PrivacyWait::Erase { .. })) {
            self.finish_erase(not_told);
        }
    }
}

fn store(privacy: &mut PrivacyState, user: &str) -> Result<(), String> {
    privacy.pair(user).map_err(|r| r.to_string())
}

/// `pair: failed: <reason>`, one printable line of at most [`MAX_FAILURE_LINE`] characters.
fn pair_failed(reason: &str) -> String {
    let prefix = "pair: failed: ";
    let room = MAX_FAILURE_LINE - prefix.len();
    format!("{prefix}{}\r\n", printable(reason.as_bytes(), room))
}

/// The first word and the rest (trimmed), split at the first space.
fn split_word(text: &str) -> (&str, &str) {
    match text.trim().split_once(' ') {
        Some((word, rest)) => (word, rest.trim()),
        None => (text.trim(), ""),
    }
}

/// Most networks the `erase-keeps-wifi-history` defect remembers.
const MAX_HISTORY: usize = 8;

/// Adds `ssid` to the joined-networks list (newest last, no repeats, the oldest dropped when full).
fn remember_network(history: &mut Vec<String>, ssid: &str) {
    history.retain(|s| s != ssid);
    history.push(ssid.to_string());
    if history.len() > MAX_HISTORY {
        history.remove(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_lines_are_one_bounded_printable_line() {
        let line = pair_failed(&format!("bad\r\nthing {}", "x".repeat(500)));
        assert!(line.starts_with("pair: failed: bad  thing x"), "{line}");
        let body = line.strip_suffix("\r\n").unwrap();
        assert_eq!(body.chars().count(), MAX_FAILURE_LINE);
        assert!(!body.contains(['\r', '\n']));
    }

    #[test]
    fn words_split_at_the_first_space() {
        assert_eq!(
            split_word(" name  Alice Example "),
            ("name", "Alice Example")
        );
        assert_eq!(split_word("name"), ("name", ""));
        assert_eq!(split_word(""), ("", ""));
    }
}
