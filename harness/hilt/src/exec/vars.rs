//! Resolving scenario variables ([`Var`], parsed at load) against a bench: fixture rows, the units and
//! their credentials, IXIT values, case variables and earlier steps' captures.

use hilt_model::scenario::{Number, VarTemplate};
use hilt_model::template::Value;
use hilt_model::var::{AccountField, CredField, UnitRef, Var};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::Bench;

/// What a case has made so far that later steps may refer to.
#[derive(Debug, Clone, Default)]
pub struct CaseVars {
    /// `[vars]`, generated once when the case starts.
    pub values: BTreeMap<String, Value>,
    /// (step id, capture name) → what the step's last attempt captured.
    pub captures: BTreeMap<(String, String), String>,
    /// `[accounts]` made in the mock cloud when the case started: name → (id, token).
    pub accounts: BTreeMap<String, (String, String)>,
}

impl CaseVars {
    /// Generate the scenario's case variables.
    pub fn generate(
        specs: &BTreeMap<String, hilt_model::scenario::CaseVar>,
    ) -> Result<Self, String> {
        let mut values = BTreeMap::new();
        for (name, spec) in specs {
            let text = random_text(spec.random)?;
            let v = if spec.secret {
                Value::secret(text)
            } else {
                Value::plain(text)
            };
            values.insert(name.clone(), v);
        }
        Ok(CaseVars {
            values,
            captures: BTreeMap::new(),
            accounts: BTreeMap::new(),
        })
    }
}

/// The variables in force for one iteration of a step.
pub struct Scope<'a> {
    pub bench: &'a dyn Bench,
    pub row: Option<&'a BTreeMap<String, String>>,
    pub iteration: usize,
    pub case: Arc<CaseVars>,
}

impl<'a> Scope<'a> {
    /// A scope outside any step iteration.
    pub fn new(bench: &'a dyn Bench, case: Arc<CaseVars>) -> Self {
        Scope {
            bench,
            row: None,
            iteration: 0,
            case,
        }
    }

    pub fn resolve(&self, var: &Var) -> Result<Value, String> {
        match var {
            Var::Row(col) => {
                let row = self.row.ok_or("{row.*} used outside a for_each step")?;
                row.get(col)
                    .map(|v| Value::plain(v.clone()))
                    .ok_or_else(|| format!("the fixture has no column {col:?}"))
            }
            Var::Iteration => Ok(Value::plain(self.iteration.to_string())),
            Var::UnitSerial(u) => self.unit(*u).map(|unit| Value::plain(unit.serial.clone())),
            Var::Cred {
                unit,
                surface,
                field,
            } => {
                self.unit(*unit)?;
                let field = match field {
                    CredField::Username => "username",
                    CredField::Password => "password",
                };
                self.bench.credential(unit.index(), surface, field)
            }
            Var::Ixit(path) => ixit(self.bench, path).map(Value::plain),
            Var::Random(n) => random_text(*n).map(Value::plain),
            Var::Case(name) => self
                .case
                .values
                .get(name)
                .cloned()
                .ok_or_else(|| format!("{var}: no such case variable")),
            Var::Capture { step, name } => self
                .case
                .captures
                .get(&(step.clone(), name.clone()))
                .map(|v| Value::plain(v.clone()))
                .ok_or_else(|| format!("{var}: step {step:?} captured no {name:?}")),
            Var::Account { name, field } => {
                let (id, token) = self
                    .case
                    .accounts
                    .get(name)
                    .ok_or_else(|| format!("{var}: no test account {name:?} was made"))?;
                Ok(match field {
                    AccountField::Id => Value::plain(id.clone()),
                    AccountField::Token => Value::secret(token.clone()),
                })
            }
        }
    }

    fn unit(&self, u: UnitRef) -> Result<&hilt_model::profile::Unit, String> {
        let units = &self.bench.profile().units;
        units.get(u.index()).ok_or_else(|| {
            format!(
                "the scenario addresses unit {} and the board profile declares {} [[unit]]",
                u.index() + 1,
                units.len()
            )
        })
    }

    pub fn render(&self, t: &VarTemplate) -> Result<Value, String> {
        t.render(|v| self.resolve(v))
    }

    pub fn number(&self, n: &Number) -> Result<u64, String> {
        match n {
            Number::Literal(v) => Ok(*v),
            Number::Ref(t) => self.whole(t),
            Number::Scaled(t, factor) => self
                .whole(t)?
                .checked_mul(*factor)
                .ok_or_else(|| format!("{} times {factor} is too large", t.source())),
        }
    }

    fn whole(&self, t: &VarTemplate) -> Result<u64, String> {
        let v = self.render(t)?;
        v.text.trim().parse().map_err(|_| {
            // A value rendered from a secret is never shown, not even in an error.
            let shown = if v.secret {
                "‹secret›".to_string()
            } else {
                format!("{:?}", v.text)
            };
            format!("{shown} is not a whole number (from {:?})", t.source())
        })
    }

    /// Whether `var` can be resolved before the case runs (everything but rows, captures, random
    /// values), and if so, that it resolves: the profile supplies every value the case will need.
    pub fn preflight(&self, var: &Var) -> Result<(), String> {
        match var {
            // Rows, captures and accounts exist only once the case runs.
            Var::Row(_)
            | Var::Capture { .. }
            | Var::Random(_)
            | Var::Iteration
            | Var::Account { .. } => Ok(()),
            _ => self.resolve(var).map(drop),
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
