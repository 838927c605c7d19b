//! Resolving scenario variables against a board session: fixture rows, unit credentials, IXIT values.

use hilt_model::scenario::Number;
use hilt_model::template::{Template, Value};
use std::collections::BTreeMap;

use super::Bench;

/// The variables in force for one iteration of a step.
pub struct Scope<'a> {
    pub bench: &'a dyn Bench,
    pub row: Option<&'a BTreeMap<String, String>>,
    pub iteration: usize,
}

impl Scope<'_> {
    pub fn resolve(&self, name: &str) -> Result<Value, String> {
        if let Some(col) = name.strip_prefix("row.") {
            let row = self.row.ok_or("{row.*} used outside a for_each step")?;
            return row
                .get(col)
                .map(|v| Value::plain(v.clone()))
                .ok_or_else(|| format!("the fixture has no column {col:?}"));
        }
        if let Some(path) = name.strip_prefix("ixit:") {
            return ixit(self.bench, path).map(Value::plain);
        }
        if let Some(rest) = name.strip_prefix("cred.") {
            let (surface, field) = rest
                .split_once('.')
                .ok_or_else(|| format!("{{{name}}}: use cred.SURFACE.username|password"))?;
            return self.bench.credential(surface, field);
        }
        if let Some(n) = name.strip_prefix("random:") {
            let n: usize = n
                .parse()
                .map_err(|_| format!("{{{name}}}: length is not a number"))?;
            return random_text(n).map(Value::plain);
        }
        match name {
            "iteration" => Ok(Value::plain(self.iteration.to_string())),
            "unit.serial" => Ok(Value::plain(self.bench.unit().serial.clone())),
            _ => Err(format!("unknown variable {{{name}}}")),
        }
    }

    pub fn render(&self, t: &Template) -> Result<Value, String> {
        t.render(|n| self.resolve(n))
    }

    pub fn number(&self, n: &Number) -> Result<u64, String> {
        match n {
            Number::Literal(v) => Ok(*v),
            Number::Ref(t) => {
                let v = self.render(t)?;
                v.text.trim().parse().map_err(|_| {
                    format!("{:?} is not a whole number (from {:?})", v.text, t.source())
                })
            }
        }
    }
}

fn ixit(bench: &dyn Bench, path: &str) -> Result<String, String> {
    let v = bench
        .profile()
        .ixit
        .lookup(path)
        .ok_or_else(|| format!("the IXIT does not declare {path:?}"))?;
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// A random alphanumeric string (wrong guesses that no device can have as its password by design).
fn random_text(n: usize) -> Result<String, String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}
