//! The runner: selects cases the way `cargo test` does, runs them against a board, writes each case's
//! evidence as soon as it ends, and reports progress as typed [`RunEvent`]s.
//!
//! A board runs its cases one at a time on one session (a real unit does one thing at a time),
//! unless its launch declares `fresh_per_case`: then every case gets its own freshly launched
//! instance, and cases run side by side up to the run's [`Slots`] (shared by every board of a
//! campaign). A cancelled run starts nothing more; running cases end INCONCLUSIVE with their
//! evidence kept.

mod fresh;
mod selection;
mod slots;

pub use selection::{Selection, Shard};
pub use slots::Slots;

use hilt_link::Cancel;
use hilt_model::Verdict;
use hilt_model::profile::BoardProfile;
use hilt_report::digest::sha256_bytes;
use hilt_report::model::{CaseResult, Evidence};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::suite::Case;
use std::time::Instant;

use crate::board::{BoardSession, SessionOptions};
use crate::events::{EventSink, RunEvent};
use crate::exec::{CaseControl, CaseRun, run_case};

pub struct RunConfig {
    pub board: Arc<BoardProfile>,
    /// What the display calls this board: empty for a run of one board, else its campaign label.
    pub label: String,
    /// The cases to run, in order.
    pub cases: Vec<Arc<Case>>,
    /// How many scenarios the suite holds (for the report's "N of M ran").
    pub in_suite: usize,
    pub out_dir: PathBuf,
    pub session: SessionOptions,
    /// Set by a signal handler (or a test) to stop the run.
    pub cancel: Cancel,
    /// How many fresh instances may run cases at once, across the whole run.
    pub slots: Arc<Slots>,
}

/// How many cases run at once on fresh instances when nothing says otherwise: sixteen per core. A
/// case on a virtual board mostly waits on the device's timers (a lockout, an update interval, a flow
/// window) and a whole suite costs about 3 CPU-seconds, so the number of cores is far too low a
/// bound: on the 2-core build machine 32 at a time start the whole suite at once, which then
/// finishes in about its longest case, with every timing-sensitive case inside its bounds (measured
/// under `hilt selftest`, which runs the suite once per defect through the same slots).
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 16
}

impl RunConfig {
    /// Whether each case runs on its own freshly launched instance (and cases run side by side).
    pub fn fresh_per_case(&self) -> bool {
        self.board.launch.as_ref().is_some_and(|l| l.fresh_per_case)
    }
}

pub struct RunOutput {
    /// Results of the cases that ran, in order.
    pub cases: Vec<CaseResult>,
    pub in_suite: usize,
    pub started: chrono::DateTime<chrono::Utc>,
    pub finished: chrono::DateTime<chrono::Utc>,
    /// The cancellation code (a signal number) when the run was stopped early.
    pub interrupted: Option<usize>,
}

pub fn run(cfg: &RunConfig, events: &dyn EventSink) -> RunOutput {
    let started = chrono::Utc::now();
    let clock = Instant::now();
    let total = cfg.cases.len();
    events.event(&RunEvent::RunStarted {
        board: cfg.board.name(),
        label: &cfg.label,
        selected: total,
        in_suite: cfg.in_suite,
        side_by_side: cfg
            .fresh_per_case()
            .then(|| cfg.slots.capacity().min(total)),
    });
    let ctl = CaseControl {
        cancel: cfg.cancel.clone(),
        events,
    };
    let cases = if cfg.fresh_per_case() {
        fresh::run_cases(cfg, &ctl)
    } else {
        run_on_one_session(cfg, &ctl)
    };
    let interrupted = cfg.cancel.reason();
    if let Some(code) = interrupted {
        events.event(&RunEvent::Interrupted {
            signal: signal_name(code),
        });
    }
    let counts: Vec<(Verdict, usize)> = Verdict::ALL
        .iter()
        .map(|v| (*v, cases.iter().filter(|c| c.verdict == *v).count()))
        .filter(|(_, n)| *n > 0)
        .collect();
    events.event(&RunEvent::RunFinished {
        label: &cfg.label,
        ran: cases.len(),
        counts: &counts,
        elapsed: clock.elapsed(),
    });
    RunOutput {
        cases,
        in_suite: cfg.in_suite,
        started,
        finished: chrono::Utc::now(),
        interrupted,
    }
}

/// The cases in order on one session, opened when the first case starts and closed (the board and
/// its cloud stopped, its state removed) before anything is reported.
fn run_on_one_session(cfg: &RunConfig, ctl: &CaseControl) -> Vec<CaseResult> {
    let mut session: Option<Result<BoardSession, String>> = None;
    let mut cases = Vec::new();
    for (i, s) in cfg.cases.iter().enumerate() {
        if cfg.cancel.is_cancelled() {
            break;
        }
        let position = Position::new(cfg, i);
        ctl.events.event(&position.started(&s.id));
        let bench = session.get_or_insert_with(|| {
            BoardSession::open(cfg.board.clone(), &cfg.session).map_err(|e| e.to_string())
        });
        let run = match bench {
            Ok(b) => run_case(b, s, ctl),
            Err(e) => not_reachable(s, e.clone()),
        };
        let result = store(run, &cfg.out_dir);
        ctl.events.event(&position.finished(&result));
        cases.push(result);
    }
    drop(session);
    cases
}

/// Where a case stands in its board's run, for its events.
pub(crate) struct Position<'a> {
    board: &'a str,
    index: usize,
    total: usize,
}

impl<'a> Position<'a> {
    pub(crate) fn new(cfg: &'a RunConfig, i: usize) -> Self {
        Position {
            board: &cfg.label,
            index: i + 1,
            total: cfg.cases.len(),
        }
    }

    pub(crate) fn started<'e>(&'e self, id: &'e str) -> RunEvent<'e> {
        RunEvent::CaseStarted {
            board: self.board,
            id,
            index: self.index,
            total: self.total,
        }
    }

    pub(crate) fn finished<'e>(&'e self, result: &'e CaseResult) -> RunEvent<'e> {
        RunEvent::CaseFinished {
            board: self.board,
            result,
            index: self.index,
            total: self.total,
        }
    }
}

/// `SIGINT`, `SIGTERM` or `cancelled` for a cancellation code.
pub fn signal_name(code: usize) -> &'static str {
    match code as i32 {
        nix::libc::SIGINT => "SIGINT",
        nix::libc::SIGTERM => "SIGTERM",
        _ => "cancelled",
    }
}

pub(crate) fn not_reachable(s: &Case, error: String) -> CaseRun {
    CaseRun {
        result: CaseResult {
            id: s.id.clone(),
            title: s.title.clone(),
            family: s.family.clone(),
            kind: s.kind,
            verdict: Verdict::Error,
            reason: format!("the board could not be reached: {error}"),
            notes: Vec::new(),
            started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            duration_ms: 0,
            budget_ms: None,
            provisions: s.provisions.clone(),
            steps: Vec::new(),
            checks: Vec::new(),
            evidence: Vec::new(),
        },
        evidence: Vec::new(),
    }
}

/// Write a case's evidence under `out/evidence/<case>/` and reference it from the result by digest.
pub(crate) fn store(run: CaseRun, out: &Path) -> CaseResult {
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
                let trouble = format!("cannot write evidence {rel}: {e}");
                // A FAIL already seen stands (its attempts are in the report); anything else is left
                // unsupported by evidence.
                if result.verdict == Verdict::Fail {
                    result.notes.push(trouble);
                } else {
                    result.verdict = Verdict::Error;
                    result.reason = trouble;
                }
            }
        }
    }
    result
}

/// Run every scenario, without a display or signals (for selftest), sharing `slots` with whatever
/// else runs; evidence goes to `out`.
pub fn run_quietly(
    board: &Arc<BoardProfile>,
    scenarios: &[Arc<Case>],
    opts: &SessionOptions,
    slots: &Arc<Slots>,
    out: &Path,
) -> Vec<CaseResult> {
    let cfg = RunConfig {
        board: board.clone(),
        label: String::new(),
        cases: scenarios.to_vec(),
        in_suite: scenarios.len(),
        out_dir: out.to_path_buf(),
        session: opts.clone(),
        cancel: Cancel::new(),
        slots: slots.clone(),
    };
    run(&cfg, &crate::events::Discard).cases
}
