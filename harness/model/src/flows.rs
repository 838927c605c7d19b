//! Declared data flows: what the manufacturer says the device sends, to whom and why, taken from the
//! IXIT (sheets 21-PersData and 24-TelData, field "Processing Activities"). Observed flows in the mock
//! cloud's log are classified against them; an observed flow that matches none is undeclared processing.

use std::ops::Range;

use crate::error::{LoadError, Source};
use crate::flow_vocab::Protocol;
use crate::ixit::Ixit;

pub const FLOW_SHEETS: [&str; 2] = ["21-PersData", "24-TelData"];

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeclaredFlow {
    /// `SHEET/ENTRY`.
    pub name: String,
    /// `mqtt` or `http`.
    pub protocol: Protocol,
    /// An MQTT topic filter (`+`, `#`) or an HTTP path prefix; the harness matches flows against it.
    pub pattern: String,
    pub purpose: String,
    pub recipient: String,
    pub lawful_basis: String,
    pub consent: bool,
    /// For a consent-based flow, the purpose the user consents to (`consent_purpose = "analytics"`),
    /// as the device's consent settings and the scenarios' consent steps name it.
    pub consent_purpose: Option<String>,
    /// Personal-data categories the flow carries (from "Personal Data"); empty = none.
    pub categories: Vec<String>,
}

impl DeclaredFlow {
    pub fn is_personal(&self) -> bool {
        !self.categories.is_empty()
    }
}

fn text(v: Option<&toml::Value>) -> String {
    match v {
        Some(toml::Value::String(s)) => s.clone(),
        Some(toml::Value::Table(t)) => t
            .get("description")
            .and_then(|d| d.as_str())
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

/// The declared flow's `protocol`, parsed.
fn parse_protocol(
    word: Option<String>,
    src: &Source,
    span: &Range<usize>,
    at: &str,
) -> Result<Protocol, LoadError> {
    let word = word.unwrap_or_default();
    word.parse().map_err(|_| {
        src.err(
            span.clone(),
            format!(
                "{at}: protocol must be one of {} (got {word:?})",
                Protocol::ALL
                    .iter()
                    .map(|p| format!("\"{p}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// Whether `pattern` matches every flow of its protocol: `#`, `+/#` or `*` for MQTT, `/` (or `*`) as an
/// HTTP path prefix.
pub fn is_catch_all(protocol: Protocol, pattern: &str) -> bool {
    let p = pattern.trim();
    p.is_empty()
        || p == "*"
        || match protocol {
            Protocol::Mqtt => p == "#" || p == "+/#",
            Protocol::Http => p == "/",
        }
}

/// A catch-all declaration would declare every flow, so `flows-declared` could never fail.
fn check_not_catch_all(
    protocol: Protocol,
    pattern: &str,
    src: &Source,
    span: &Range<usize>,
    at: &str,
) -> Result<(), LoadError> {
    if !is_catch_all(protocol, pattern) {
        return Ok(());
    }
    Err(src.err(
        span.clone(),
        format!(
            "{at}: pattern {pattern:?} matches every {protocol} flow, which would make the \
             `flows-declared` check vacuous; declare each flow by its own topic filter or path prefix"
        ),
    ))
}

/// Collect and check the declared flows of a profile's IXIT.
pub(crate) fn declared_flows(ixit: &Ixit, src: &Source) -> Result<Vec<DeclaredFlow>, LoadError> {
    let mut out = Vec::new();
    for sheet in FLOW_SHEETS {
        let Some(entries) = ixit.sheets.get(sheet) else {
            continue;
        };
        for (name, entry) in entries {
            let span = entry.span();
            let e = entry.get_ref();
            let Some(pa) = e.get("Processing Activities").and_then(|v| v.as_table()) else {
                continue;
            };
            let at = format!("ixit.\"{sheet}\".{name}.\"Processing Activities\"");
            let field = |k: &str| pa.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let protocol = parse_protocol(field("protocol"), src, &span, &at)?;
            let Some(pattern) = field("pattern").filter(|p| !p.is_empty()) else {
                return Err(src.err(span, format!("{at}: a declared flow needs a `pattern` (MQTT topic filter or HTTP path prefix)")));
            };
            check_not_catch_all(protocol, &pattern, src, &span, &at)?;
            let Some(consent) = pa.get("consent").and_then(|v| v.as_bool()) else {
                return Err(src.err(
                    span,
                    format!("{at}: say whether the flow is consent-based: consent = true|false"),
                ));
            };
            let consent_purpose = field("consent_purpose");
            if consent && consent_purpose.is_none() {
                return Err(src.err(
                    span,
                    format!("{at}: a consent-based flow names the purpose consented to: consent_purpose = \"NAME\""),
                ));
            }
            let categories = e
                .get("Personal Data")
                .and_then(|v| v.as_table())
                .and_then(|t| t.get("categories"))
                .and_then(|c| c.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            out.push(DeclaredFlow {
                name: format!("{sheet}/{name}"),
                protocol,
                pattern,
                purpose: text(e.get("Purpose")),
                recipient: field("recipient")
                    .ok_or_else(|| src.err(span.clone(), format!("{at}: name the `recipient`")))?,
                lawful_basis: field("lawful_basis").ok_or_else(|| {
                    src.err(span.clone(), format!("{at}: give the `lawful_basis`"))
                })?,
                consent,
                consent_purpose,
                categories,
            });
        }
    }
    Ok(out)
}
