//! Bindings: how one abstract action is carried out on a board, as a send/expect script over a link.
//!
//! ```toml
//! [bindings.login]
//! link = "console"
//! [[bindings.login.steps]]
//! send = "\r"
//! [[bindings.login.steps]]
//! expect = { login = "login: $", shell = "\\$ $" }
//! [[bindings.login.steps]]
//! when = "shell"          # a block: only if that expect matched `shell`, run all of these
//! steps = [{ send = "exit\r" }, { expect = "login: $" }]
//! [[bindings.login.steps]]
//! send = "{username}\r"
//! ```
//!
//! # Conditional steps
//!
//! `when = "NAME"` is checked against the alternative the most recent expect matched, *before* the
//! step that carries it:
//!
//! - On a **block** (`when` with `steps = [...]`) it is checked once, and covers every step of the
//!   block, however the block's own expects change the last match. Blocks may nest; a nested block's
//!   `when` is checked against the last match at its place inside the enclosing block. Inside a block,
//!   a plain step may not carry `when` (use a nested block).
//! - On a **plain step** it covers that one step only. This is the older form, kept for profiles that
//!   condition a single step (or a send followed by one expect). Its trap: a conditional expect
//!   replaces the last match, so further steps with the same `when` after it would be checked against
//!   *that* expect and silently skipped. Such a profile is refused at load with a located error that
//!   shows the block to write instead; the same holds after a conditional block that expects.
//!
//! Every `when` must name an alternative of an expect earlier in the script.
//!
//! # Over BLE
//!
//! On a ble link, `ble = { read = "0x2a19" }` (or `write` with a `value`, or `subscribe`) carries out
//! one GATT operation; its answer is a line (`read 0x2a19: 64 "d"`, `… refused ATT-ERROR`,
//! `notify 0x2a19: …`) the following expect steps match, with the same timeouts, outcomes and
//! captures as on a console.

use regex::Regex;
use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::ops::Range;

use super::link::Link;
use crate::error::{LoadError, Source};
use crate::template::Template;
use crate::vocabulary::{self, ActionSpec};

#[derive(Debug, Clone)]
pub struct Binding {
    pub action: String,
    pub link: String,
    pub timeout_ms: u64,
    pub script: Script,
}

pub type Script = Vec<ScriptStep>;

#[derive(Debug, Clone)]
pub struct ScriptStep {
    /// Run only if the most recent expect before this step matched this alternative. Always set on a
    /// [`StepKind::Block`], where it is checked once for the whole block.
    pub when: Option<String>,
    pub kind: StepKind,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    Send(Template),
    Expect(ExpectSpec),
    SleepMs(u64),
    /// Read and discard until the link is quiet for this long.
    DrainMs(u64),
    /// Steps run together when the block's `when` holds.
    Block(Script),
}

impl StepKind {
    /// Whether running this step can change the last matched expect.
    pub fn expects(&self) -> bool {
        match self {
            StepKind::Expect(_) => true,
            StepKind::Block(steps) => steps.iter().any(|s| s.kind.expects()),
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExpectSpec {
    /// Named alternatives; a single pattern is named `match`.
    pub alternatives: Vec<(String, Regex)>,
    pub timeout_ms: Option<u64>,
    /// The matched alternative's name is the action's outcome.
    pub outcome: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBinding {
    link: String,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    /// None of its own on a memory link: the link reads its regions.
    #[serde(default)]
    steps: Vec<Spanned<RawStep>>,
}

fn default_timeout() -> u64 {
    5_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    send: Option<Template>,
    expect: Option<RawExpect>,
    sleep_ms: Option<u64>,
    drain_ms: Option<u64>,
    when: Option<String>,
    timeout_ms: Option<u64>,
    #[serde(default)]
    outcome: bool,
    /// A block: these steps, all under this step's `when`.
    steps: Option<Vec<Spanned<RawStep>>>,
    /// A GATT operation on a ble link (see [`RawBleOp`]).
    ble: Option<RawBleOp>,
}

/// `ble = { read = "0x2a19" }`, `{ write = "UUID", value = "{ssid}" }` (`with_response = false` for
/// a write command), `{ subscribe = "UUID" }`: one GATT operation, sent to the link as a command
/// line whose answer (`read 0x2a19: 64 "d"`, `write UUID: refused insufficient-authentication`,
/// `notify UUID: …`) the following expect steps match, like any console's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBleOp {
    read: Option<String>,
    write: Option<String>,
    value: Option<Template>,
    #[serde(default = "yes")]
    with_response: bool,
    subscribe: Option<String>,
}

fn yes() -> bool {
    true
}

impl RawBleOp {
    /// The command line it sends, or what is wrong with it.
    fn command(self) -> Result<Template, String> {
        let ops = [&self.read, &self.write, &self.subscribe];
        if ops.iter().filter(|o| o.is_some()).count() != 1 {
            return Err("a ble step takes exactly one of read, write, subscribe".into());
        }
        if self.value.is_some() != self.write.is_some() {
            return Err("`value` goes with `write`, and `write` needs one".into());
        }
        if !self.with_response && self.write.is_none() {
            return Err("`with_response` goes with `write`".into());
        }
        let uuid = self
            .read
            .as_ref()
            .or(self.write.as_ref())
            .or(self.subscribe.as_ref());
        let uuid = uuid.map(String::as_str).unwrap_or_default();
        if !super::ble::is_uuid(uuid) {
            return Err(format!(
                "{uuid:?} is not a BLE UUID (e.g. \"0x2a19\" or a full UUID)"
            ));
        }
        let line = match (&self.read, &self.value, self.with_response) {
            (Some(_), _, _) => format!("read {uuid}\n"),
            (None, Some(v), true) => format!("write {uuid} {}\n", v.source()),
            (None, Some(v), false) => format!("write-cmd {uuid} {}\n", v.source()),
            (None, None, _) => format!("subscribe {uuid}\n"),
        };
        Template::parse(&line)
    }
}

/// One pattern, or named alternatives in the order written: when two match at the same place the
/// one written first wins, so the order is kept (a map would sort them by name).
enum RawExpect {
    One(String),
    Named(Vec<(String, String)>),
}

impl<'de> Deserialize<'de> for RawExpect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawExpect;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a regex, or a table of named regexes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawExpect, E> {
                Ok(RawExpect::One(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<RawExpect, A::Error> {
                let mut pairs: Vec<(String, String)> = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, String>()? {
                    if pairs.iter().any(|(n, _)| *n == k) {
                        return Err(serde::de::Error::custom(format!(
                            "alternative {k:?} given twice"
                        )));
                    }
                    pairs.push((k, v));
                }
                Ok(RawExpect::Named(pairs))
            }
        }
        d.deserialize_any(V)
    }
}

impl RawBinding {
    pub(super) fn validate(
        self,
        src: &Source,
        span: Range<usize>,
        action: &str,
        links: &BTreeMap<String, Link>,
    ) -> Result<Binding, LoadError> {
        let Some(spec) = vocabulary::action(action) else {
            return Err(src.err(
                span,
                format!(
                    "bindings.{action}: unknown action; the vocabulary has {}",
                    vocabulary::action_names()
                ),
            ));
        };
        let Some(link) = links.get(&self.link) else {
            return Err(src.err(
                span,
                format!(
                    "bindings.{action}: link {:?} is not declared under [links]",
                    self.link
                ),
            ));
        };
        match (spec.kind.link_kind(), link.kind()) {
            (Some(wanted), kind) if wanted == kind => {
                if !self.steps.is_empty() {
                    return Err(src.err(span, format!("bindings.{action}: a binding of {action} on {kind} link {:?} takes no steps: the link carries it out", self.link)));
                }
                return Ok(Binding {
                    action: action.to_string(),
                    link: self.link,
                    timeout_ms: self.timeout_ms,
                    script: Vec::new(),
                });
            }
            (Some(wanted), _) => {
                return Err(src.err(span, format!("bindings.{action}: action {action} is carried out by a link of kind \"{wanted}\"; bind it to one")));
            }
            (None, kind @ ("memory" | "usb" | "cloud" | "power")) => {
                return Err(src.err(span, format!("bindings.{action}: {kind} link {:?} cannot run a script; bind {action} to a serial or ble link", self.link)));
            }
            (None, _) => {}
        }
        if self.steps.is_empty() {
            return Err(src.err(
                span,
                format!("bindings.{action}: give the script's `steps`"),
            ));
        }
        let mut v = Validator {
            src,
            action,
            spec,
            on_ble: matches!(link, Link::Ble(_)),
            alternatives_seen: Vec::new(),
            has_outcome: false,
        };
        let script = v.script(self.steps, &format!("bindings.{action}.steps"), false)?;
        if !spec.outcomes.is_empty() && !v.has_outcome {
            return Err(src.err(span, format!("bindings.{action}: action {action} reports an outcome ({}); mark the deciding expect step with `outcome = true`", spec.outcomes.join(", "))));
        }
        Ok(Binding {
            action: action.to_string(),
            link: self.link,
            timeout_ms: self.timeout_ms,
            script,
        })
    }
}

/// Checks a binding's script in order, knowing the expect alternatives seen so far.
struct Validator<'a> {
    src: &'a Source<'a>,
    action: &'a str,
    spec: &'static ActionSpec,
    /// Whether the binding's link is a ble link (the only one `ble` steps run on).
    on_ble: bool,
    alternatives_seen: Vec<String>,
    has_outcome: bool,
}

/// A conditional step that expects, after which the same `when` would be checked against its match.
struct Pending {
    when: String,
    /// Where it is, said as "the conditional expect bindings.login.steps[3]" or "… block …".
    what: String,
}

impl Validator<'_> {
    /// One level of steps (the binding's, or a block's), at `path` (`bindings.login.steps`).
    fn script(
        &mut self,
        steps: Vec<Spanned<RawStep>>,
        path: &str,
        in_block: bool,
    ) -> Result<Script, LoadError> {
        let mut script = Vec::new();
        let mut pending: Option<Pending> = None;
        for (i, raw) in steps.into_iter().enumerate() {
            let span = raw.span();
            let at = format!("{path}[{i}]");
            let raw = raw.into_inner();
            if let (Some(w), Some(p)) = (&raw.when, &pending)
                && *w == p.when
            {
                return Err(self.src.err(span, trap_message(&at, p)));
            }
            let step = self.step(raw, span, &at, in_block)?;
            match (&step.when, &step.kind) {
                (None, StepKind::Expect(_)) => pending = None,
                (Some(w), kind) if kind.expects() => {
                    let what = match kind {
                        StepKind::Block(_) => format!("an expect in the conditional block {at}"),
                        _ => format!("the conditional expect {at}"),
                    };
                    pending = Some(Pending {
                        when: w.clone(),
                        what,
                    });
                }
                _ => {}
            }
            script.push(step);
        }
        Ok(script)
    }

    fn step(
        &mut self,
        mut raw: RawStep,
        span: Range<usize>,
        at: &str,
        in_block: bool,
    ) -> Result<ScriptStep, LoadError> {
        if let Some(w) = &raw.when
            && !self.alternatives_seen.contains(w)
        {
            return Err(self.src.err(
                span,
                format!("{at}: `when = {w:?}` names no alternative of an earlier expect"),
            ));
        }
        if raw.steps.is_some() {
            return self.block(raw, span, at);
        }
        let when = raw.when.take();
        if in_block && let Some(w) = &when {
            return Err(self.src.err(
                span,
                format!(
                    "{at}: inside a block, a step takes no `when` of its own; nest a block instead: {}",
                    block_syntax(w)
                ),
            ));
        }
        let kind = self.plain(raw, span, at)?;
        Ok(ScriptStep { when, kind })
    }

    fn block(
        &mut self,
        raw: RawStep,
        span: Range<usize>,
        at: &str,
    ) -> Result<ScriptStep, LoadError> {
        let Some(when) = raw.when else {
            return Err(self.src.err(
                span,
                format!("{at}: a block (`steps = [...]`) needs the `when` it runs under"),
            ));
        };
        let is_plain = raw.send.is_some()
            || raw.ble.is_some()
            || raw.expect.is_some()
            || raw.sleep_ms.is_some()
            || raw.drain_ms.is_some()
            || raw.timeout_ms.is_some()
            || raw.outcome;
        if is_plain {
            return Err(self.src.err(
                span,
                format!("{at}: a block takes only `when` and `steps`; put send, expect, sleep_ms, drain_ms, timeout_ms and outcome on the steps inside it"),
            ));
        }
        let steps = raw.steps.unwrap_or_default();
        if steps.is_empty() {
            return Err(self
                .src
                .err(span, format!("{at}: a block needs at least one step")));
        }
        let steps = self.script(steps, &format!("{at}.steps"), true)?;
        Ok(ScriptStep {
            when: Some(when),
            kind: StepKind::Block(steps),
        })
    }

    /// A send, expect, sleep or drain step.
    fn plain(&mut self, raw: RawStep, span: Range<usize>, at: &str) -> Result<StepKind, LoadError> {
        let kinds = [
            raw.send.is_some(),
            raw.ble.is_some(),
            raw.expect.is_some(),
            raw.sleep_ms.is_some(),
            raw.drain_ms.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(self.src.err(
                span,
                format!("{at}: give exactly one of send, ble, expect, sleep_ms, drain_ms (or `when` with `steps` for a block)"),
            ));
        }
        if (raw.outcome || raw.timeout_ms.is_some()) && raw.expect.is_none() {
            return Err(self.src.err(
                span,
                format!("{at}: `outcome` and `timeout_ms` belong to an expect step"),
            ));
        }
        let RawStep {
            send,
            ble,
            expect,
            sleep_ms,
            drain_ms,
            timeout_ms,
            outcome,
            ..
        } = raw;
        if let Some(op) = ble {
            if !self.on_ble {
                return Err(self
                    .src
                    .err(span, format!("{at}: a `ble` step runs only on a ble link")));
            }
            let t = op
                .command()
                .map_err(|e| self.src.err(span.clone(), format!("{at}: {e}")))?;
            self.check_send(&t, span, at)?;
            Ok(StepKind::Send(t))
        } else if let Some(t) = send {
            self.check_send(&t, span, at)?;
            Ok(StepKind::Send(t))
        } else if let Some(e) = expect {
            self.expect(e, timeout_ms, outcome, span, at)
                .map(StepKind::Expect)
        } else if let Some(ms) = sleep_ms {
            Ok(StepKind::SleepMs(ms))
        } else {
            Ok(StepKind::DrainMs(drain_ms.unwrap_or_default()))
        }
    }

    fn check_send(&self, t: &Template, span: Range<usize>, at: &str) -> Result<(), LoadError> {
        let (action, spec) = (self.action, self.spec);
        match t.vars().find(|v| !spec.args.contains(&v.as_str())) {
            None => Ok(()),
            Some(v) => Err(self.src.err(
                span,
                format!(
                    "{at}: {{{v}}} is not an argument of action {action} (it has: {})",
                    spec.args.join(", ")
                ),
            )),
        }
    }

    fn expect(
        &mut self,
        e: RawExpect,
        timeout_ms: Option<u64>,
        outcome: bool,
        span: Range<usize>,
        at: &str,
    ) -> Result<ExpectSpec, LoadError> {
        let (action, spec) = (self.action, self.spec);
        let pairs = match e {
            RawExpect::One(p) => vec![("match".to_string(), p)],
            RawExpect::Named(m) => m,
        };
        if pairs.is_empty() {
            return Err(self
                .src
                .err(span, format!("{at}: expect needs at least one pattern")));
        }
        let mut alternatives = Vec::new();
        for (name, pattern) in pairs {
            let re = Regex::new(&pattern).map_err(|e| {
                self.src.err(
                    span.clone(),
                    format!("{at}: expect.{name}: invalid regex: {e}"),
                )
            })?;
            if let Some(group) = re
                .capture_names()
                .flatten()
                .find(|g| !spec.captures.contains(g))
            {
                return Err(self.src.err(span, format!("{at}: capture group {group:?} is not a value action {action} reports (it reports: {})", spec.captures.join(", "))));
            }
            if outcome && !spec.outcomes.contains(&name.as_str()) {
                return Err(self.src.err(
                    span,
                    format!(
                        "{at}: {name:?} is not an outcome of action {action} (outcomes: {})",
                        spec.outcomes.join(", ")
                    ),
                ));
            }
            self.alternatives_seen.push(name.clone());
            alternatives.push((name, re));
        }
        self.has_outcome |= outcome;
        Ok(ExpectSpec {
            alternatives,
            timeout_ms,
            outcome,
        })
    }
}

/// The block form, as shown in errors.
fn block_syntax(when: &str) -> String {
    format!(
        "one step with `when = {when:?}` and `steps = [{{ send = \"…\" }}, {{ expect = \"…\" }}, …]`"
    )
}

fn trap_message(at: &str, p: &Pending) -> String {
    format!(
        "{at}: `when = {w:?}` is checked against the last expect before this step, which is {what}, not the expect that matched {w:?}; so this step would be skipped. To run several steps when {w:?} matched, write them as one block, whose condition is checked once: {}",
        block_syntax(&p.when),
        w = p.when,
        what = p.what,
    )
}
