//! `passwords-patternless`: the default passwords of the board's units (from their labels, surface
//! `surface`) are unique and show no pattern across the fleet: no duplicates, no counter, no shared
//! prefix or suffix, none built from its unit's serial or the model name, none a couple of edits from
//! another, each as strong as `min_score` on zxcvbn (EN 303 645 5.1-1, 5.1-2; PSTI-PW-1, PW-2a, PW-2d).
//! The analysis is [`super::password_pattern`]; no password or part of one is ever shown. Fewer than
//! `min_units` readable passwords prove nothing: INCONCLUSIVE.

use hilt_model::Verdict;
use serde::Deserialize;

use super::password_pattern::{Policy, UnitPassword, analyze};
use super::{Check, Evidence, Judgement, Kind, Params};

pub const KIND: Kind = Kind {
    name: "passwords-patternless",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordsPatternless {
    surface: String,
    #[serde(default = "three")]
    min_units: usize,
    /// zxcvbn score, 0 to 4.
    #[serde(default = "three_u8")]
    min_score: u8,
    #[serde(default = "eight")]
    min_length: usize,
}

fn three() -> usize {
    3
}

fn three_u8() -> u8 {
    3
}

fn eight() -> usize {
    8
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: PasswordsPatternless = p.get()?;
    if c.min_units < 2 {
        return Err("min_units must be at least 2: patterns show across units".into());
    }
    if c.min_score > 4 {
        return Err(format!(
            "min_score {} is no zxcvbn score (0 to 4)",
            c.min_score
        ));
    }
    Ok(Box::new(c))
}

impl Check for PasswordsPatternless {
    fn evaluate(&self, ev: &Evidence) -> Judgement {
        let bench = ev.scope.bench;
        let profile = bench.profile();
        let mut read = Vec::new();
        let mut missing = Vec::new();
        for (i, unit) in profile.units.iter().enumerate() {
            match bench.credential(i, &self.surface, "password") {
                Ok(v) => read.push((unit.serial.clone(), v.text)),
                Err(e) => missing.push(format!("unit {}: {e}", i + 1)),
            }
        }
        if read.len() < self.min_units {
            return (
                Verdict::Inconclusive,
                format!(
                    "missing evidence: {} unit password(s) readable, {} needed{}",
                    read.len(),
                    self.min_units,
                    match missing.first() {
                        Some(why) => format!(" ({why})"),
                        None => String::new(),
                    }
                ),
            );
        }
        let units: Vec<UnitPassword> = read
            .iter()
            .map(|(serial, password)| UnitPassword {
                serial,
                mac: None,
                password,
            })
            .collect();
        let policy = Policy {
            min_length: self.min_length,
            min_score: self.min_score,
            model: profile.identity.model.clone(),
        };
        let findings = analyze(&units, &policy);
        if findings.is_empty() {
            return (
                Verdict::Pass,
                format!(
                    "{} units' {} passwords: all different, no counter, no common prefix or suffix, none from its serial or the model, none within two edits of another, each of zxcvbn score {} or more",
                    units.len(),
                    self.surface,
                    self.min_score
                ),
            );
        }
        let shown: Vec<String> = findings.iter().map(ToString::to_string).collect();
        (
            Verdict::Fail,
            format!(
                "{} finding(s) over {} units: {}",
                shown.len(),
                units.len(),
                shown.join("; ")
            ),
        )
    }
}
