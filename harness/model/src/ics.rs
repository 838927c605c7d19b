//! The Implementation Conformance Statement (EN 303 645 Annex B, Table B.1) as a board profile declares
//! it: per provision Support Y / N / N/A with a detail, plus the feature flags and conditions that
//! decide which conditional provisions apply.

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;
use std::collections::BTreeMap;

use crate::catalogue::Catalogue;
use crate::error::{LoadError, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Support {
    #[serde(rename = "Y")]
    Yes,
    #[serde(rename = "N")]
    No,
    #[serde(rename = "N/A")]
    NotApplicable,
}

impl Support {
    pub fn as_str(self) -> &'static str {
        match self {
            Support::Yes => "Y",
            Support::No => "N",
            Support::NotApplicable => "N/A",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcsEntry {
    pub support: Support,
    /// Detail or, for N and N/A, the rationale (TS 103 701 4-1-1 / EN 5.0-1).
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ics {
    #[serde(default)]
    pub features: BTreeMap<String, Spanned<bool>>,
    #[serde(default)]
    pub conditions: BTreeMap<String, Spanned<bool>>,
    #[serde(default)]
    pub provisions: BTreeMap<String, Spanned<IcsEntry>>,
}

/// What the ICS says about whether something applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Applies,
    /// Does not apply, with the ICS's reason.
    NotApplicable(String),
    /// The ICS cannot decide (missing declaration): fail closed.
    Undecided(String),
}

impl Ics {
    pub fn feature(&self, id: &str) -> Option<bool> {
        self.features.get(id).map(|s| *s.get_ref())
    }

    pub fn condition(&self, id: u32) -> Option<bool> {
        self.conditions.get(&id.to_string()).map(|s| *s.get_ref())
    }

    pub fn provision(&self, id: &str) -> Option<&IcsEntry> {
        self.provisions.get(id).map(Spanned::get_ref)
    }

    /// Whether a scenario needing these features and conditions, evidencing these provisions, applies.
    pub fn decide(
        &self,
        features: &[String],
        conditions: &[u32],
        provisions: &[String],
    ) -> Decision {
        for f in features {
            match self.feature(f) {
                None => {
                    return Decision::Undecided(format!("the ICS does not declare feature ({f})"));
                }
                Some(false) => {
                    return Decision::NotApplicable(format!(
                        "the ICS declares feature ({f}) absent"
                    ));
                }
                Some(true) => {}
            }
        }
        for c in conditions {
            match self.condition(*c) {
                None => {
                    return Decision::Undecided(format!(
                        "the ICS does not declare condition ({c})"
                    ));
                }
                Some(false) => {
                    return Decision::NotApplicable(format!(
                        "the ICS declares condition ({c}) not met"
                    ));
                }
                Some(true) => {}
            }
        }
        let mut not_applicable = Vec::new();
        for p in provisions {
            match self.provision(p) {
                None => {
                    return Decision::Undecided(format!(
                        "the ICS has no Support entry for provision {p}"
                    ));
                }
                Some(e) if e.support == Support::NotApplicable => {
                    not_applicable.push(format!("{p} is N/A in the ICS: {}", e.detail))
                }
                Some(_) => {}
            }
        }
        if !provisions.is_empty() && not_applicable.len() == provisions.len() {
            return Decision::NotApplicable(not_applicable.join("; "));
        }
        Decision::Applies
    }

    /// Check the ICS against the catalogue: known ids, rationales, N/A only where the standard allows.
    pub(crate) fn validate(&self, src: &Source, cat: &Catalogue) -> Result<(), LoadError> {
        for (id, v) in &self.features {
            if cat.feature(id).is_none() {
                return Err(src.err(v.span(), format!("ics.features: unknown feature ({id}); features are a..aa as in EN 303 645 Table B.1")));
            }
        }
        for (id, v) in &self.conditions {
            let known = id.parse::<u32>().ok().and_then(|n| cat.condition(n));
            if known.is_none() {
                return Err(src.err(
                    v.span(),
                    format!("ics.conditions: unknown condition ({id})"),
                ));
            }
        }
        for (id, entry) in &self.provisions {
            let span = entry.span();
            let e = entry.get_ref();
            let Some(p) = cat.en(id) else {
                return Err(src.err(
                    span,
                    format!("ics.provisions: unknown EN 303 645 V3.1.3 provision {id:?}"),
                ));
            };
            if e.support != Support::Yes && e.detail.trim().is_empty() {
                return Err(src.err(
                    span,
                    format!(
                        "ics.provisions.\"{id}\": support {} needs a rationale in `detail`",
                        e.support.as_str()
                    ),
                ));
            }
            if e.support == Support::NotApplicable {
                if !p.may_be_not_applicable() {
                    return Err(src.err(span, format!("ics.provisions.\"{id}\": N/A is not allowed for an unconditional provision ({})", p.status_code())));
                }
                let features_present = !p.features.is_empty()
                    && p.features.iter().all(|f| self.feature(f) == Some(true));
                let conditions_met = !p.conditions.is_empty()
                    && p.conditions
                        .iter()
                        .all(|c| self.condition(*c) == Some(true));
                let all_declared_present = (p.features.is_empty() || features_present)
                    && (p.conditions.is_empty() || conditions_met);
                if all_declared_present {
                    return Err(src.err(span, format!("ics.provisions.\"{id}\": N/A contradicts the ICS, which declares every feature and condition of {} present", p.status_code())));
                }
            }
        }
        Ok(())
    }
}
