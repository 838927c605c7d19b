//! The campaign summary: several boards tested in one `hilt run`, each with its own signed report in
//! a subdirectory named by its label, summed up in one signed document (`campaign.json`, signed as
//! `campaign.dsse.json`) that binds every board's report by its envelope's digest. Its gate is the
//! worst of the boards' gates.

use hilt_model::Verdict;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::model::{Gate, Report, Suite};

pub const SCHEMA: &str = "https://hilt.dev/schemas/campaign/v1";

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    #[serde(rename = "$schema")]
    pub schema: String,
    pub suite: Suite,
    pub started: String,
    pub finished: String,
    pub duration_ms: u64,
    pub host: String,
    /// The cases every board ran, in command-line form.
    pub selection: Vec<String>,
    pub development_key: bool,
    pub interrupted: bool,
    pub boards: Vec<CampaignBoard>,
    /// The worst of the boards' gates: NON_CONFORMANT over UNDECIDED over CONFORMANT.
    pub gate: Gate,
}

/// One board of the campaign, as its own signed report says.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBoard {
    pub label: String,
    /// Its report's directory, relative to the campaign summary.
    pub dir: String,
    pub envelope_sha256: String,
    pub run_id: String,
    pub board: String,
    pub model: String,
    pub units: Vec<String>,
    pub defects: Option<Vec<String>>,
    pub gate: Gate,
    pub cases: BTreeMap<Verdict, usize>,
    pub mandatory_failed: Vec<String>,
    pub mandatory_undecided: Vec<String>,
}

impl CampaignBoard {
    /// The entry for `report`, written to `dir` under `label` with an envelope of `envelope_sha256`.
    pub fn of(label: &str, dir: &str, envelope_sha256: String, report: &Report) -> Self {
        CampaignBoard {
            label: label.to_string(),
            dir: dir.to_string(),
            envelope_sha256,
            run_id: report.run.id.clone(),
            board: report.board.name.clone(),
            model: report.board.identity.model.clone(),
            units: report.board.units.clone(),
            defects: report.board.defects.clone(),
            gate: report.summary.gate,
            cases: report.summary.cases.clone(),
            mandatory_failed: report.summary.mandatory_failed.clone(),
            mandatory_undecided: report.summary.mandatory_undecided.clone(),
        }
    }
}

impl Gate {
    /// How bad a gate is: a FAIL seen on any board outweighs a board left undecided.
    fn severity(self) -> u8 {
        match self {
            Gate::Conformant => 0,
            Gate::Undecided => 1,
            Gate::NonConformant => 2,
        }
    }

    /// The worst of `gates`; an empty campaign tested nothing and is UNDECIDED.
    pub fn worst(gates: impl IntoIterator<Item = Gate>) -> Gate {
        gates
            .into_iter()
            .max_by_key(|g| g.severity())
            .unwrap_or(Gate::Undecided)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_gate_wins_and_nothing_is_undecided() {
        use Gate::*;
        assert_eq!(
            Gate::worst([Conformant, NonConformant, Undecided]),
            NonConformant
        );
        assert_eq!(Gate::worst([Conformant, Undecided]), Undecided);
        assert_eq!(Gate::worst([Conformant, Conformant]), Conformant);
        assert_eq!(Gate::worst([]), Undecided);
    }
}
