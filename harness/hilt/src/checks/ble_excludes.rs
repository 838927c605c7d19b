//! `ble-excludes`: nothing an unpaired central gets from the device — its advertisement (name,
//! manufacturer and service data) or any characteristic it lets be read (as step `step` surveyed
//! it) — holds any of `values`: security-relevant or personal data such as the serial number, the
//! firmware version, Wi-Fi details or the owner's name, in any common encoding (EN 303 645 5.6-2,
//! 5.8-1). Values are never shown, only their labels and where they were found. A characteristic
//! that did not answer leaves the case INCONCLUSIVE unless a disclosure was found elsewhere.

use std::collections::BTreeMap;

use hilt_canary::{Canary, Scanner};
use hilt_model::Verdict;
use hilt_model::scenario::VarTemplate as Template;
use hilt_model::vocabulary::ActionKind;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Params};
use crate::ble::{BleSurvey, ReadResult};

pub const KIND: Kind = Kind {
    name: "ble-excludes",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BleExcludes {
    step: String,
    /// Label → value, e.g. `{ serial = "{unit.serial}", owner = "{var.owner}" }`.
    values: BTreeMap<String, Template>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: BleExcludes = p.get()?;
    p.step_of_kind(&c.step, ActionKind::SurveyBle)?;
    if c.values.is_empty() {
        return Err("give at least one value to look for".into());
    }
    for t in c.values.values() {
        p.scenario.check_vars(t)?;
    }
    Ok(Box::new(c))
}

impl Check for BleExcludes {
    fn templates(&self) -> Vec<&Template> {
        self.values.values().collect()
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
        let mut canaries = Vec::new();
        for (label, t) in &self.values {
            let value = match ev.scope.render(t) {
                Ok(v) => v.text,
                Err(e) => return (Verdict::NotTested, e),
            };
            match Canary::new(label.clone(), value) {
                Ok(c) => canaries.push(c),
                Err(e) => return (Verdict::NotTested, format!("value {label}: {e}")),
            }
        }
        let scanner = match Scanner::new(&canaries) {
            Ok(s) => s,
            Err(e) => return (Verdict::Error, format!("cannot build the scan: {e}")),
        };
        judge(survey, &scanner)
    }
}

fn judge(survey: &BleSurvey, scanner: &Scanner) -> Judgement {
    let mut found = Vec::new();
    let advert = &survey.advert;
    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(n) = &advert.local_name {
        places.push(("the advertised name".into(), n.as_bytes().to_vec()));
    }
    for (company, h) in &advert.manufacturer_data {
        places.push((
            format!("the advertised manufacturer data of company {company:#06x}"),
            decode(h),
        ));
    }
    for (uuid, h) in &advert.service_data {
        places.push((format!("the advertised service data of {uuid}"), decode(h)));
    }
    let mut unanswered = Vec::new();
    for r in &survey.reads {
        match &r.result {
            ReadResult::Value(v) => places.push((
                format!("characteristic {} (service {})", r.char, r.service),
                v.clone(),
            )),
            ReadResult::Failed(why) => unanswered.push(format!("{} ({why})", r.char)),
            ReadResult::Refused(_) => {}
        }
    }
    for (place, bytes) in &places {
        for hit in scanner.scan(bytes) {
            found.push(format!("{} ({}) in {place}", hit.label, hit.encoding));
        }
    }
    found.dedup();
    if !found.is_empty() {
        return (
            Verdict::Fail,
            format!("an unpaired central can read {}", found.join("; ")),
        );
    }
    if !unanswered.is_empty() {
        return (
            Verdict::Inconclusive,
            format!(
                "nothing found, but these characteristics did not answer: {}",
                unanswered.join(", ")
            ),
        );
    }
    let refused = survey
        .reads
        .iter()
        .filter(|r| matches!(r.result, ReadResult::Refused(_)))
        .count();
    (
        Verdict::Pass,
        format!(
            "none of the values in the advertisement or in {} readable characteristic(s); {refused} refused an unpaired read",
            survey.readable()
        ),
    )
}

/// Advertised data is kept as hex; a malformed one is searched as written.
fn decode(h: &str) -> Vec<u8> {
    hex::decode(h).unwrap_or_else(|_| h.as_bytes().to_vec())
}
