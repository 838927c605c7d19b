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
//! when = "shell"          # only if the last expect matched `shell`
//! send = "exit\r"
//! ```

use regex::Regex;
use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::ops::Range;

use super::link::Link;
use crate::error::{LoadError, Source};
use crate::template::Template;
use crate::vocabulary;

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
    /// Run only if the most recent expect matched this alternative.
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
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawExpect {
    One(String),
    Named(BTreeMap<String, String>),
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
        if !links.contains_key(&self.link) {
            return Err(src.err(
                span,
                format!(
                    "bindings.{action}: link {:?} is not declared under [links]",
                    self.link
                ),
            ));
        }
        let mut script = Vec::new();
        let mut alternatives_seen: Vec<String> = Vec::new();
        let mut has_outcome = false;
        for (i, raw) in self.steps.into_iter().enumerate() {
            let span = raw.span();
            let at = format!("bindings.{action}.steps[{i}]");
            let raw = raw.into_inner();
            let kinds = [
                raw.send.is_some(),
                raw.expect.is_some(),
                raw.sleep_ms.is_some(),
                raw.drain_ms.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                return Err(src.err(
                    span,
                    format!("{at}: give exactly one of send, expect, sleep_ms, drain_ms"),
                ));
            }
            if let Some(w) = &raw.when
                && !alternatives_seen.contains(w)
            {
                return Err(src.err(
                    span,
                    format!("{at}: `when = {w:?}` names no alternative of an earlier expect"),
                ));
            }
            if (raw.outcome || raw.timeout_ms.is_some()) && raw.expect.is_none() {
                return Err(src.err(
                    span,
                    format!("{at}: `outcome` and `timeout_ms` belong to an expect step"),
                ));
            }
            let kind = if let Some(t) = raw.send {
                for v in t.vars() {
                    if !spec.args.contains(&v) {
                        return Err(src.err(
                            span,
                            format!(
                                "{at}: {{{v}}} is not an argument of action {action} (it has: {})",
                                spec.args.join(", ")
                            ),
                        ));
                    }
                }
                StepKind::Send(t)
            } else if let Some(e) = raw.expect {
                let pairs = match e {
                    RawExpect::One(p) => vec![("match".to_string(), p)],
                    RawExpect::Named(m) => m.into_iter().collect(),
                };
                if pairs.is_empty() {
                    return Err(src.err(span, format!("{at}: expect needs at least one pattern")));
                }
                let mut alternatives = Vec::new();
                for (name, pattern) in pairs {
                    let re = Regex::new(&pattern).map_err(|e| {
                        src.err(
                            span.clone(),
                            format!("{at}: expect.{name}: invalid regex: {e}"),
                        )
                    })?;
                    for group in re.capture_names().flatten() {
                        if !spec.captures.contains(&group) {
                            return Err(src.err(span.clone(), format!("{at}: capture group {group:?} is not a value action {action} reports (it reports: {})", spec.captures.join(", "))));
                        }
                    }
                    if raw.outcome && !spec.outcomes.contains(&name.as_str()) {
                        return Err(src.err(span.clone(), format!("{at}: {name:?} is not an outcome of action {action} (outcomes: {})", spec.outcomes.join(", "))));
                    }
                    alternatives_seen.push(name.clone());
                    alternatives.push((name, re));
                }
                has_outcome |= raw.outcome;
                StepKind::Expect(ExpectSpec {
                    alternatives,
                    timeout_ms: raw.timeout_ms,
                    outcome: raw.outcome,
                })
            } else if let Some(ms) = raw.sleep_ms {
                StepKind::SleepMs(ms)
            } else {
                StepKind::DrainMs(raw.drain_ms.unwrap_or_default())
            };
            script.push(ScriptStep {
                when: raw.when,
                kind,
            });
        }
        if !spec.outcomes.is_empty() && !has_outcome {
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
