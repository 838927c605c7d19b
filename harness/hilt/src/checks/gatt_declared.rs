//! `gatt-declared`: every GATT service the device offers to an unpaired central (as step `step`
//! surveyed it) is one the manufacturer declares (IXIT `declared`, e.g.
//! `15-Intf/ble/Description/services = ["0x180a", "0x180f"]`); GAP (0x1800) and GATT (0x1801),
//! which every BLE device must have, are always allowed (EN 303 645 5.6-1: no unused interfaces).

use hilt_link::ble::BleUuid;
use hilt_model::Verdict;
use hilt_model::vocabulary::ActionKind;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Params};

pub const KIND: Kind = Kind {
    name: "gatt-declared",
    parse,
};

/// Generic Access and Generic Attribute: mandatory on every device.
const MANDATORY: [u16; 2] = [0x1800, 0x1801];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GattDeclared {
    step: String,
    /// IXIT path to the list of declared service UUIDs.
    declared: String,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: GattDeclared = p.get()?;
    p.step_of_kind(&c.step, ActionKind::SurveyBle)?;
    Ok(Box::new(c))
}

impl Check for GattDeclared {
    fn ixit_lists(&self) -> Vec<&str> {
        vec![self.declared.as_str()]
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        if let Err(j) = ev.step(&self.step) {
            return j;
        }
        let Some(survey) = ev.ble.get(&self.step) else {
            return (
                Verdict::Inconclusive,
                format!("missing evidence: step {:?} surveyed no device", self.step),
            );
        };
        let declared =
            match super::ixit_list(ev.scope.bench.profile(), &self.declared).and_then(|l| {
                l.iter()
                    .map(|s| s.parse::<BleUuid>())
                    .collect::<Result<Vec<_>, _>>()
            }) {
                Ok(l) => l,
                Err(e) => return (Verdict::NotTested, e),
            };
        if survey.services.is_empty() {
            return (
                Verdict::Inconclusive,
                "the device listed no GATT services at all, not even GAP: the discovery looks incomplete".into(),
            );
        }
        let allowed =
            |u: &BleUuid| declared.contains(u) || u.short().is_some_and(|s| MANDATORY.contains(&s));
        let extra: Vec<String> = survey
            .services
            .iter()
            .filter(|s| !allowed(&s.uuid))
            .map(|s| format!("{} ({} characteristic(s))", s.uuid, s.characteristics.len()))
            .collect();
        if !extra.is_empty() {
            return (
                Verdict::Fail,
                format!(
                    "the device offers GATT service(s) not declared in IXIT {}: {}",
                    self.declared,
                    extra.join(", ")
                ),
            );
        }
        let all: Vec<String> = survey.services.iter().map(|s| s.uuid.to_string()).collect();
        (
            Verdict::Pass,
            format!(
                "{} GATT service(s) offered ({}), each declared or mandatory",
                all.len(),
                all.join(", ")
            ),
        )
    }
}
