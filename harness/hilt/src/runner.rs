//! The runner: every (scenario × board) is a libtest-mimic trial, so filtering, `--list`, `--skip` and
//! `--exact` behave like `cargo test`. Cases on one board run one at a time (they share the device);
//! results are collected into the report model.

use hilt_model::Verdict;
use hilt_model::profile::BoardProfile;
use hilt_model::scenario::Scenario;
use hilt_report::digest::sha256_bytes;
use hilt_report::model::{CaseResult, Evidence};
use libtest_mimic::{Completion, Failed, Trial};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::board::{BoardSession, SessionOptions};
use crate::exec::{CaseRun, run_case};

pub struct RunConfig {
    pub board: Arc<BoardProfile>,
    pub scenarios: Vec<Arc<Scenario>>,
    pub out_dir: PathBuf,
    pub session: SessionOptions,
    pub args: libtest_mimic::Arguments,
}

pub struct RunOutput {
    /// Results of the cases that ran (filtered-out cases are absent), in scenario order.
    pub cases: Vec<CaseResult>,
    pub conclusion: libtest_mimic::Conclusion,
    pub started: chrono::DateTime<chrono::Utc>,
    pub finished: chrono::DateTime<chrono::Utc>,
}

type SharedSession = Arc<Mutex<Option<Result<BoardSession, String>>>>;

pub fn run(cfg: &RunConfig) -> RunOutput {
    let started = chrono::Utc::now();
    let session: SharedSession = Arc::new(Mutex::new(None));
    let results: Arc<Mutex<Vec<CaseResult>>> = Arc::default();
    let trials = cfg
        .scenarios
        .iter()
        .map(|s| {
            let (s, session, results) = (s.clone(), session.clone(), results.clone());
            let (board, opts, out) = (cfg.board.clone(), cfg.session.clone(), cfg.out_dir.clone());
            Trial::ignorable_test(s.id.clone(), move || {
                let run = with_session(&session, &board, &opts, |sess| run_case(sess, &s))
                    .unwrap_or_else(|e| not_reachable(&s, e));
                let result = store(run, &out);
                let outcome = outcome(&result);
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(result);
                outcome
            })
            .with_kind(cfg.board.name())
        })
        .collect();
    let conclusion = libtest_mimic::run(&cfg.args, trials);
    // Stop the board before the report is written.
    drop(session.lock().unwrap_or_else(|p| p.into_inner()).take());
    let mut cases = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    let order = |id: &str| cfg.scenarios.iter().position(|s| s.id == id);
    cases.sort_by_key(|c| order(&c.id));
    RunOutput {
        cases,
        conclusion,
        started,
        finished: chrono::Utc::now(),
    }
}

/// Open the board on first use; a board that cannot be opened makes every case ERROR, never FAIL.
fn with_session<T>(
    shared: &SharedSession,
    board: &Arc<BoardProfile>,
    opts: &SessionOptions,
    f: impl FnOnce(&BoardSession) -> T,
) -> Result<T, String> {
    let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
    let slot = guard
        .get_or_insert_with(|| BoardSession::open(board.clone(), opts).map_err(|e| e.to_string()));
    match slot {
        Ok(s) => Ok(f(s)),
        Err(e) => Err(e.clone()),
    }
}

fn not_reachable(s: &Scenario, error: String) -> CaseRun {
    CaseRun {
        result: CaseResult {
            id: s.id.clone(),
            title: s.title.clone(),
            family: s.family.clone(),
            kind: s.kind,
            verdict: Verdict::Error,
            reason: format!("the board could not be reached: {error}"),
            started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            duration_ms: 0,
            provisions: s.provisions.clone(),
            steps: Vec::new(),
            checks: Vec::new(),
            evidence: Vec::new(),
        },
        evidence: Vec::new(),
    }
}

/// Write a case's evidence under `out/evidence/<case>/` and reference it from the result by digest.
fn store(run: CaseRun, out: &Path) -> CaseResult {
    let mut result = run.result;
    let dir = out.join("evidence").join(&result.id);
    for file in run.evidence {
        let rel = format!("evidence/{}/{}", result.id, file.name);
        let path = dir.join(&file.name);
        let written = std::fs::create_dir_all(path.parent().unwrap_or(&dir))
            .and_then(|()| hilt_report::atomic::write_atomic(&path, &file.bytes));
        match written {
            Ok(()) => result.evidence.push(Evidence {
                path: rel,
                sha256: sha256_bytes(&file.bytes),
                media_type: file.media_type,
                description: file.description,
            }),
            Err(e) => {
                // Evidence that cannot be kept leaves the verdict unsupported.
                result.verdict = Verdict::Error;
                result.reason = format!("cannot write evidence {rel}: {e}");
            }
        }
    }
    result
}

fn outcome(r: &CaseResult) -> Result<Completion, Failed> {
    match r.verdict {
        Verdict::Pass => Ok(Completion::Completed),
        Verdict::NotApplicable | Verdict::NotTested => Ok(Completion::ignored_with(format!(
            "{}: {}",
            r.verdict, r.reason
        ))),
        Verdict::Fail | Verdict::Error | Verdict::Inconclusive => {
            Err(format!("{}: {}", r.verdict, r.reason).into())
        }
    }
}

/// Run every scenario in order without the trial harness (for selftest); evidence goes to `out`.
pub fn run_sequential(
    board: &Arc<BoardProfile>,
    scenarios: &[Arc<Scenario>],
    opts: &SessionOptions,
    out: &Path,
) -> Vec<CaseResult> {
    let session: SharedSession = Arc::new(Mutex::new(None));
    scenarios
        .iter()
        .map(|s| {
            let run = with_session(&session, board, opts, |sess| run_case(sess, s))
                .unwrap_or_else(|e| not_reachable(s, e));
            store(run, out)
        })
        .collect()
}
