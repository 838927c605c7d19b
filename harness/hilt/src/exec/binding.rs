//! Carrying out one abstract action on a board: interpret its binding script over a console.
//!
//! A step's `when` is checked against the alternative the most recent expect matched before that
//! step. A block's `when` is checked once, before its first step, and covers all its steps; nested
//! blocks are checked where they stand (see `hilt_model::profile` for the profile syntax).

use hilt_link::{Console, ExpectError, Port};
use hilt_model::profile::{Binding, ExpectSpec, ScriptStep, StepKind};
use hilt_model::template::{Template, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

/// What one action observed.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub outcome: Option<String>,
    pub captures: BTreeMap<String, String>,
    /// From the last send before the deciding answer to that answer.
    pub elapsed: Duration,
    /// How many `send` steps ran: the user actions the binding took.
    pub sends: u32,
}

/// Why an action could not be carried out. Never the device's FAIL: the answer was missing or unusable.
///
/// Its message includes the cause, so it has no `source()`: callers keep it as one line of text in
/// the record, and an error chain would say the cause twice.
#[derive(Debug)]
pub enum ActionError {
    NoAnswer {
        action: String,
        source: ExpectError,
    },
    Link {
        action: String,
        source: hilt_link::LinkError,
    },
    Args {
        action: String,
        message: String,
    },
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionError::NoAnswer { action, source } => write!(
                f,
                "action {action}: the device did not answer as the binding expects: {source}"
            ),
            ActionError::Link { action, source } => write!(f, "action {action}: {source}"),
            ActionError::Args { action, message } => write!(f, "action {action}: {message}"),
        }
    }
}

impl std::error::Error for ActionError {}

pub fn run_binding<P: Port>(
    console: &mut Console<P>,
    binding: &Binding,
    args: &BTreeMap<String, Value>,
) -> Result<Observation, ActionError> {
    for (name, v) in args {
        if v.secret && !v.text.is_empty() {
            console.add_secret(v.text.as_bytes(), name);
        }
    }
    let mut run = Run {
        console,
        binding,
        args,
        obs: Observation::default(),
        last_match: None,
        last_send: Instant::now(),
    };
    run.script(&binding.script)?;
    Ok(run.obs)
}

/// The longest a `drain_ms` step may take: a babbling device must not hold the case forever.
pub(super) fn drain_bound(quiet: Duration) -> Duration {
    quiet * 20 + Duration::from_secs(1)
}

/// The state of one run of a binding script.
struct Run<'a, P: Port> {
    console: &'a mut Console<P>,
    binding: &'a Binding,
    args: &'a BTreeMap<String, Value>,
    obs: Observation,
    /// The alternative the most recent expect matched.
    last_match: Option<String>,
    last_send: Instant,
}

impl<P: Port> Run<'_, P> {
    fn script(&mut self, steps: &[ScriptStep]) -> Result<(), ActionError> {
        for step in steps {
            if let Some(w) = &step.when
                && self.last_match.as_deref() != Some(w.as_str())
            {
                continue;
            }
            match &step.kind {
                StepKind::Send(t) => self.send(t)?,
                StepKind::Expect(spec) => self.expect(spec)?,
                StepKind::SleepMs(ms) => std::thread::sleep(Duration::from_millis(*ms)),
                StepKind::DrainMs(ms) => self.drain(Duration::from_millis(*ms))?,
                StepKind::Block(inner) => self.script(inner)?,
            }
        }
        Ok(())
    }

    fn action(&self) -> String {
        self.binding.action.clone()
    }

    fn link_err(&self, source: hilt_link::LinkError) -> ActionError {
        ActionError::Link {
            action: self.action(),
            source,
        }
    }

    fn send(&mut self, t: &Template) -> Result<(), ActionError> {
        let v = t.render(|name| {
            self.args
                .get(name)
                .cloned()
                .ok_or_else(|| ActionError::Args {
                    action: self.action(),
                    message: format!("no argument {name:?}"),
                })
        })?;
        self.last_send = Instant::now();
        self.obs.sends += 1;
        let sent = if v.secret {
            let label: Vec<&str> = t
                .vars()
                .filter(|n| self.args.get(*n).is_some_and(|a| a.secret))
                .map(String::as_str)
                .collect();
            self.console
                .send_secret(v.text.as_bytes(), &label.join("+"))
        } else {
            self.console.send(v.text.as_bytes())
        };
        sent.map_err(|e| self.link_err(e))
    }

    fn expect(&mut self, spec: &ExpectSpec) -> Result<(), ActionError> {
        let alts: Vec<(&str, &regex::Regex)> = spec
            .alternatives
            .iter()
            .map(|(n, r)| (n.as_str(), r))
            .collect();
        let timeout = Duration::from_millis(spec.timeout_ms.unwrap_or(self.binding.timeout_ms));
        let m = self
            .console
            .expect(&alts, timeout)
            .map_err(|source| ActionError::NoAnswer {
                action: self.action(),
                source,
            })?;
        self.obs.captures.extend(m.captures.clone());
        if spec.outcome {
            self.obs.outcome = Some(m.name.clone());
            self.obs.elapsed = self.last_send.elapsed();
        }
        self.last_match = Some(m.name);
        Ok(())
    }

    fn drain(&mut self, quiet: Duration) -> Result<(), ActionError> {
        match self.console.drain(quiet, drain_bound(quiet)) {
            Ok(()) | Err(hilt_link::LinkError::Unsettled { .. }) => Ok(()),
            Err(e) => Err(self.link_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The login binding against a scripted device that starts either at `login:` or in a shell.

    use super::*;
    use crate::fake::{FakeDevice, Reply};
    use hilt_link::ConsoleOptions;
    use hilt_model::profile::BoardProfile;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum DevState {
        Login,
        Password,
        Shell,
    }

    /// What a getty-and-shell device is doing, and every line typed at it.
    type Seen = Arc<Mutex<(DevState, Vec<String>)>>;

    /// A console that answers each complete line like a getty and a shell.
    fn device(start: DevState) -> (FakeDevice, Seen) {
        let seen: Seen = Arc::new(Mutex::new((start, Vec::new())));
        let state = seen.clone();
        let dev = FakeDevice::new(move |line: &str| {
            let mut st = state.lock().unwrap();
            st.1.push(line.to_string());
            let (next, reply) = match (st.0, line) {
                (DevState::Login, "") => (DevState::Login, "\r\nlogin: "),
                (DevState::Login, _) => (DevState::Password, "\r\nPassword: "),
                (DevState::Password, "s3cret") => (DevState::Shell, "\r\nWelcome, admin\r\n$ "),
                (DevState::Password, _) => (DevState::Login, "\r\nLogin incorrect\r\nlogin: "),
                (DevState::Shell, "exit") => (DevState::Login, "\r\nlogout\r\nlogin: "),
                (DevState::Shell, _) => (DevState::Shell, "\r\n$ "),
            };
            st.0 = next;
            Reply::say(reply)
        });
        (dev, seen)
    }

    const LOGIN_BINDING: &str = r#"
[bindings.login]
link = "console"
timeout_ms = 500
[[bindings.login.steps]]
send = "\r"
[[bindings.login.steps]]
expect = { login = 'login: $', shell = '\$ $' }
[[bindings.login.steps]]
when = "shell"
steps = [
  { send = "exit\r" },
  { expect = 'login: $' },
  { send = "\r" },
  { expect = 'login: $' },
]
[[bindings.login.steps]]
send = "{username}\r"
[[bindings.login.steps]]
expect = 'Password: $'
[[bindings.login.steps]]
send = "{password}\r"
[[bindings.login.steps]]
expect = { accepted = '\$ $', rejected = 'Login incorrect\s+login: $' }
outcome = true
"#;

    fn login_binding() -> Binding {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let vboard = std::fs::read_to_string(root.join("boards/vboard.toml")).unwrap();
        // The shipped profile with its login binding replaced by one that logs out of a shell.
        let start = vboard.find("[bindings.login]").unwrap();
        let end = vboard.find("[bindings.logout]").unwrap();
        let text = format!("{}{LOGIN_BINDING}\n{}", &vboard[..start], &vboard[end..]);
        let profile = BoardProfile::parse(Path::new("boards/x.toml"), &text).unwrap();
        profile.bindings["login"].clone()
    }

    /// Log in from `start`; the outcome, then the device's final state and the lines it was sent.
    fn login(start: DevState, password: &str) -> (Observation, DevState, Vec<String>) {
        let (dev, seen) = device(start);
        let mut console = Console::new(dev, ConsoleOptions::default());
        let args = BTreeMap::from([
            ("username".to_string(), Value::plain("admin")),
            ("password".to_string(), Value::secret(password)),
        ]);
        let obs = run_binding(&mut console, &login_binding(), &args).unwrap();
        let (state, lines) = seen.lock().unwrap().clone();
        (obs, state, lines)
    }

    #[test]
    fn logs_in_from_the_login_prompt() {
        let (obs, state, lines) = login(DevState::Login, "s3cret");
        assert_eq!(obs.outcome.as_deref(), Some("accepted"));
        assert_eq!(lines, ["", "admin", "s3cret"]);
        assert_eq!(state, DevState::Shell);
    }

    #[test]
    fn logs_out_of_a_shell_then_logs_in() {
        let (obs, state, lines) = login(DevState::Shell, "s3cret");
        assert_eq!(obs.outcome.as_deref(), Some("accepted"));
        // Every step of the block ran, not only the first send and expect.
        assert_eq!(lines, ["", "exit", "", "admin", "s3cret"]);
        assert_eq!(state, DevState::Shell);
    }

    #[test]
    fn a_wrong_password_from_a_shell_is_rejected() {
        let (obs, state, _) = login(DevState::Shell, "guess");
        assert_eq!(obs.outcome.as_deref(), Some("rejected"));
        assert_eq!(state, DevState::Login);
    }

    #[test]
    fn a_missing_answer_says_why_once() {
        let silent = FakeDevice::new(|_: &str| Reply::Silent);
        let mut console = Console::new(silent, ConsoleOptions::default());
        let mut binding = login_binding();
        binding.timeout_ms = 20;
        let err = run_binding(&mut console, &binding, &BTreeMap::new()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "action login: the device did not answer as the binding expects: timed out"
            ),
            "{msg}"
        );
        assert_eq!(msg.matches("timed out").count(), 1, "{msg}");
        assert!(std::error::Error::source(&err).is_none());
    }

    #[test]
    fn a_missing_argument_is_named() {
        let mut console = Console::new(device(DevState::Login).0, ConsoleOptions::default());
        let err = run_binding(&mut console, &login_binding(), &BTreeMap::new()).unwrap_err();
        assert_eq!(err.to_string(), "action login: no argument \"username\"");
    }
}
