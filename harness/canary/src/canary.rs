//! A planted secret and its label; the value stays out of every `Debug`.

use std::fmt;

use crate::Error;

/// Shortest value accepted, in bytes: shorter needles hit by chance in a large dump.
pub const MIN_VALUE_LEN: usize = 4;

/// A planted value. `Debug` prints `"***"`; there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for planting it on the device. Never put it in evidence.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A secret value planted through the device's UI, named by a label that is safe to report.
#[derive(Clone, PartialEq, Eq)]
pub struct Canary {
    label: String,
    value: Secret,
}

impl Canary {
    /// Rejects empty values, values shorter than [`MIN_VALUE_LEN`] bytes, and labels that would
    /// reveal the value.
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Result<Canary, Error> {
        let label = label.into();
        let value = value.into();
        if value.is_empty() {
            return Err(Error::EmptyValue { label });
        }
        if value.len() < MIN_VALUE_LEN {
            return Err(Error::TooShort {
                label,
                len: value.len(),
                min: MIN_VALUE_LEN,
            });
        }
        if label.contains(&value) {
            return Err(Error::LabelContainsValue);
        }
        Ok(Canary {
            label,
            value: Secret(value),
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn value(&self) -> &Secret {
        &self.value
    }
}

impl fmt::Debug for Canary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Canary")
            .field("label", &self.label)
            .field("value", &self.value)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let c = Canary::new("wifi", "hunter2hunter2").unwrap();
        let shown = format!("{c:?} {:?} {c:#?}", c.value());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            format!("{c:?}"),
            r#"Canary { label: "wifi", value: "***" }"#
        );
    }

    #[test]
    fn short_and_empty_values_are_rejected() {
        assert!(matches!(
            Canary::new("pin", ""),
            Err(Error::EmptyValue { .. })
        ));
        let err = Canary::new("pin", "123").unwrap_err();
        assert!(
            matches!(err, Error::TooShort { len: 3, min: 4, .. }),
            "{err:?}"
        );
        assert!(!err.to_string().contains("123"));
        assert!(Canary::new("pin", "1234").is_ok());
        // Four bytes, not four chars: "éé" is 4 bytes and is accepted; "é1" is 3 and is not.
        assert!(Canary::new("pin", "éé").is_ok());
        assert!(matches!(
            Canary::new("pin", "é1"),
            Err(Error::TooShort { len: 3, .. })
        ));
    }

    #[test]
    fn a_label_that_contains_the_value_is_rejected() {
        let err = Canary::new("token abcd1234", "abcd1234").unwrap_err();
        assert!(matches!(err, Error::LabelContainsValue));
        assert!(!format!("{err} {err:?}").contains("abcd1234"));
    }
}
