//! The console's side of updates: the `update`, `autoupdate` and `notices` commands, the wait for
//! the update agent's answer, and what the agent reports (notices, an installed update).

use crate::clock::Clock;
use crate::console::{Console, Mode, Wait};
use crate::update::{Event, Request, SlotInfo};

/// How long `update check` or `update install` waits for the agent.
pub const UPDATE_WAIT_MS: u64 = 15_000;
/// How long `autoupdate postpone` puts automatic installs off.
pub const POSTPONE_MS: u64 = 24 * 60 * 60 * 1000;
const NOT_CONFIGURED: &str = "update: no update service configured\r\n";

impl<C: Clock> Console<C> {
    /// `update check|install|status`; true when the console now waits for the agent's answer.
    pub(crate) fn update_command(&mut self, arg: Option<&str>) -> bool {
        if self.update.is_none() {
            self.emit(NOT_CONFIGURED);
            return false;
        }
        match arg {
            Some("check") => self.ask_agent(Wait::Check),
            Some("install") => self.ask_agent(Wait::Install),
            Some("status") => {
                let line = self.update_status();
                self.emit(&line);
                false
            }
            _ => {
                self.emit("usage: update check|install|status\r\n");
                false
            }
        }
    }

    /// `update: running=... security_version=... slot=... auto=...`.
    fn update_status(&self) -> String {
        let u = &self.state.update;
        format!(
            "update: running={} security_version={} slot={} auto={}\r\n",
            u.running.version,
            u.running.security_version,
            u.active.letter(),
            u.auto_mode(self.clock.now_ms()).word()
        )
    }

    fn ask_agent(&mut self, what: Wait) -> bool {
        let id = self.next_request;
        self.next_request += 1;
        let request = match what {
            Wait::Check => Request::Check { id },
            Wait::Install => Request::Install { id },
        };
        if !self.update.as_ref().is_some_and(|l| l.request(request)) {
            tracing::warn!("the update agent did not take the request");
            self.emit(&format!("{} the update agent is busy\r\n", failed(what)));
            return false;
        }
        let until_ms = self.clock.now_ms().saturating_add(UPDATE_WAIT_MS);
        self.mode = Mode::UpdateWait { id, until_ms, what };
        true
    }

    /// Gives up on an agent that did not answer in time.
    pub(crate) fn expire_update_wait(&mut self, now_ms: u64) {
        if let Mode::UpdateWait { until_ms, what, .. } = self.mode
            && now_ms >= until_ms
        {
            tracing::warn!("no answer from the update agent");
            self.emit(&format!("{} timed out\r\n", failed(what)));
            self.set_mode(Mode::Shell);
        }
    }

    /// Applies what the update agent queued.
    pub(crate) fn take_update_events(&mut self) {
        let Some(link) = &self.update else { return };
        for event in link.take_events() {
            match event {
                Event::Reply { id, line } => self.agent_answered(id, &line),
                Event::Print(text) => self.emit(&text),
                Event::Notice(text) => self.keep_notice(text),
                Event::Installed { info, notice } => self.installed(info, notice),
            }
        }
    }

    fn agent_answered(&mut self, id: u64, line: &str) {
        match self.mode {
            Mode::UpdateWait { id: waiting, .. } if waiting == id => {
                self.emit(&format!("{line}\r\n"));
                self.set_mode(Mode::Shell);
            }
            _ => tracing::debug!(id, "late update answer dropped"),
        }
    }

    fn keep_notice(&mut self, text: String) {
        let now = self.clock.now_ms();
        self.state.update.push_notice(now, text);
        self.dirty = true;
    }

    /// The agent wrote `info` to the standby slot: switch to it and restart.
    fn installed(&mut self, info: SlotInfo, notice: Option<String>) {
        tracing::info!(version = %info.version, "update installed, rebooting");
        self.state.update.switch_to(info);
        self.dirty = true;
        if let Some(text) = notice {
            self.keep_notice(text);
        }
        self.emit("\r\nrebooting...\r\n");
        self.reboot = true;
    }

    /// `autoupdate [on|off|postpone]`: shows the setting, after changing it if asked.
    pub(crate) fn autoupdate_command(&mut self, arg: Option<&str>) {
        let now = self.clock.now_ms();
        let before = self.state.update.clone();
        let u = &mut self.state.update;
        match arg {
            None => {}
            Some("on") => {
                u.auto = true;
                u.postponed_until_unix_ms = None;
            }
            Some("off") => u.auto = false,
            Some("postpone") => u.postponed_until_unix_ms = Some(now.saturating_add(POSTPONE_MS)),
            Some(_) => {
                self.emit("usage: autoupdate [on|off|postpone]\r\n");
                return;
            }
        }
        self.dirty |= self.state.update != before;
        let word = self.state.update.auto_mode(now).word();
        self.emit(&format!("autoupdate: {word}\r\n"));
    }

    /// Cloud and update notices merged, newest first, then `end of notices`.
    pub(crate) fn show_notices(&mut self) {
        // Each source newest first, then a stable sort by time: ties keep that order.
        let mut all: Vec<(u64, String)> = self.cloud.timed_notices().into_iter().rev().collect();
        let device = self.state.update.notices.iter().rev();
        all.extend(device.map(|n| (n.at_unix_ms, n.text.clone())));
        all.sort_by_key(|n| std::cmp::Reverse(n.0));
        for (i, (_, text)) in all.iter().enumerate() {
            self.emit(&format!("notice {}: {text}\r\n", i + 1));
        }
        self.emit("end of notices\r\n");
    }
}

fn failed(what: Wait) -> &'static str {
    match what {
        Wait::Check => "update: check failed:",
        Wait::Install => "update: install failed:",
    }
}
