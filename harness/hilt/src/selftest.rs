//! `hilt selftest`: the suite tests itself against the virtual reference board. Every scenario must PASS
//! (or be NOT_APPLICABLE) on the reference board, every defect must make each case it targets FAIL and
//! no other case, and every scenario must be the target of some defect: a case nothing can fail is a bug.

use hilt_model::Verdict;
use hilt_model::profile::BoardProfile;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::suite::Case;

use crate::board::SessionOptions;
use crate::runner::run_sequential;

#[derive(Debug, Serialize)]
pub struct Selftest {
    pub reference: BTreeMap<String, Verdict>,
    pub defects: BTreeMap<String, DefectRun>,
    /// Everything that is wrong; empty = the suite can tell a conformant board from each defect.
    #[serde(skip)]
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DefectRun {
    pub targets: Vec<String>,
    pub verdicts: BTreeMap<String, Verdict>,
}

pub fn run(
    board: &Arc<BoardProfile>,
    scenarios: &[Arc<Case>],
    hilt_exe: &std::path::Path,
    progress: impl FnMut(&str) + Send,
) -> anyhow::Result<Selftest> {
    let launch = board.launch.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: selftest needs a virtual board (a [launch] section with defects)",
            board.path.display()
        )
    })?;
    // The board runs are independent processes that mostly wait on the device's timers: run them
    // side by side, the reference board first in the list.
    let mut runs: Vec<Option<String>> = vec![None];
    runs.extend(launch.defects.keys().cloned().map(Some));
    let progress = std::sync::Mutex::new(progress);
    let results: Vec<anyhow::Result<BTreeMap<String, Verdict>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|defect| {
                let progress = &progress;
                scope.spawn(move || {
                    let out = tempfile::tempdir()?;
                    let opts = SessionOptions {
                        defects: defect.iter().cloned().collect(),
                        hilt_exe: hilt_exe.to_path_buf(),
                    };
                    let cases = run_sequential(board, scenarios, &opts, out.path());
                    (progress.lock().unwrap_or_else(|p| p.into_inner()))(
                        defect.as_deref().unwrap_or("reference board"),
                    );
                    Ok(cases.into_iter().map(|c| (c.id, c.verdict)).collect())
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
    let reference = results.next().expect("the reference run is first")?;
    let mut problems = Vec::new();
    for (id, v) in &reference {
        if !matches!(v, Verdict::Pass | Verdict::NotApplicable) {
            problems.push(format!(
                "reference board: {id} is {v}, expected PASS or NOT_APPLICABLE"
            ));
        }
    }
    let mut defects = BTreeMap::new();
    for (name, spec) in &launch.defects {
        let got = results.next().expect("one run per defect")?;
        for t in &spec.targets {
            match got.get(t) {
                None => problems.push(format!(
                    "defect {name}: target {t} is not a scenario of this suite"
                )),
                Some(Verdict::Fail) => {}
                Some(v) => problems.push(format!("defect {name}: {t} is {v}, expected FAIL")),
            }
        }
        for (id, v) in &got {
            if !spec.targets.contains(id) && !matches!(v, Verdict::Pass | Verdict::NotApplicable) {
                problems.push(format!("defect {name}: {id} is {v} though it is not a target (one defect, one non-conformance)"));
            }
        }
        defects.insert(
            name.clone(),
            DefectRun {
                targets: spec.targets.clone(),
                verdicts: got,
            },
        );
    }
    for s in scenarios {
        if !launch.defects.values().any(|d| d.targets.contains(&s.id)) {
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
