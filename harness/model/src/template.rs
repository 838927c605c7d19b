//! `{name}` interpolation used in profiles and scenarios. `{{` and `}}` stand for literal braces.
//! A template is generic over its variable type: profiles use plain names (`String`), scenarios a typed
//! grammar ([`crate::var::Var`]) parsed once, when the file is loaded. Names are resolved by the
//! caller; a resolved value may be secret, which taints the rendered text.

use std::fmt;

/// A variable type a template can hold: parsed from the text between the braces.
pub trait VarName: Sized {
    fn parse_var(name: &str) -> Result<Self, String>;
}

impl VarName for String {
    fn parse_var(name: &str) -> Result<Self, String> {
        Ok(name.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part<V> {
    Lit(String),
    Var(V),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template<V = String> {
    source: String,
    parts: Vec<Part<V>>,
}

/// A rendered value. `secret` is set if any secret went into it, so links can mask it in evidence.
#[derive(Clone, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    pub secret: bool,
}

impl Value {
    pub fn plain(text: impl Into<String>) -> Self {
        Value {
            text: text.into(),
            secret: false,
        }
    }
    pub fn secret(text: impl Into<String>) -> Self {
        Value {
            text: text.into(),
            secret: true,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            f.write_str("Value(‹secret›)")
        } else {
            write!(f, "Value({:?})", self.text)
        }
    }
}

impl<V: VarName> Template<V> {
    pub fn parse(source: &str) -> Result<Template<V>, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => return Err(format!("unclosed '{{' in {source:?}")),
                            Some(c) => name.push(c),
                        }
                    }
                    let name = name.trim().to_string();
                    if name.is_empty() {
                        return Err(format!("empty '{{}}' in {source:?}"));
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(V::parse_var(&name)?));
                }
                '}' => {
                    return Err(format!(
                        "unmatched '}}' in {source:?} (write '}}}}' for a literal brace)"
                    ));
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }
}

impl<V> Template<V> {
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables used, in order.
    pub fn vars(&self) -> impl Iterator<Item = &V> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Lit(_) => None,
        })
    }

    pub fn render<E>(&self, mut resolve: impl FnMut(&V) -> Result<Value, E>) -> Result<Value, E> {
        let mut out = Value::plain(String::new());
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.text.push_str(s),
                Part::Var(name) => {
                    let v = resolve(name)?;
                    out.text.push_str(&v.text);
                    out.secret |= v.secret;
                }
            }
        }
        Ok(out)
    }
}

impl<'de, V: VarName> serde::Deserialize<'de> for Template<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Template::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::ptr_arg)] // the resolver's signature: it receives the template's variable type
    fn env(name: &String) -> Result<Value, String> {
        match name.as_str() {
            "user" => Ok(Value::plain("admin")),
            "pw" => Ok(Value::secret("hunter2")),
            other => Err(format!("unknown {other}")),
        }
    }

    #[test]
    fn renders_and_taints_secrets() {
        let t: Template = Template::parse("{user}:{pw}\r").unwrap();
        let v = t.render(env).unwrap();
        assert_eq!(v.text, "admin:hunter2\r");
        assert!(v.secret);
        assert!(!format!("{v:?}").contains("hunter2"));
        let plain = Template::<String>::parse("{{x}} {user}")
            .unwrap()
            .render(env)
            .unwrap();
        assert_eq!(plain.text, "{x} admin");
        assert!(!plain.secret);
    }

    #[test]
    fn rejects_bad_braces_and_unknown_names() {
        assert!(Template::<String>::parse("{open").is_err());
        assert!(Template::<String>::parse("close}").is_err());
        assert!(Template::<String>::parse("{}").is_err());
        assert_eq!(
            Template::<String>::parse("{nope}")
                .unwrap()
                .render(env)
                .unwrap_err(),
            "unknown nope"
        );
    }
}
