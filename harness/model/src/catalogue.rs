//! The provision catalogue: EN 303 645 V3.1.3 provisions with their V2.1.1 counterparts, PSTI Schedule 1
//! requirements, and the ICO guidance items. Shipped inside the binary (paraphrases only).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

use crate::error::LoadError;

const EMBEDDED: &str = include_str!("../catalogue/provisions.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub schema: u32,
    pub source: Sources,
    #[serde(rename = "feature")]
    pub features: Vec<Feature>,
    #[serde(rename = "condition")]
    pub conditions: Vec<Condition>,
    #[serde(rename = "en")]
    pub en: Vec<EnProvision>,
    #[serde(rename = "psti")]
    pub psti: Vec<PstiRequirement>,
    #[serde(rename = "ico")]
    pub ico: Vec<IcoItem>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    pub en303645: String,
    pub en303645_psti: String,
    pub psti: String,
    pub ico: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub id: u32,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnProvision {
    pub id: String,
    pub clause: String,
    pub clause_title: String,
    pub summary: String,
    pub status: String,
    #[serde(default)]
    pub conditions: Vec<u32>,
    #[serde(default)]
    pub features: Vec<String>,
    pub v2: Option<String>,
    pub v2_status: Option<String>,
    pub hil: String,
    pub confidence: String,
}

impl EnProvision {
    pub fn is_mandatory(&self) -> bool {
        self.status == "M"
    }

    /// Only conditional or feature-dependent provisions may be declared N/A in the ICS.
    pub fn may_be_not_applicable(&self) -> bool {
        !self.conditions.is_empty() || !self.features.is_empty()
    }

    /// The status as written in Table B.1, e.g. `M C(14) F(e)`.
    pub fn status_code(&self) -> String {
        let mut s = self.status.clone();
        if !self.conditions.is_empty() {
            let c: Vec<String> = self.conditions.iter().map(u32::to_string).collect();
            s.push_str(&format!(" C({})", c.join(",")));
        }
        if !self.features.is_empty() {
            s.push_str(&format!(" F({})", self.features.join(",")));
        }
        s
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PstiRequirement {
    pub id: String,
    pub paragraph: u32,
    pub summary: String,
    #[serde(default)]
    pub deemed_by_en_v2: Vec<String>,
    pub confidence: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcoItem {
    pub id: String,
    pub section: String,
    pub level: String,
    pub summary: String,
    pub testability: String,
}

impl Catalogue {
    /// The catalogue compiled into hilt.
    pub fn embedded() -> &'static Catalogue {
        static CAT: std::sync::OnceLock<Catalogue> = std::sync::OnceLock::new();
        CAT.get_or_init(|| {
            // The embedded file is checked by this crate's tests; a broken one is a build defect.
            Catalogue::parse(Path::new("catalogue/provisions.toml"), EMBEDDED)
                .unwrap_or_else(|e| panic!("embedded provision catalogue is invalid: {e}"))
        })
    }

    pub fn parse(path: &Path, text: &str) -> Result<Catalogue, LoadError> {
        let cat: Catalogue =
            toml::from_str(text).map_err(|e| LoadError::from_toml(path, text, e))?;
        cat.check().map_err(|message| LoadError::File {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(cat)
    }

    fn check(&self) -> Result<(), String> {
        let mut seen = BTreeMap::new();
        let ids = self
            .en
            .iter()
            .map(|p| p.id.as_str())
            .chain(self.psti.iter().map(|p| p.id.as_str()))
            .chain(self.ico.iter().map(|p| p.id.as_str()));
        for id in ids {
            if seen.insert(id, ()).is_some() {
                return Err(format!("duplicate id {id}"));
            }
        }
        for p in &self.en {
            for f in &p.features {
                if self.feature(f).is_none() {
                    return Err(format!("{}: unknown feature ({f})", p.id));
                }
            }
            for c in &p.conditions {
                if !self.conditions.iter().any(|k| k.id == *c) {
                    return Err(format!("{}: unknown condition ({c})", p.id));
                }
            }
            if p.status != "M" && p.status != "R" {
                return Err(format!("{}: status must be M or R, not {}", p.id, p.status));
            }
        }
        Ok(())
    }

    pub fn en(&self, id: &str) -> Option<&EnProvision> {
        self.en.iter().find(|p| p.id == id)
    }

    /// The V3.1.3 provisions that correspond to a V2.1.1 id.
    pub fn en_by_v2(&self, v2: &str) -> impl Iterator<Item = &EnProvision> {
        self.en.iter().filter(move |p| p.v2.as_deref() == Some(v2))
    }

    pub fn psti(&self, id: &str) -> Option<&PstiRequirement> {
        self.psti.iter().find(|p| p.id == id)
    }

    pub fn ico(&self, id: &str) -> Option<&IcoItem> {
        self.ico.iter().find(|p| p.id == id)
    }

    pub fn feature(&self, id: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.id == id)
    }

    pub fn condition(&self, id: u32) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalogue_loads_and_has_the_core_provisions() {
        let cat = Catalogue::embedded();
        let p = cat.en("5.1-1").expect("5.1-1");
        assert!(p.is_mandatory());
        assert_eq!(p.features, vec!["a".to_string()]);
        let bf = cat.en("5.1-5").expect("5.1-5");
        assert_eq!(bf.status_code(), "M C(14) F(e)");
        assert!(cat.psti("PSTI-PW-1").is_some());
        assert!(cat.en_by_v2("5.1-1").any(|p| p.id == "5.1-1"));
        assert!(cat.en.len() >= 60, "only {} EN provisions", cat.en.len());
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let text = EMBEDDED.to_string()
            + "\n[[ico]]\nid = \"ICO-PI-01\"\nsection = \"x\"\nlevel = \"must\"\nsummary = \"x\"\ntestability = \"T\"\n";
        let err = Catalogue::parse(Path::new("c.toml"), &text).unwrap_err();
        assert!(err.to_string().contains("duplicate id ICO-PI-01"), "{err}");
    }
}
