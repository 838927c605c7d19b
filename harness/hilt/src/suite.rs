//! Where the suite's files are: `test-cases/`, `boards/`, `fixtures/`, `reports/`.

use hilt_model::LoadError;
use hilt_model::profile::BoardProfile;
use hilt_model::scenario::{Scenario, load_suite};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checks::{TypedCheck, type_checks};
use crate::faults::FaultKind;
use hilt_model::scenario::StepWhat;
use hilt_update::variant::Variant;
use std::collections::BTreeMap;

/// `offer_update = "nothing"`: withdraw whatever is offered.
pub const WITHDRAW: &str = "nothing";

/// A scenario ready to run: its checks typed once, at load.
#[derive(Debug)]
pub struct Case {
    pub scenario: Scenario,
    pub checks: Vec<TypedCheck>,
    /// Step id → the fault kind a `cloud = "..."` step injects.
    pub faults: BTreeMap<String, &'static FaultKind>,
    /// Step id → the update variant an `offer_update = "..."` step offers; `None` for
    /// `offer_update = "nothing"`, which withdraws the offer.
    pub offers: BTreeMap<String, Option<Variant>>,
}

impl Case {
    pub fn new(scenario: Scenario) -> Result<Case, LoadError> {
        let mut faults = BTreeMap::new();
        let mut offers = BTreeMap::new();
        for step in &scenario.steps {
            let located = |e: String| step.error(&scenario, format!("step {:?}: {e}", step.id));
            match &step.what {
                StepWhat::CloudFault { fault, .. } | StepWhat::CloudFaultUntil { fault, .. } => {
                    let kind = crate::faults::lookup(&fault.0).map_err(located)?;
                    faults.insert(step.id.clone(), kind);
                }
                StepWhat::OfferUpdate(offer) if offer.0 == WITHDRAW => {
                    offers.insert(step.id.clone(), None);
                }
                StepWhat::OfferUpdate(offer) => {
                    let variant = Variant::parse(&offer.0).ok_or_else(|| {
                        let names: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
                        located(format!(
                            "unknown update variant {:?} (known: {}, or {WITHDRAW:?} to withdraw the offer)",
                            offer.0,
                            names.join(", ")
                        ))
                    })?;
                    offers.insert(step.id.clone(), Some(variant));
                }
                _ => {}
            }
        }
        let checks = type_checks(&scenario)?;
        Ok(Case {
            scenario,
            checks,
            faults,
            offers,
        })
    }

    /// Whether the case needs the mock cloud (a cloud step, or a check that reads the flow log).
    pub fn needs_cloud(&self) -> bool {
        self.scenario.steps_need_cloud() || self.checks.iter().any(|c| c.needs().cloud)
    }
}

impl std::ops::Deref for Case {
    type Target = Scenario;
    fn deref(&self) -> &Scenario {
        &self.scenario
    }
}

#[derive(Debug, Clone)]
pub struct SuiteRoot {
    pub root: PathBuf,
}

impl SuiteRoot {
    /// `explicit`, else the nearest ancestor of the current directory holding `test-cases/` and
    /// `boards/`, else the source tree hilt was built from.
    pub fn discover(explicit: Option<&Path>) -> Result<SuiteRoot, String> {
        let is_root = |p: &Path| p.join("test-cases").is_dir() && p.join("boards").is_dir();
        if let Some(p) = explicit {
            return if is_root(p) {
                Ok(SuiteRoot {
                    root: p.to_path_buf(),
                })
            } else {
                Err(format!(
                    "{} has no test-cases/ and boards/ directories",
                    p.display()
                ))
            };
        }
        let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
        let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        cwd.ancestors()
            .find(|p| is_root(p))
            .map(Path::to_path_buf)
            .or_else(|| is_root(&built).then(|| built.canonicalize().unwrap_or(built)))
            .map(|root| SuiteRoot { root })
            .ok_or_else(|| {
                "cannot find the suite (a directory with test-cases/ and boards/); use --suite DIR"
                    .into()
            })
    }

    pub fn test_cases(&self) -> PathBuf {
        self.root.join("test-cases")
    }
    pub fn fixtures(&self) -> PathBuf {
        self.root.join("fixtures")
    }
    pub fn default_board(&self) -> PathBuf {
        self.root.join("boards/vboard.toml")
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("reports/runs")
    }

    /// Every scenario of the suite, with its checks typed through the registry.
    pub fn scenarios(&self) -> Result<Vec<Arc<Case>>, LoadError> {
        load_suite(&self.test_cases(), &self.fixtures())?
            .into_iter()
            .map(|s| Case::new(s).map(Arc::new))
            .collect()
    }

    pub fn board(&self, path: Option<&Path>) -> Result<Arc<BoardProfile>, LoadError> {
        let p = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.default_board());
        Ok(Arc::new(BoardProfile::load(&p)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_cloud_fault_is_a_located_load_error() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let path = root.join("test-cases/resilience/orderly-reconnect.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let fixtures = root.join("fixtures");
        let load = |t: &str| Case::new(Scenario::parse(Path::new("s.toml"), t, &fixtures).unwrap());
        assert_eq!(load(&text).unwrap().faults.len(), 1);
        let err = load(&text.replace("cloud = \"outage\"", "cloud = \"outtage\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.toml:") && err.contains("unknown cloud fault \"outtage\""),
            "{err}"
        );
        assert!(err.contains("untrusted-cert"), "{err}");
    }

    #[test]
    fn a_misspelt_update_variant_is_a_located_load_error() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let path = root.join("test-cases/software-updates/rejects-tampered.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let fixtures = root.join("fixtures");
        let load = |t: &str| Case::new(Scenario::parse(Path::new("s.toml"), t, &fixtures).unwrap());
        let case = load(&text).unwrap();
        assert_eq!(case.offers["offer"], Some(Variant::Tampered));
        assert_eq!(case.offers["withdraw"], None);
        let err = load(&text.replace("\"tampered\"", "\"tamperd\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.toml:") && err.contains("unknown update variant \"tamperd\""),
            "{err}"
        );
        assert!(err.contains("foreign-signed"), "{err}");
    }
}
