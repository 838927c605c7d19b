//! `hilt selftest`: the suite tests itself against the virtual reference board. Every scenario must PASS
//! (or be NOT_APPLICABLE) on the reference board, every defect must make each case it targets FAIL, at
//! the step or check it declares (so the case failed for the reason it claims, not another), and no
//! other case; and every scenario must be the target of some defect: a case nothing can fail is a bug.

use hilt_model::Verdict;
use hilt_model::profile::{BoardProfile, DefectSpec, FailingItem};
use hilt_report::model::CaseResult;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::board::SessionOptions;
use crate::runner::{Slots, run_quietly};
use crate::suite::Case;

#[derive(Debug, Serialize)]
pub struct Selftest {
    pub reference: BTreeMap<String, Verdict>,
    pub defects: BTreeMap<String, DefectRun>,
    /// Everything that is wrong; empty = the suite can tell a conformant board from each defect, and
    /// each defect fails its cases for the reason it declares.
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DefectRun {
    /// Case id → the step or check that must fail in it.
    pub targets: BTreeMap<String, FailingItem>,
    pub verdicts: BTreeMap<String, Verdict>,
    /// Case id → the steps and checks that did fail in it.
    pub failing: BTreeMap<String, Vec<FailingItem>>,
}

/// One board run's outcome per case: its verdict, what failed in it, and its reason (so a problem
/// says why, not only what).
type Outcomes = BTreeMap<String, (Verdict, Vec<FailingItem>, String)>;

/// The steps (an attempt answered against its `expect`) and checks that failed in a case.
pub fn failing_items(c: &CaseResult) -> Vec<FailingItem> {
    let steps = c
        .steps
        .iter()
        .filter(|s| s.attempts.iter().any(|a| a.conforms == Some(false)))
        .map(|s| FailingItem::Step(s.id.clone()));
    let checks = c
        .checks
        .iter()
        .filter(|k| k.verdict == Verdict::Fail)
        .map(|k| FailingItem::Check(k.kind.clone()));
    steps.chain(checks).collect()
}

pub fn run(
    board: &Arc<BoardProfile>,
    scenarios: &[Arc<Case>],
    hilt_exe: &std::path::Path,
    slots: &Arc<Slots>,
    progress: impl FnMut(&str) + Send,
) -> anyhow::Result<Selftest> {
    let launch = board.launch.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: selftest needs a virtual board (a [launch] section with defects)",
            board.path.display()
        )
    })?;
    // The board runs are independent processes that mostly wait on the device's timers: run them
    // side by side (their cases too, on fresh instances, within `slots`), the reference board first
    // in the list.
    let mut runs: Vec<Option<String>> = vec![None];
    runs.extend(launch.defects.keys().cloned().map(Some));
    let progress = std::sync::Mutex::new(progress);
    let results: Vec<anyhow::Result<Outcomes>> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|defect| {
                let progress = &progress;
                scope.spawn(move || {
                    let out = tempfile::tempdir()?;
                    let opts = SessionOptions {
                        defects: defect.iter().cloned().collect(),
                        hilt_exe: hilt_exe.to_path_buf(),
                        cancel: hilt_link::Cancel::new(),
                    };
                    let cases = run_quietly(board, scenarios, &opts, slots, out.path());
                    (progress.lock().unwrap_or_else(|p| p.into_inner()))(
                        defect.as_deref().unwrap_or("reference board"),
                    );
                    Ok(cases
                        .into_iter()
                        .map(|c| {
                            let items = failing_items(&c);
                            (c.id, (c.verdict, items, c.reason))
                        })
                        .collect())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a selftest run panicked")))
            })
            .collect()
    });
    let mut results = results.into_iter();
    let reference_run = results.next().expect("the reference run is first")?;
    let mut problems = Vec::new();
    for (id, (v, _, why)) in &reference_run {
        if !matches!(v, Verdict::Pass | Verdict::NotApplicable) {
            problems.push(format!(
                "reference board: {id} is {v}, expected PASS or NOT_APPLICABLE: {why}"
            ));
        }
    }
    let reference: BTreeMap<String, Verdict> = reference_run
        .into_iter()
        .map(|(id, (v, _, _))| (id, v))
        .collect();
    let mut defects = BTreeMap::new();
    for (name, spec) in &launch.defects {
        let got = results.next().expect("one run per defect")?;
        let spec = spec.get_ref();
        problems.extend(judge_defect(name, spec, &got));
        defects.insert(
            name.clone(),
            DefectRun {
                targets: spec.fails.clone(),
                verdicts: got.iter().map(|(id, (v, _, _))| (id.clone(), *v)).collect(),
                failing: got
                    .iter()
                    .filter(|(_, (_, items, _))| !items.is_empty())
                    .map(|(id, (_, items, _))| (id.clone(), items.clone()))
                    .collect(),
            },
        );
    }
    for s in scenarios {
        if !launch
            .defects
            .values()
            .any(|d| d.get_ref().targets_case(&s.id))
        {
            problems.push(format!(
                "{}: no defect of {} makes it FAIL; a scenario nothing can fail is a bug",
                s.id,
                board.name()
            ));
        }
    }
    Ok(Selftest {
        reference,
        defects,
        problems,
    })
}

/// A defect must FAIL each target at the item it declares, and leave every other case conformant.
fn judge_defect(name: &str, spec: &DefectSpec, got: &Outcomes) -> Vec<String> {
    let mut problems = Vec::new();
    for (case, item) in &spec.fails {
        match got.get(case) {
            None => problems.push(format!(
                "defect {name}: target {case} is not a scenario of this suite"
            )),
            Some((Verdict::Fail, items, _)) if items.contains(item) => {}
            Some((Verdict::Fail, items, _)) => problems.push(format!(
                "defect {name}: {case} FAILed, but at {} instead of {item}: it failed for another reason than the defect",
                if items.is_empty() {
                    "nothing recorded".to_string()
                } else {
                    items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
                }
            )),
            Some((v, _, why)) => problems.push(format!("defect {name}: {case} is {v}, expected FAIL at {item}: {why}")),
        }
    }
    for (id, (v, _, why)) in got {
        if !spec.targets_case(id) && !matches!(v, Verdict::Pass | Verdict::NotApplicable) {
            problems.push(format!(
                "defect {name}: {id} is {v} though it is not a target (one defect, one non-conformance): {why}"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(fails: &[(&str, &str)]) -> DefectSpec {
        let text = fails
            .iter()
            .map(|(c, i)| format!("\"{c}\" = \"{i}\""))
            .collect::<Vec<_>>()
            .join(", ");
        toml::from_str(&format!("fails = {{ {text} }}")).unwrap()
    }

    fn outcomes(rows: &[(&str, Verdict, &[&str])]) -> Outcomes {
        rows.iter()
            .map(|(id, v, items)| {
                let items = items.iter().map(|i| i.parse().unwrap()).collect();
                (id.to_string(), (*v, items, String::new()))
            })
            .collect()
    }

    #[test]
    fn a_defect_must_fail_its_case_at_the_declared_item() {
        let s = spec(&[("bf", "check:throttled")]);
        let right = outcomes(&[
            ("bf", Verdict::Fail, &["check:throttled"]),
            ("pw", Verdict::Pass, &[]),
        ]);
        assert!(judge_defect("d", &s, &right).is_empty());
        let wrong = outcomes(&[
            ("bf", Verdict::Fail, &["step:owner-can-log-in"]),
            ("pw", Verdict::Pass, &[]),
        ]);
        let p = judge_defect("d", &s, &wrong);
        assert!(
            p.len() == 1 && p[0].contains("instead of check:throttled"),
            "{p:?}"
        );
        let not_failed = outcomes(&[
            ("bf", Verdict::Inconclusive, &[]),
            ("pw", Verdict::Pass, &[]),
        ]);
        assert!(judge_defect("d", &s, &not_failed)[0].contains("expected FAIL"));
        let collateral = outcomes(&[
            ("bf", Verdict::Fail, &["check:throttled"]),
            ("pw", Verdict::Fail, &["step:x"]),
        ]);
        assert!(judge_defect("d", &s, &collateral)[0].contains("not a target"));
    }
}
