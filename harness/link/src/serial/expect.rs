//! Choosing the winning alternative in the received text, and what `expect` returns.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use regex::{Captures, Regex};

/// A successful `expect`. Text fields are decoded lossily and have registered secrets masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Name of the alternative that matched.
    pub name: String,
    /// Named capture groups that took part in the match.
    pub captures: BTreeMap<String, String>,
    /// Unconsumed text before the match.
    pub before: String,
    pub matched: String,
    /// Time spent in this `expect`.
    pub elapsed: Duration,
}

/// Why an `expect` gave up. `tail` is the end of the unconsumed output (about 200 characters),
/// secrets masked and control bytes escaped.
#[derive(Debug, thiserror::Error)]
pub enum ExpectError {
    #[error("timed out after {waited:?} waiting for {expected}; last output: \"{tail}\"")]
    Timeout {
        waited: Duration,
        expected: String,
        tail: String,
    },
    #[error("the device closed the link while waiting for {expected}; last output: \"{tail}\"")]
    Closed { expected: String, tail: String },
    #[error("interrupted while waiting for {expected}")]
    Cancelled { expected: String },
    #[error("serial I/O failed during expect: {0}")]
    Io(#[from] io::Error),
}

/// "name /pattern/, ..." for error messages.
pub(crate) fn describe(alts: &[(&str, &Regex)]) -> String {
    if alts.is_empty() {
        return "nothing (no alternatives)".to_string();
    }
    let parts: Vec<String> = alts
        .iter()
        .map(|(name, re)| format!("{name} /{}/", re.as_str()))
        .collect();
    parts.join(" or ")
}

/// The alternative whose (leftmost) match ends earliest; ties go to the one listed first.
pub(crate) fn earliest<'t>(
    text: &'t str,
    alts: &[(&str, &Regex)],
) -> Option<(usize, Captures<'t>)> {
    let mut best: Option<(usize, Captures<'t>)> = None;
    for (i, (_, re)) in alts.iter().enumerate() {
        let Some(caps) = re.captures(text) else {
            continue;
        };
        let end = caps.get(0).map_or(usize::MAX, |m| m.end());
        let better = best
            .as_ref()
            .is_none_or(|(_, b)| end < b.get(0).map_or(usize::MAX, |m| m.end()));
        if better {
            best = Some((i, caps));
        }
    }
    best
}

/// Named groups that took part in the match.
pub(crate) fn named_captures(re: &Regex, caps: &Captures<'_>) -> BTreeMap<String, String> {
    re.capture_names()
        .flatten()
        .filter_map(|n| {
            caps.name(n)
                .map(|m| (n.to_string(), m.as_str().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Regex {
        Regex::new(p).unwrap()
    }

    #[test]
    fn earliest_end_wins_and_ties_go_first() {
        let (login, shell, prompt) = (re("login: "), re(r"\$ "), re(r"[#$] "));
        let alts = [("login", &login), ("shell", &shell), ("prompt", &prompt)];
        let (i, _) = earliest("boot\r\n$ login: ", &alts).unwrap();
        assert_eq!(i, 1, "shell ends first, and is listed before prompt");
        let (i, _) = earliest("login: $ ", &alts).unwrap();
        assert_eq!(i, 0);
        assert!(earliest("nothing", &alts).is_none());
    }

    #[test]
    fn earliest_end_not_earliest_start() {
        let (long, short) = (re(r"a.*z"), re("b"));
        let alts = [("long", &long), ("short", &short)];
        assert_eq!(earliest("a b z", &alts).unwrap().0, 1);
    }

    #[test]
    fn named_groups_only_when_present() {
        let r = re(r"ver (?P<major>\d+)(\.(?P<minor>\d+))?");
        let caps = r.captures("ver 3 ").unwrap();
        let got = named_captures(&r, &caps);
        assert_eq!(got.len(), 1);
        assert_eq!(got["major"], "3");
    }

    #[test]
    fn describes_alternatives() {
        let r = re("login: ");
        assert_eq!(describe(&[("login", &r)]), "login /login: /");
    }
}
