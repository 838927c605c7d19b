//! The mock cloud plays the manufacturer's backend, and its own behaviour must never earn the device a
//! PASS: with the mock's erasure propagation switched on and the device's own switched off
//! (`erase-skips-third-parties`), the propagation case still FAILs, because only the device's own
//! requests count. Runs the real virtual board and the real mock cloud.

use hilt::board::{BoardSession, SessionOptions};
use hilt::events::Discard;
use hilt::exec::{CaseControl, run_case};
use hilt::suite::SuiteRoot;
use hilt_link::Cancel;
use hilt_model::Verdict;
use std::path::Path;

fn propagation_case(defects: &[&str], mock_propagates: bool) -> (Verdict, String, String) {
    let root = SuiteRoot {
        root: Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
    };
    let case = root
        .scenarios()
        .expect("the suite loads")
        .into_iter()
        .find(|c| c.id == "pr.erase.propagates")
        .expect("the propagation case");
    let profile = root.board(None).expect("the reference board's profile");
    let bench = BoardSession::open(
        profile,
        &SessionOptions {
            defects: defects.iter().map(|d| d.to_string()).collect(),
            hilt_exe: env!("CARGO_BIN_EXE_hilt").into(),
            cancel: hilt_link::Cancel::new(),
        },
    )
    .expect("the virtual board starts");
    let cloud = bench.cloud().expect("the board has a mock cloud");
    cloud.state.set_backend_propagation(mock_propagates);
    let ctl = CaseControl {
        cancel: Cancel::new(),
        events: &Discard,
    };
    let run = run_case(&bench, &case, &ctl);
    let accounts = run
        .evidence
        .iter()
        .find(|e| e.name == "accounts.json")
        .map(|e| String::from_utf8_lossy(&e.bytes).into_owned())
        .unwrap_or_default();
    (run.result.verdict, run.result.reason, accounts)
}

#[test]
fn the_mocks_own_propagation_never_earns_the_device_a_pass() {
    let (v, why, _) = propagation_case(&["erase-skips-third-parties"], true);
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("analytics"), "{why}");
    // The same bench with the device doing its job passes, so the FAIL above is the device's.
    let (v, why, accounts) = propagation_case(&[], false);
    assert_eq!(v, Verdict::Pass, "{why}");
    // The account and consent records read back are evidence; no token is among them.
    let doc: serde_json::Value = serde_json::from_str(&accounts).expect("accounts.json evidence");
    assert_eq!(
        doc["accounts"]["owner"]["account"]["name"],
        "Petra Propagate"
    );
    let reported = doc["device"]["consents_reported"].as_array().unwrap();
    assert!(reported.iter().any(|c| c["granted"] == true), "{accounts}");
    assert!(
        !doc["device"]["erasures_reported"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(!accounts.contains("\"token\""), "{accounts}");
}
