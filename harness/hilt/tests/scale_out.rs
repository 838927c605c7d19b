//! Scale-out, end to end through the `hilt` binary and the virtual board: several boards in one run
//! (each signed, a signed campaign summary, the worst gate as exit code), cases side by side on
//! fresh instances, and CI shards merged into one signed report that `hilt verify` checks whole.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod common;
use common::{hilt, root, text, verdict};

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A lab key pair in `dir`: (private, public).
fn lab_key(dir: &Path) -> (PathBuf, PathBuf) {
    let o = hilt(
        &["keygen", "--out", dir.to_str().unwrap(), "--name", "lab"],
        dir,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    (dir.join("lab.key.pem"), dir.join("lab.pub.pem"))
}

fn verify(envelope: &Path, public: &Path, keys: &Path) -> std::process::Output {
    hilt(
        &[
            "verify",
            envelope.to_str().unwrap(),
            "--key",
            public.to_str().unwrap(),
        ],
        keys,
    )
}

/// The run's span, from the report's RFC 3339 times.
fn span(report: &serde_json::Value) -> (String, String) {
    let t = |k: &str| report["run"][k].as_str().unwrap().to_string();
    (t("started"), t("finished"))
}

#[test]
fn two_boards_run_side_by_side_each_signed_and_the_exit_code_is_the_worst() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = lab_key(tmp.path());
    let profile = root().join("boards/vboard.toml");
    let campaign = tmp.path().join("campaign.toml");
    std::fs::write(
        &campaign,
        format!(
            "schema = 1\n[[board]]\nlabel = \"reference\"\nprofile = {p:?}\n\
             [[board]]\nlabel = \"no-lockout\"\nprofile = {p:?}\ndefects = [\"no-login-rate-limit\"]\n",
            p = profile.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let junit = tmp.path().join("junit.xml");
    let o = hilt(
        &[
            "run",
            "--campaign",
            campaign.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "bf.console.lockout",
            "--exact",
        ],
        tmp.path(),
    );
    let said = text(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the defective board gates: {said}"
    );
    let reference = json(&out.join("reference/report.json"));
    let defective = json(&out.join("no-lockout/report.json"));
    assert_eq!(reference["summary"]["gate"], "CONFORMANT", "{said}");
    assert_eq!(verdict(&reference, "bf.console.lockout"), "PASS");
    assert_eq!(defective["summary"]["gate"], "NON_CONFORMANT");
    assert_eq!(verdict(&defective, "bf.console.lockout"), "FAIL");
    assert_eq!(defective["board"]["defects"][0], "no-login-rate-limit");
    // Concurrently: each board's run began before the other's ended.
    let ((s1, f1), (s2, f2)) = (span(&reference), span(&defective));
    assert!(
        s1 < f2 && s2 < f1,
        "runs did not overlap: {s1}..{f1} and {s2}..{f2}"
    );
    let summary = json(&out.join("campaign.json"));
    assert_eq!(summary["gate"], "NON_CONFORMANT");
    assert_eq!(summary["boards"].as_array().unwrap().len(), 2);
    assert!(
        said.contains("board reference") && said.contains("board no-lockout"),
        "{said}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");

    let envelope = out.join("campaign.dsse.json");
    let ok = verify(&envelope, &public, tmp.path());
    let shown = text(&ok);
    assert_eq!(ok.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("board reference matches")
            && shown.contains("campaign gate: NON_CONFORMANT"),
        "{shown}"
    );
    // A board's evidence altered after signing is caught through the campaign summary.
    let evidence = out.join("no-lockout/evidence/bf.console.lockout");
    let file = std::fs::read_dir(&evidence)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&file, b"rewritten").unwrap();
    let bad = verify(&envelope, &public, tmp.path());
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("member no-lockout"), "{}", text(&bad));
}

#[test]
fn a_campaign_naming_an_unknown_defect_is_a_located_error() {
    let tmp = tempfile::tempdir().unwrap();
    let campaign = tmp.path().join("c.toml");
    let profile = root().join("boards/vboard.toml");
    std::fs::write(
        &campaign,
        format!(
            "schema = 1\n[[board]]\nlabel = \"a\"\nprofile = {:?}\ndefects = [\"no-such-defect\"]\n",
            profile.to_str().unwrap()
        ),
    )
    .unwrap();
    let o = hilt(
        &["run", "--campaign", campaign.to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let said = text(&o);
    assert!(
        said.contains("c.toml:5:") && said.contains("no defect named \"no-such-defect\""),
        "{said}"
    );
}

/// Shards of the exposed-interface cases (quick ones), signed with the lab key into `out`.
fn shard(k: usize, of: usize, out: &Path, key: &Path, extra: &[&str], keys: &Path) {
    let spec = format!("{k}/{of}");
    let mut args = vec![
        "run",
        "ex.",
        "--shard",
        &spec,
        "--key",
        key.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = hilt(&args, keys);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

fn merge(shards: &[&Path], key: &Path, out: &Path, keys: &Path) -> std::process::Output {
    let mut args = vec!["report", "merge"];
    args.extend(shards.iter().map(|s| s.to_str().unwrap()));
    args.extend([
        "--key",
        key.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    hilt(&args, keys)
}

#[test]
fn shards_merge_into_one_report_that_verify_accepts_and_tampering_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path();
    let (key, public) = lab_key(keys);
    let (s1, s2) = (tmp.path().join("s1"), tmp.path().join("s2"));
    shard(1, 2, &s1, &key, &[], keys);
    shard(2, 2, &s2, &key, &[], keys);
    let (r1, r2) = (json(&s1.join("report.json")), json(&s2.join("report.json")));
    assert_eq!(r1["run"]["shard"], "1/2");
    let ids = |r: &serde_json::Value| -> Vec<String> {
        r["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (ids1, ids2) = (ids(&r1), ids(&r2));
    assert!(!ids1.is_empty() && !ids2.is_empty());
    assert!(ids1.iter().all(|i| !ids2.contains(i)), "{ids1:?} {ids2:?}");

    let merged = tmp.path().join("merged");
    let o = merge(&[&s2, &s1], &key, &merged, keys);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = json(&merged.join("report.json"));
    let all = ids(&m);
    assert_eq!(all.len(), ids1.len() + ids2.len());
    // The order one unsharded run would have given: the suite's.
    let listed = hilt(&["run", "ex.", "--list"], keys);
    let order: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| l.trim_end_matches(": case").to_string())
        .collect();
    assert_eq!(all, order);
    assert_eq!(m["shards"].as_array().unwrap().len(), 2);
    assert_eq!(m["summary"]["gate"], "CONFORMANT");
    assert!(m["run"].get("shard").is_none());
    let envelope = merged.join("report.dsse.json");
    let ok = verify(&envelope, &public, keys);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        text(&ok).contains("shard shards/1-of-2 matches"),
        "{}",
        text(&ok)
    );

    // Altering a kept shard is caught, by its digest or its own signature.
    let kept = merged.join("shards/2-of-2/report.json");
    let original = std::fs::read(&kept).unwrap();
    let mut edited = json(&kept);
    edited["cases"][0]["verdict"] = "FAIL".into();
    std::fs::write(&kept, serde_json::to_vec(&edited).unwrap()).unwrap();
    let bad = verify(&envelope, &public, keys);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(
        text(&bad).contains("member shards/2-of-2"),
        "{}",
        text(&bad)
    );
    std::fs::write(&kept, original).unwrap();
    // Altering the merged report is caught.
    let top = merged.join("report.json");
    let mut edited = json(&top);
    edited["summary"]["gate"] = "CONFORMANT".into();
    edited["cases"][0]["reason"] = "edited".into();
    std::fs::write(&top, serde_json::to_vec(&edited).unwrap()).unwrap();
    assert_eq!(verify(&envelope, &public, keys).status.code(), Some(1));
}

#[test]
fn shards_of_different_runs_or_an_incomplete_set_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path();
    let (key, _) = lab_key(keys);
    let (s1, s2) = (tmp.path().join("s1"), tmp.path().join("s2"));
    shard(1, 2, &s1, &key, &["--skip", "ble"], keys);
    shard(
        2,
        2,
        &s2,
        &key,
        &["--skip", "ble", "--defect", "no-login-rate-limit"],
        keys,
    );
    let refused = |shards: &[&Path], why: &str| {
        let out = tmp.path().join(format!("m{}", why.len()));
        let o = merge(shards, &key, &out, keys);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(why), "{why}: {}", text(&o));
        assert!(!out.join("report.dsse.json").exists());
    };
    refused(&[&s1, &s2], "shards differ in defects");
    refused(&[&s1], "shard(s) 2 of 2 missing");
    refused(&[&s1, &s1], "given twice");
}

#[test]
fn cases_run_side_by_side_on_fresh_instances_within_the_jobs_limit() {
    use hilt::events::RunEvent;
    let suite = hilt::suite::SuiteRoot::discover(Some(&root())).unwrap();
    let board = suite.board(None).unwrap();
    assert!(board.launch.as_ref().unwrap().fresh_per_case);
    let scenarios = suite.scenarios().unwrap();
    let picked: Vec<_> = scenarios
        .iter()
        .filter(|s| {
            [
                "up.device.support-period",
                "pr.notice.without-account",
                "ex.debug.port-locked",
            ]
            .contains(&s.id.as_str())
        })
        .cloned()
        .collect();
    assert_eq!(picked.len(), 3);
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_hilt"));
    // (started, finished) counts over time: the most cases running at once.
    let run = |jobs: usize| -> usize {
        let tmp = tempfile::tempdir().unwrap();
        let running = Mutex::new((0usize, 0usize));
        let sink = |e: &RunEvent| {
            let mut r = running.lock().unwrap();
            match e {
                RunEvent::CaseStarted { .. } => {
                    r.0 += 1;
                    r.1 = r.1.max(r.0);
                }
                RunEvent::CaseFinished { result, .. } => {
                    assert_eq!(
                        result.verdict,
                        hilt_model::Verdict::Pass,
                        "{}",
                        result.reason
                    );
                    r.0 -= 1;
                }
                _ => {}
            }
        };
        let cfg = hilt::runner::RunConfig {
            board: board.clone(),
            label: String::new(),
            cases: picked.clone(),
            in_suite: scenarios.len(),
            out_dir: tmp.path().to_path_buf(),
            session: hilt::board::SessionOptions {
                defects: vec![],
                hilt_exe: exe.clone(),
                cancel: hilt_link::Cancel::new(),
            },
            cancel: hilt_link::Cancel::new(),
            slots: std::sync::Arc::new(hilt::runner::Slots::new(jobs)),
        };
        let out = hilt::runner::run(&cfg, &sink);
        let ids: Vec<&str> = out.cases.iter().map(|c| c.id.as_str()).collect();
        let want: Vec<&str> = picked.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, want, "results keep the suite's order");
        running.into_inner().unwrap().1
    };
    assert_eq!(run(1), 1, "one at a time with one job");
    // Each case waits for its own board to launch: with three jobs, they overlap.
    assert!(run(3) >= 2, "cases never overlapped with three jobs");
}
