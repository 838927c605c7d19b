//! Carrying out one abstract action on a board: interpret its binding script over a console.

use hilt_link::{Console, ExpectError, Port};
use hilt_model::profile::{Binding, StepKind};
use hilt_model::template::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What one action observed.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub outcome: Option<String>,
    pub captures: BTreeMap<String, String>,
    /// From the last send before the deciding answer to that answer.
    pub elapsed: Duration,
}

/// Why an action could not be carried out. Never the device's FAIL: the answer was missing or unusable.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("action {action}: the device did not answer as the binding expects: {source}")]
    NoAnswer {
        action: String,
        #[source]
        source: ExpectError,
    },
    #[error("action {action}: {source}")]
    Link {
        action: String,
        #[source]
        source: hilt_link::LinkError,
    },
    #[error("action {action}: {message}")]
    Args { action: String, message: String },
}

pub fn run_binding<P: Port>(
    console: &mut Console<P>,
    binding: &Binding,
    args: &BTreeMap<String, Value>,
) -> Result<Observation, ActionError> {
    let action = binding.action.as_str();
    for (name, v) in args {
        if v.secret && !v.text.is_empty() {
            console.add_secret(v.text.as_bytes(), name);
        }
    }
    let link_err = |source| ActionError::Link {
        action: action.to_string(),
        source,
    };
    let mut obs = Observation::default();
    let mut last_match: Option<String> = None;
    let mut last_send = Instant::now();
    for step in &binding.script {
        if let Some(w) = &step.when
            && last_match.as_deref() != Some(w.as_str())
        {
            continue;
        }
        match &step.kind {
            StepKind::Send(t) => {
                let v = t.render(|name| {
                    args.get(name).cloned().ok_or_else(|| ActionError::Args {
                        action: action.to_string(),
                        message: format!("no argument {name:?}"),
                    })
                })?;
                last_send = Instant::now();
                if v.secret {
                    let label: Vec<&str> = t
                        .vars()
                        .filter(|n| args.get(*n).is_some_and(|a| a.secret))
                        .collect();
                    console
                        .send_secret(v.text.as_bytes(), &label.join("+"))
                        .map_err(link_err)?;
                } else {
                    console.send(v.text.as_bytes()).map_err(link_err)?;
                }
            }
            StepKind::Expect(spec) => {
                let alts: Vec<(&str, &regex::Regex)> = spec
                    .alternatives
                    .iter()
                    .map(|(n, r)| (n.as_str(), r))
                    .collect();
                let timeout = Duration::from_millis(spec.timeout_ms.unwrap_or(binding.timeout_ms));
                let m = console
                    .expect(&alts, timeout)
                    .map_err(|source| ActionError::NoAnswer {
                        action: action.to_string(),
                        source,
                    })?;
                obs.captures.extend(m.captures.clone());
                if spec.outcome {
                    obs.outcome = Some(m.name.clone());
                    obs.elapsed = last_send.elapsed();
                }
                last_match = Some(m.name);
            }
            StepKind::SleepMs(ms) => std::thread::sleep(Duration::from_millis(*ms)),
            StepKind::DrainMs(ms) => {
                let quiet = Duration::from_millis(*ms);
                // A babbling device must not hold the case forever: bound the settle time.
                match console.drain(quiet, quiet * 20 + Duration::from_secs(1)) {
                    Ok(()) | Err(hilt_link::LinkError::Unsettled { .. }) => {}
                    Err(e) => return Err(link_err(e)),
                }
            }
        }
    }
    Ok(obs)
}
