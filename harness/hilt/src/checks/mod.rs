//! Check kinds: pass criteria over a case's recorded evidence (attempts, captures, the flow log).
//!
//! Each kind is one file owning its parameters, their validation against the scenario at load time
//! (located errors), what it needs of the bench (for applicability) and its evaluation; [`KINDS`]
//! registers them. Adding a kind is one new file and one line in [`KINDS`] (the README's "Writing a
//! scenario" says how). A check whose evidence is absent says which evidence is missing and is
//! INCONCLUSIVE, never PASS.

mod app_notice;
mod ble_excludes;
mod capture_equals;
mod capture_excludes;
mod capture_time;
mod erasure_propagated;
mod export_scoped;
mod flow_absent;
mod flow_excludes;
mod flow_stops;
mod flows_declared;
mod gatt_declared;
mod lockout_duration;
mod orderly_reconnect;
mod password_pattern;
mod passwords_patternless;
mod periodic_update_check;
mod refuses_untrusted_cert;
mod storage_excludes;
mod support_period;
mod throttled;
mod tls_only;
mod units_distinct;
mod usb_interfaces_declared;
mod users_notified;
mod withdrawal_parity;

use std::collections::BTreeMap;

use hilt_cloud::Flow;
use hilt_model::flows::DeclaredFlow;
use hilt_model::scenario::VarTemplate as Template;
use hilt_model::scenario::{CheckDecl, Number, Scenario, Step, StepWhat};
use hilt_model::vocabulary::{self, ActionSpec};
use hilt_model::{LoadError, Verdict};
use hilt_report::model::{CheckRecord, StepRecord};
use serde::de::DeserializeOwned;

use crate::exec::{Dut, FaultWindow, Scope};
use crate::faults::FaultKind;

/// Every check kind, by the name scenarios use in `kind = "..."`.
pub const KINDS: &[Kind] = &[
    throttled::KIND,
    lockout_duration::KIND,
    capture_equals::KIND,
    tls_only::KIND,
    refuses_untrusted_cert::KIND,
    flows_declared::KIND,
    orderly_reconnect::KIND,
    support_period::KIND,
    app_notice::KIND,
    periodic_update_check::KIND,
    capture_excludes::KIND,
    flow_absent::KIND,
    flow_stops::KIND,
    erasure_propagated::KIND,
    users_notified::KIND,
    export_scoped::KIND,
    withdrawal_parity::KIND,
    capture_time::KIND,
    flow_excludes::KIND,
    storage_excludes::KIND,
    units_distinct::KIND,
    passwords_patternless::KIND,
    usb_interfaces_declared::KIND,
    gatt_declared::KIND,
    ble_excludes::KIND,
];

/// A registered check kind: its name and how its parameters become a typed check.
pub struct Kind {
    pub name: &'static str,
    pub parse: fn(&Params) -> Result<Box<dyn Check>, String>,
}

/// A verdict with its one-sentence reason.
pub type Judgement = (Verdict, String);

/// A typed check. Implementations hold their parsed parameters.
pub trait Check: std::fmt::Debug + Send + Sync {
    /// What the check needs of the bench: a bench without it makes the case NOT_TESTED.
    fn needs(&self) -> Needs {
        Needs::default()
    }
    /// The numbers it will resolve (IXIT references): one the profile cannot supply makes the case
    /// NOT_TESTED before the device is touched.
    fn numbers(&self) -> Vec<&Number> {
        Vec::new()
    }
    fn templates(&self) -> Vec<&Template> {
        Vec::new()
    }
    /// The IXIT lists it will read (`sheet/entry/field/key` paths to arrays of text): one the profile
    /// does not declare makes the case NOT_TESTED before the device is touched.
    fn ixit_lists(&self) -> Vec<&str> {
        Vec::new()
    }
    fn evaluate(&self, ev: &Evidence) -> Judgement;
}

/// What a check needs of the bench.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The mock cloud's flow log.
    pub cloud: bool,
}

/// A check's parameters as written, with the scenario they belong to.
pub struct Params<'a> {
    pub table: &'a toml::Table,
    pub scenario: &'a Scenario,
}

impl Params<'_> {
    /// The parameters as `T` (which should deny unknown fields).
    pub fn get<T: DeserializeOwned>(&self) -> Result<T, String> {
        T::deserialize(toml::Value::Table(self.table.clone()))
            .map_err(|e| e.message().trim().to_string())
    }

    /// [`Params::action_step`] for a step whose action reports refusal and lockout outcomes (the
    /// steps lockout checks judge).
    pub fn lockout_step(&self, id: &str) -> Result<(&Step, &'static ActionSpec), String> {
        let (step, spec) = self.action_step(id)?;
        if spec.refusals.is_empty() || spec.lockouts.is_empty() {
            return Err(format!(
                "step {id:?} runs action {}, which reports no refusal and lockout outcomes to judge",
                spec.name
            ));
        }
        Ok((step, spec))
    }

    /// That steps `first` and `then` exist, in this order.
    pub fn steps_in_order(&self, first: &str, then: &str) -> Result<(), String> {
        let at = |id: &str| {
            self.scenario
                .steps
                .iter()
                .position(|s| s.id == id)
                .ok_or_else(|| format!("step {id:?} is no step of this scenario"))
        };
        if at(first)? < at(then)? {
            Ok(())
        } else {
            Err(format!("step {first:?} must come before step {then:?}"))
        }
    }

    /// [`Params::action_step`] for a step whose action reads a memory snapshot.
    pub fn memory_step(&self, id: &str) -> Result<(), String> {
        let (_, spec) = self.action_step(id)?;
        if spec.kind != vocabulary::ActionKind::ReadMemory {
            return Err(format!(
                "step {id:?} runs action {}, which reads no memory snapshot",
                spec.name
            ));
        }
        Ok(())
    }

    /// [`Params::action_step`] for a step whose action is carried out as `kind` (e.g. a USB listing).
    pub fn step_of_kind(&self, id: &str, kind: vocabulary::ActionKind) -> Result<(), String> {
        let (_, spec) = self.action_step(id)?;
        if spec.kind != kind {
            return Err(format!(
                "step {id:?} runs action {}, which is no {kind:?} action",
                spec.name
            ));
        }
        Ok(())
    }

    /// [`Params::action_step`] for a step whose action captures `capture`.
    pub fn capture_step(
        &self,
        id: &str,
        capture: &str,
    ) -> Result<(&Step, &'static ActionSpec), String> {
        let (step, spec) = self.action_step(id)?;
        if !spec.captures.contains(&capture) {
            return Err(format!(
                "action {} captures no {capture:?} (it captures: {})",
                spec.name,
                spec.captures.join(", ")
            ));
        }
        Ok((step, spec))
    }

    /// That the scenario injects `fault` in some step (a check that judges a fault window needs one).
    pub fn require_fault(&self, fault: &FaultKind) -> Result<(), String> {
        let applied =
            self.scenario.steps.iter().any(
                |s| matches!(&s.what, StepWhat::CloudFault { fault: f, .. } | StepWhat::CloudFaultUntil { fault: f, .. } if f.0 == fault.name),
            );
        if applied {
            Ok(())
        } else {
            Err(format!(
                "the scenario applies no `cloud = \"{}\"` fault to judge",
                fault.name
            ))
        }
    }

    /// The action step `id` of this scenario, with its action's vocabulary entry.
    pub fn action_step(&self, id: &str) -> Result<(&Step, &'static ActionSpec), String> {
        let step = self
            .scenario
            .step(id)
            .ok_or_else(|| format!("step {id:?} is no step of this scenario"))?;
        match &step.what {
            StepWhat::Action { name, .. } => vocabulary::action(name)
                .map(|spec| (step, spec))
                .ok_or_else(|| format!("step {id:?}: unknown action {name:?}")),
            _ => Err(format!("step {id:?} is no action step of this scenario")),
        }
    }
}

/// What checks judge: the case's step records, and the mock cloud's view when there is one.
pub struct Evidence<'a> {
    pub scope: &'a Scope<'a>,
    pub steps: &'a [StepRecord],
    /// The case's secrets (secret, mask label): a detail must not show a value giving one away.
    pub secrets: &'a [(String, String)],
    /// When the case began, unix milliseconds (step times are offsets from it); `None` for
    /// recordings that do not say.
    pub started_unix_ms: Option<u64>,
    /// By step id, what each memory read got.
    pub memory: &'a BTreeMap<String, Vec<crate::memory::MemoryRead>>,
    /// By step id, the device's USB descriptors as listed.
    pub usb: &'a BTreeMap<String, crate::usb::UsbListing>,
    /// By step id, what an unpaired BLE survey learnt.
    pub ble: &'a BTreeMap<String, crate::ble::BleSurvey>,
    pub cloud: Option<CloudEvidence<'a>>,
}

/// The case's slice of the flow log and the faults applied during it.
pub struct CloudEvidence<'a> {
    pub flows: &'a [Flow],
    pub dut: Dut<'a>,
    pub windows: &'a [FaultWindow],
    pub declared: &'a [DeclaredFlow],
}

impl<'a> Evidence<'a> {
    /// The record of step `id`, or INCONCLUSIVE: it did not run.
    pub fn step(&self, id: &str) -> Result<&'a StepRecord, Judgement> {
        self.steps.iter().find(|r| r.id == id).ok_or_else(|| {
            (
                Verdict::Inconclusive,
                format!("step {id:?} did not run, so there is no evidence to judge"),
            )
        })
    }

    /// When step `id` began, in flow-log time, or INCONCLUSIVE.
    pub fn step_start(&self, id: &str) -> Result<u64, Judgement> {
        self.step(id)?.flow_from_us.ok_or_else(|| {
            (
                Verdict::Inconclusive,
                format!("missing evidence: step {id:?} has no flow-log time"),
            )
        })
    }

    pub fn cloud(&self) -> Result<&CloudEvidence<'a>, Judgement> {
        self.cloud
            .as_ref()
            .ok_or_else(|| (Verdict::NotTested, "no mock cloud on this bench".into()))
    }

    /// A number resolved against the profile, or NOT_TESTED.
    pub fn number(&self, n: &Number) -> Result<u64, Judgement> {
        self.scope.number(n).map_err(|e| (Verdict::NotTested, e))
    }
}

/// A check of a scenario, typed once at load.
#[derive(Debug)]
pub struct TypedCheck {
    pub kind: &'static str,
    check: Box<dyn Check>,
}

impl TypedCheck {
    pub fn needs(&self) -> Needs {
        self.check.needs()
    }

    /// Resolve everything the check will need from the profile; `Err` = NOT_TESTED.
    pub fn preflight(&self, scope: &Scope) -> Result<(), String> {
        for n in self.check.numbers() {
            scope.number(n)?;
        }
        for v in self.check.templates().into_iter().flat_map(|t| t.vars()) {
            scope.preflight(v)?;
        }
        for path in self.check.ixit_lists() {
            ixit_list(scope.bench.profile(), path)?;
        }
        Ok(())
    }

    pub fn evaluate(&self, ev: &Evidence) -> CheckRecord {
        let (verdict, detail) = self.check.evaluate(ev);
        CheckRecord {
            kind: self.kind.into(),
            verdict,
            detail,
        }
    }
}

/// The IXIT value at `path` as a list of text (e.g. the interfaces a manufacturer declares).
pub fn ixit_list(
    profile: &hilt_model::profile::BoardProfile,
    path: &str,
) -> Result<Vec<String>, String> {
    let value = profile
        .ixit
        .lookup(path)
        .ok_or_else(|| format!("the board profile's IXIT does not declare {path}"))?;
    let items = value
        .as_array()
        .ok_or_else(|| format!("IXIT {path} is not a list"))?;
    items
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("IXIT {path}: {v} is not text"))
        })
        .collect()
}

/// Type every `[[check]]` of a scenario through the registry; errors are located at the check.
pub fn type_checks(s: &Scenario) -> Result<Vec<TypedCheck>, LoadError> {
    s.checks.iter().map(|d| type_check(s, d)).collect()
}

fn type_check(s: &Scenario, d: &CheckDecl) -> Result<TypedCheck, LoadError> {
    let Some(kind) = KINDS.iter().find(|k| k.name == d.kind) else {
        let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        return Err(d.error(
            s,
            format!(
                "unknown check kind {:?} (known: {})",
                d.kind,
                names.join(", ")
            ),
        ));
    };
    let params = Params {
        table: &d.params,
        scenario: s,
    };
    let check =
        (kind.parse)(&params).map_err(|e| d.error(s, format!("check {}: {e}", kind.name)))?;
    Ok(TypedCheck {
        kind: kind.name,
        check,
    })
}

/// The flows over `protocol` (all of them when `None`): a check's `protocol = "mqtt"|"http"`
/// parameter judges one channel of the device only.
pub fn channel(flows: &[Flow], protocol: Option<hilt_cloud::Protocol>) -> Vec<Flow> {
    flows
        .iter()
        .filter(|f| protocol.is_none_or(|p| f.protocol == p))
        .cloned()
        .collect()
}

/// Whether flow `f` falls under declaration `d`: MQTT topics by filter, HTTP paths by prefix.
pub fn falls_under(d: &DeclaredFlow, f: &Flow) -> bool {
    match (d.protocol, &f.topic, &f.path) {
        (hilt_cloud::Protocol::Mqtt, Some(topic), _) => {
            hilt_broker::topic::matches(topic, &d.pattern)
        }
        (hilt_cloud::Protocol::Http, None, Some(path)) => path.starts_with(&d.pattern),
        _ => false,
    }
}

/// "#1 publish a/b (TLS); …" for at most five flows.
pub fn list_flows(flows: &[&Flow]) -> String {
    let describe = |f: &Flow| {
        let what = f.topic.as_deref().or(f.path.as_deref()).unwrap_or("-");
        let tls = if f.tls { "TLS" } else { "plaintext" };
        format!("#{} {} {what} ({tls})", f.seq, f.kind)
    };
    let mut s: Vec<String> = flows.iter().take(5).map(|f| describe(f)).collect();
    if flows.len() > 5 {
        s.push(format!("and {} more", flows.len() - 5));
    }
    s.join("; ")
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn typed(text: &str) -> Result<Vec<TypedCheck>, String> {
        let fixtures = root().join("fixtures");
        let s = Scenario::parse(Path::new("s.toml"), text, &fixtures).map_err(|e| e.to_string())?;
        type_checks(&s).map_err(|e| e.to_string())
    }

    #[test]
    fn every_kind_is_registered_once() {
        for (i, k) in KINDS.iter().enumerate() {
            assert!(
                KINDS[i + 1..].iter().all(|o| o.name != k.name),
                "{}",
                k.name
            );
        }
    }

    #[test]
    fn check_parameters_are_validated_against_the_scenario_with_a_location() {
        let path = root().join("test-cases/software-updates/model-designation.toml");
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(typed(&text).unwrap().len(), 1);
        let err = typed(&text.replace("capture = \"model\"", "capture = \"colour\"")).unwrap_err();
        assert!(
            err.starts_with("s.toml:") && err.contains("captures no \"colour\""),
            "{err}"
        );
        let err =
            typed(&text.replace("step = \"read-identity\"", "step = \"nowhere\"")).unwrap_err();
        assert!(err.contains("\"nowhere\" is no step"), "{err}");
        let err = typed(&text.replace("kind = \"capture-equals\"", "kind = \"capture-equal\""))
            .unwrap_err();
        assert!(
            err.contains("unknown check kind \"capture-equal\"") && err.contains("capture-equals"),
            "{err}"
        );
        let err = typed(&text.replace("capture = \"model\"", "capture = \"model\"\nextra = 1"))
            .unwrap_err();
        assert!(err.contains("extra"), "{err}");
    }

    #[test]
    fn throttled_needs_a_step_whose_action_has_refusals_and_lockouts() {
        let path = root().join("test-cases/brute-force/console-lockout.toml");
        let text = std::fs::read_to_string(path).unwrap();
        assert!(typed(&text).is_ok());
        // The check's own `step`, not the owner step's `judged_within` one.
        let check = |to: &str| {
            text.replace(
                "kind = \"throttled\"\nstep = \"guesses\"",
                &format!("kind = \"throttled\"\nstep = \"{to}\""),
            )
        };
        assert_ne!(check("nope"), text);
        let err = typed(&check("nope")).unwrap_err();
        assert!(err.contains("\"nope\" is no step"), "{err}");
        let err = typed(&check("logout")).unwrap_err();
        assert!(err.contains("no refusal and lockout"), "{err}");
    }

    #[test]
    fn fault_checks_need_their_fault_in_the_scenario() {
        let path = root().join("test-cases/secure-communication/refuses-mitm.toml");
        let text = std::fs::read_to_string(path).unwrap();
        assert!(typed(&text).is_ok());
        let err =
            typed(&text.replace("cloud = \"untrusted-cert\"", "cloud = \"outage\"")).unwrap_err();
        assert!(err.contains("untrusted-cert"), "{err}");
    }
}
