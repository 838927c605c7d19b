//! The scenario variable grammar, parsed once when a scenario is loaded (the profile's own templates
//! use plain names). What a name may be:
//!
//! | written | meaning |
//! |---|---|
//! | `{row.COLUMN}` | the current row of a `for_each` step |
//! | `{iteration}` | the current iteration, from 0 |
//! | `{unit.serial}` / `{unit.N.serial}` | the unit under test's serial / the N-th `[[unit]]`'s (from 1) |
//! | `{cred.SURFACE.username\|password}` | the unit under test's credential (the password is secret) |
//! | `{unit.N.cred.SURFACE.username\|password}` | the N-th unit's credential |
//! | `{ixit:SHEET/ENTRY/FIELD[/KEY]}` | a value the IXIT declares |
//! | `{random:N}` | N random alphanumerics, new at each use (1 ≤ N ≤ 256) |
//! | `{var.NAME}` | a case variable from `[vars]`, generated once per case |
//! | `{step.ID.NAME}` | what an earlier step's last attempt captured as NAME |
//! | `{account.NAME.id\|token}` | a test account from `[accounts]`, made in the mock cloud when the case starts (the token is secret) |

use std::fmt;

use crate::template::VarName;

/// Which unit of the board a variable is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitRef {
    /// The unit under test (the first `[[unit]]`).
    UnderTest,
    /// The N-th `[[unit]]`, counting from 1.
    Nth(usize),
}

impl UnitRef {
    /// Index into the profile's units.
    pub fn index(self) -> usize {
        match self {
            UnitRef::UnderTest => 0,
            UnitRef::Nth(n) => n - 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredField {
    Username,
    Password,
}

/// What of a test account a variable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountField {
    Id,
    /// The bearer token: a secret.
    Token,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    Row(String),
    Iteration,
    UnitSerial(UnitRef),
    Cred {
        unit: UnitRef,
        surface: String,
        field: CredField,
    },
    Ixit(String),
    Random(usize),
    Case(String),
    Capture {
        step: String,
        name: String,
    },
    Account {
        name: String,
        field: AccountField,
    },
}

const KNOWN: &str = "row.COLUMN, iteration, unit.serial, unit.N.serial, cred.SURFACE.username|password, unit.N.cred.SURFACE.username|password, ixit:SHEET/ENTRY/FIELD[/KEY], random:N, var.NAME, step.ID.NAME, account.NAME.id|token";

impl VarName for Var {
    fn parse_var(name: &str) -> Result<Self, String> {
        parse(name).ok_or_else(|| format!("unknown variable {{{name}}} (known: {KNOWN})"))
    }
}

fn ident(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    ok.then(|| s.to_string())
}

fn parse(name: &str) -> Option<Var> {
    if let Some(path) = name.strip_prefix("ixit:") {
        return (!path.is_empty()).then(|| Var::Ixit(path.to_string()));
    }
    if let Some(n) = name.strip_prefix("random:") {
        return n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=256).contains(n))
            .map(Var::Random);
    }
    if let Some(col) = name.strip_prefix("row.") {
        return (!col.is_empty()).then(|| Var::Row(col.to_string()));
    }
    if let Some(v) = name.strip_prefix("var.") {
        return ident(v).map(Var::Case);
    }
    if let Some(rest) = name.strip_prefix("step.") {
        let (step, capture) = rest.rsplit_once('.')?;
        return Some(Var::Capture {
            step: ident(step)?,
            name: ident(capture)?,
        });
    }
    if let Some(rest) = name.strip_prefix("cred.") {
        return cred(UnitRef::UnderTest, rest);
    }
    if let Some(rest) = name.strip_prefix("account.") {
        let (account, field) = rest.rsplit_once('.')?;
        let field = match field {
            "id" => AccountField::Id,
            "token" => AccountField::Token,
            _ => return None,
        };
        return Some(Var::Account {
            name: ident(account)?,
            field,
        });
    }
    if name == "iteration" {
        return Some(Var::Iteration);
    }
    if name == "unit.serial" {
        return Some(Var::UnitSerial(UnitRef::UnderTest));
    }
    let rest = name.strip_prefix("unit.")?;
    let (n, rest) = rest.split_once('.')?;
    let unit = UnitRef::Nth(n.parse::<usize>().ok().filter(|n| *n >= 1)?);
    match rest {
        "serial" => Some(Var::UnitSerial(unit)),
        _ => cred(unit, rest.strip_prefix("cred.")?),
    }
}

fn cred(unit: UnitRef, rest: &str) -> Option<Var> {
    let (surface, field) = rest.split_once('.')?;
    let field = match field {
        "username" => CredField::Username,
        "password" => CredField::Password,
        _ => return None,
    };
    Some(Var::Cred {
        unit,
        surface: ident(surface)?,
        field,
    })
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = |u: &UnitRef| match u {
            UnitRef::UnderTest => String::new(),
            UnitRef::Nth(n) => format!("unit.{n}."),
        };
        match self {
            Var::Row(c) => write!(f, "{{row.{c}}}"),
            Var::Iteration => f.write_str("{iteration}"),
            Var::UnitSerial(UnitRef::UnderTest) => f.write_str("{unit.serial}"),
            Var::UnitSerial(u) => write!(f, "{{{}serial}}", unit(u)),
            Var::Cred {
                unit: u,
                surface,
                field,
            } => {
                let field = match field {
                    CredField::Username => "username",
                    CredField::Password => "password",
                };
                write!(f, "{{{}cred.{surface}.{field}}}", unit(u))
            }
            Var::Ixit(p) => write!(f, "{{ixit:{p}}}"),
            Var::Random(n) => write!(f, "{{random:{n}}}"),
            Var::Case(n) => write!(f, "{{var.{n}}}"),
            Var::Capture { step, name } => write!(f, "{{step.{step}.{name}}}"),
            Var::Account { name, field } => {
                let field = match field {
                    AccountField::Id => "id",
                    AccountField::Token => "token",
                };
                write!(f, "{{account.{name}.{field}}}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_parses_each_form_and_prints_it_back() {
        for s in [
            "row.username",
            "iteration",
            "unit.serial",
            "unit.2.serial",
            "cred.console.password",
            "unit.3.cred.app.username",
            "ixit:1-AuthMech/console/Brute Force Prevention/lockout_ms",
            "random:16",
            "var.canary",
            "step.read-identity.model",
            "account.owner.id",
            "account.member-2.token",
        ] {
            let v = Var::parse_var(s).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(v.to_string(), format!("{{{s}}}"));
        }
        assert_eq!(
            Var::parse_var("unit.2.cred.console.password").unwrap(),
            Var::Cred {
                unit: UnitRef::Nth(2),
                surface: "console".into(),
                field: CredField::Password
            }
        );
    }

    #[test]
    fn anything_else_is_an_error_naming_the_forms() {
        for s in [
            "nope",
            "random:0",
            "random:999",
            "unit.0.serial",
            "unit.x.serial",
            "cred.console.pin",
            "step.only",
            "var.",
            "row.",
            "account.owner",
            "account.owner.password",
        ] {
            let e = Var::parse_var(s).unwrap_err();
            assert!(
                e.contains(&format!("{{{s}}}")) && e.contains("known:"),
                "{e}"
            );
        }
    }
}
