//! Checks judged again from a recorded run: the committed example report (`reports/example/`, a real
//! run against the virtual board) holds each case's step records, and its evidence each case's flow
//! log. Judged afresh, the flow-log checks must give the verdicts the report states; and the same
//! recordings, edited the way a faulty device would have made them, take the FAIL and INCONCLUSIVE
//! paths (a flow before consent, a flow after withdrawal, a flow never seen, checks that stop).

use hilt::checks::{CloudEvidence, Evidence};
use hilt::exec::{CaseVars, Dut, Scope};
use hilt::fake::FakeBench;
use hilt::suite::{Case, SuiteRoot};
use hilt_cloud::Flow;
use hilt_model::Verdict;
use hilt_model::profile::BoardProfile;
use hilt_report::model::StepRecord;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SERIAL: &str = "VRB-00000001";
const ANALYTICS: &str = "/thirdparty/analytics/ingest";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A case's step records (from report.json) and flow log (from its evidence), as recorded.
struct Recording {
    case: Arc<Case>,
    steps: Vec<StepRecord>,
    flows: Vec<Flow>,
    /// The check verdicts the report states, by kind.
    verdicts: Vec<(String, Verdict)>,
}

fn recording(id: &str) -> Recording {
    let example = root().join("reports/example");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(example.join("report.json")).unwrap()).unwrap();
    let case_json = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("the example report has no case {id}"));
    let steps: Vec<StepRecord> = serde_json::from_value(case_json["steps"].clone()).unwrap();
    let verdicts = case_json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let v: Verdict = serde_json::from_value(c["verdict"].clone()).unwrap();
            (c["kind"].as_str().unwrap().to_string(), v)
        })
        .collect();
    let log =
        std::fs::read_to_string(example.join(format!("evidence/{id}/cloud-flows.jsonl"))).unwrap();
    let flows = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let case = SuiteRoot { root: root() }
        .scenarios()
        .unwrap()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap();
    Recording {
        case,
        steps,
        flows,
        verdicts,
    }
}

impl Recording {
    /// Every check of the case over `flows` (the recording's own, or an edited copy).
    fn judge(&self, flows: &[Flow]) -> Vec<(String, Verdict, String)> {
        let profile = BoardProfile::load(&root().join("boards/vboard.toml")).unwrap();
        let declared = profile.flows.clone();
        let bench = FakeBench::new(profile);
        let scope = Scope::new(&bench, Arc::new(CaseVars::default()));
        let ev = Evidence {
            scope: &scope,
            steps: &self.steps,
            secrets: &[],
            started_unix_ms: None,
            memory: &Default::default(),
            usb: &Default::default(),
            ble: &Default::default(),
            cloud: Some(CloudEvidence {
                flows,
                dut: Dut {
                    identity: SERIAL,
                    client_id: SERIAL,
                },
                windows: &[],
                declared: &declared,
            }),
        };
        self.case
            .checks
            .iter()
            .map(|c| {
                let r = c.evaluate(&ev);
                (r.kind, r.verdict, r.detail)
            })
            .collect()
    }

    fn verdict(&self, flows: &[Flow], kind: &str) -> (Verdict, String) {
        self.judge(flows)
            .into_iter()
            .find(|(k, _, _)| k == kind)
            .map(|(_, v, d)| (v, d))
            .unwrap_or_else(|| panic!("no {kind} check"))
    }

    fn step_start(&self, id: &str) -> u64 {
        let s = self.steps.iter().find(|s| s.id == id).unwrap();
        s.flow_from_us.unwrap()
    }

    fn analytics(&self) -> Vec<&Flow> {
        self.flows
            .iter()
            .filter(|f| f.path.as_deref() == Some(ANALYTICS))
            .collect()
    }
}

#[test]
fn judged_again_the_recorded_checks_give_the_reports_verdicts() {
    for id in [
        "pr.consent.none-before-opt-in",
        "pr.consent.withdrawal-stops-flows",
        "up.update.periodic-check",
    ] {
        let r = recording(id);
        for (kind, verdict, detail) in r.judge(&r.flows) {
            let stated = r
                .verdicts
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, v)| *v)
                .unwrap();
            assert_eq!(verdict, stated, "{id} {kind}: {detail}");
            assert_eq!(verdict, Verdict::Pass, "{id} {kind}: {detail}");
        }
    }
}

#[test]
fn a_flow_before_consent_fails_and_a_flow_never_seen_is_inconclusive() {
    let r = recording("pr.consent.none-before-opt-in");
    let first = (*r.analytics().first().expect("analytics were recorded")).clone();
    // The device sent analytics between pairing and the opt-in.
    let mut early = r.flows.clone();
    early.push(Flow {
        t_us: r.step_start("opt-in") - 1,
        ..first
    });
    let (v, why) = r.verdict(&early, "flow-absent");
    assert_eq!(v, Verdict::Fail, "{why}");
    // The device never made the flow at all: its absence proves nothing.
    let never: Vec<Flow> = r
        .flows
        .iter()
        .filter(|f| f.path.as_deref() != Some(ANALYTICS))
        .cloned()
        .collect();
    let (v, why) = r.verdict(&never, "flow-absent");
    assert_eq!(v, Verdict::Inconclusive, "{why}");
}

#[test]
fn a_flow_after_withdrawal_fails_and_one_never_seen_before_it_is_inconclusive() {
    let r = recording("pr.consent.withdrawal-stops-flows");
    let last_step_end = r.steps.last().unwrap().flow_to_us.unwrap();
    let first = (*r.analytics().first().expect("analytics were recorded")).clone();
    let mut late = r.flows.clone();
    late.push(Flow {
        t_us: last_step_end - 1,
        ..first
    });
    let (v, why) = r.verdict(&late, "flow-stops");
    assert_eq!(v, Verdict::Fail, "{why}");
    let withdrawn = r.step_start("withdraw");
    let only_after: Vec<Flow> = r
        .flows
        .iter()
        .filter(|f| f.path.as_deref() != Some(ANALYTICS) || f.t_us >= withdrawn)
        .cloned()
        .collect();
    let (v, why) = r.verdict(&only_after, "flow-stops");
    assert_eq!(v, Verdict::Inconclusive, "{why}");
}

#[test]
fn update_checks_that_stop_after_boot_fail() {
    let r = recording("up.update.periodic-check");
    let mut seen = 0;
    let once: Vec<Flow> = r
        .flows
        .iter()
        .filter(|f| {
            let check = f.identity.as_deref() == Some(SERIAL)
                && f.path.as_deref().is_some_and(|p| p.starts_with("/update/"));
            if check {
                seen += 1;
            }
            !check || seen == 1
        })
        .cloned()
        .collect();
    assert!(seen >= 2, "the recording holds {seen} update checks");
    let (v, why) = r.verdict(&once, "periodic-update-check");
    assert_eq!(v, Verdict::Fail, "{why}");
}
