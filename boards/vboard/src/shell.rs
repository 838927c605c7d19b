//! The logged-in shell: its commands and the `passwd` dialogue (the update and privacy commands
//! are in `shell_update` and `shell_privacy`).

use crate::auth::PasswordHash;
use crate::clock::Clock;
use crate::console::{Console, Mode, SHELL_PROMPT};
use crate::{ADMIN_USER, HW_VERSION};

/// Shortest password `passwd` accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest unknown-command name echoed back.
const MAX_SHOWN_NAME: usize = 32;

const HELP: &str = "commands:\r\n\
    \x20 help     list commands\r\n\
    \x20 info     show model, serial number and versions\r\n\
    \x20 whoami   show the logged-in user\r\n\
    \x20 passwd   change the password\r\n\
    \x20 cloud    show the cloud connection\r\n\
    \x20 notices  show notices from the cloud and about updates, newest first\r\n\
    \x20 update check|install|status\r\n\
    \x20          check for, install or show firmware updates\r\n\
    \x20 autoupdate [on|off|postpone]\r\n\
    \x20          show or set automatic updates (postpone: 24 h)\r\n\
    \x20 pair <user-id>\r\n\
    \x20          link a user account (the first is the owner)\r\n\
    \x20 users    list paired users, owner first\r\n\
    \x20 set name|email <text>, set wifi <ssid> <psk>\r\n\
    \x20          save personal data\r\n\
    \x20 show     show the saved personal data\r\n\
    \x20 consent analytics [on|off]\r\n\
    \x20          show, give or withdraw the owner's consent to usage analytics\r\n\
    \x20 privacy  show what the device processes about its users\r\n\
    \x20 export <user-id>\r\n\
    \x20          show one user's own data as JSON\r\n\
    \x20 erase    remove every user's data and credentials\r\n\
    \x20 reboot   restart the device\r\n\
    \x20 exit     log out (also: logout)\r\n";

impl<C: Clock> Console<C> {
    pub(crate) fn run_command(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let name = text.split_ascii_whitespace().next().unwrap_or("");
        // What follows the command name, for commands that take free text.
        let rest = text
            .trim_ascii_start()
            .strip_prefix(name)
            .unwrap_or("")
            .trim_ascii();
        let args: Vec<&str> = text.split_ascii_whitespace().skip(1).collect();
        match name {
            "" => {}
            "help" => self.emit(HELP),
            "info" => {
                let info = format!(
                    "model={} serial={} hw={HW_VERSION} fw={}\r\n",
                    self.model, self.state.serial, self.state.update.running.version
                );
                self.emit(&info);
            }
            "whoami" => self.emit(&format!("{ADMIN_USER}\r\n")),
            "cloud" => {
                let line = self.cloud.status_line();
                self.emit(&format!("{line}\r\n"));
            }
            "notices" => self.show_notices(),
            "update" => {
                if self.update_command(text.split_ascii_whitespace().nth(1)) {
                    return;
                }
            }
            "autoupdate" => self.autoupdate_command(text.split_ascii_whitespace().nth(1)),
            "pair" => {
                if self.pair_command(rest) {
                    return;
                }
            }
            "users" => self.list_users(),
            "set" => self.set_command(rest),
            "show" => self.show_profile(),
            "consent" => {
                self.consent_command(&args);
                // A confirmation asked for is answered on the next line, not at a prompt.
                if matches!(self.mode, Mode::WithdrawConfirm) {
                    return;
                }
            }
            "privacy" => self.show_privacy(),
            "export" => self.export_command(rest),
            "erase" => {
                self.ask_erase();
                return;
            }
            "reboot" => {
                tracing::info!("reboot requested on the console");
                self.emit("rebooting...\r\n");
                self.reboot = true;
                return;
            }
            "passwd" => {
                self.set_mode(Mode::PasswdCurrent);
                return;
            }
            "exit" | "logout" => {
                tracing::info!("logged out");
                self.emit("\r\n");
                self.set_mode(Mode::Login);
                return;
            }
            other => {
                let shown = shown_name(other);
                self.emit(&format!("unknown command{shown}\r\n"));
            }
        }
        self.set_mode(Mode::Shell);
    }

    pub(crate) fn finish_passwd(&mut self, current: &[u8], new: &[u8], retype: &[u8]) {
        // All three answers are collected before judging, so a host that sends
        // them blindly never has a password echoed back as a shell command.
        if !self.state.admin_password.verify(current) {
            tracing::warn!("passwd: wrong current password");
            self.mode = Mode::Shell;
            let delay = self.policy.failure_delay_ms;
            self.answer_after(
                delay,
                format!("error: authentication failed\r\n{SHELL_PROMPT}"),
            );
            return;
        }
        let message = if new != retype {
            "error: passwords do not match"
        } else if String::from_utf8_lossy(new).chars().count() < MIN_PASSWORD_CHARS {
            "error: password too short"
        } else {
            match PasswordHash::new(new) {
                Ok(hash) => {
                    self.state.admin_password = hash;
                    self.dirty = true;
                    tracing::info!("password changed");
                    "password updated"
                }
                Err(e) => {
                    tracing::error!(error = %e, "passwd: cannot hash");
                    "error: internal error"
                }
            }
        };
        self.emit(message);
        self.emit("\r\n");
        self.set_mode(Mode::Shell);
    }
}

/// `": name"` when the name is safe to print back (printable ASCII), else nothing.
fn shown_name(name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_graphic()) {
        format!(
            ": {}",
            name.chars().take(MAX_SHOWN_NAME).collect::<String>()
        )
    } else {
        String::new()
    }
}
