//! The runner: selects cases the way `cargo test` does (a substring filter, `--skip`, `--exact`), runs
//! them one at a time against one board session (they share the device), writes each case's evidence
//! as soon as it ends, and reports progress as typed [`RunEvent`]s. A cancelled run stops after the
//! running case, which ends INCONCLUSIVE with its evidence kept.

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

/// Which cases run, as on `cargo test`'s command line.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Keep cases whose id contains this (equals it with `exact`).
    pub filter: Option<String>,
    /// Drop cases whose id contains any of these (equals, with `exact`).
    pub skip: Vec<String>,
    pub exact: bool,
}

impl Selection {
    pub fn matches(&self, id: &str) -> bool {
        let hit = |pat: &str| {
            if self.exact {
                id == pat
            } else {
                id.contains(pat)
            }
        };
        self.filter.as_deref().is_none_or(hit) && !self.skip.iter().any(|s| hit(s))
    }

    /// The selection in command-line form, so a reader can repeat it; empty = every case.
    pub fn args(&self) -> Vec<String> {
        let mut out: Vec<String> = self.filter.iter().cloned().collect();
        for s in &self.skip {
            out.extend(["--skip".to_string(), s.clone()]);
        }
        if self.exact {
            out.push("--exact".into());
        }
        out
    }

    pub fn select(&self, scenarios: &[Arc<Case>]) -> Vec<Arc<Case>> {
        scenarios
            .iter()
            .filter(|s| self.matches(&s.id))
            .cloned()
            .collect()
    }
}

pub struct RunConfig {
    pub board: Arc<BoardProfile>,
    /// The cases to run, in order.
    pub cases: Vec<Arc<Case>>,
    /// How many scenarios the suite holds (for the report's "N of M ran").
    pub in_suite: usize,
    pub out_dir: PathBuf,
    pub session: SessionOptions,
    /// Set by a signal handler (or a test) to stop the run.
    pub cancel: Cancel,
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
        selected: total,
        in_suite: cfg.in_suite,
    });
    let ctl = CaseControl {
        cancel: cfg.cancel.clone(),
        events,
    };
    let mut session: Option<Result<BoardSession, String>> = None;
    let mut cases = Vec::new();
    for (i, s) in cfg.cases.iter().enumerate() {
        if cfg.cancel.is_cancelled() {
            break;
        }
        events.event(&RunEvent::CaseStarted {
            id: &s.id,
            index: i + 1,
            total,
        });
        let bench = session.get_or_insert_with(|| {
            BoardSession::open(cfg.board.clone(), &cfg.session).map_err(|e| e.to_string())
        });
        let run = match bench {
            Ok(b) => run_case(b, s, &ctl),
            Err(e) => not_reachable(s, e.clone()),
        };
        let result = store(run, &cfg.out_dir);
        events.event(&RunEvent::CaseFinished {
            result: &result,
            index: i + 1,
            total,
        });
        cases.push(result);
    }
    // Stop the board and its cloud, and remove the state directory, before anything is reported.
    drop(session);
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

/// `SIGINT`, `SIGTERM` or `cancelled` for a cancellation code.
pub fn signal_name(code: usize) -> &'static str {
    match code as i32 {
        nix::libc::SIGINT => "SIGINT",
        nix::libc::SIGTERM => "SIGTERM",
        _ => "cancelled",
    }
}

fn not_reachable(s: &Case, error: String) -> CaseRun {
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

/// Run every scenario in order, without a display or signals (for selftest); evidence goes to `out`.
pub fn run_sequential(
    board: &Arc<BoardProfile>,
    scenarios: &[Arc<Case>],
    opts: &SessionOptions,
    out: &Path,
) -> Vec<CaseResult> {
    let cfg = RunConfig {
        board: board.clone(),
        cases: scenarios.to_vec(),
        in_suite: scenarios.len(),
        out_dir: out.to_path_buf(),
        session: opts.clone(),
        cancel: Cancel::new(),
    };
    run(&cfg, &crate::events::Discard).cases
}

#[cfg(test)]
mod tests {
    use super::Selection;

    #[test]
    fn selection_works_like_cargo_test() {
        let all = Selection::default();
        assert!(all.matches("bf.console.lockout"));
        let f = Selection {
            filter: Some("console".into()),
            skip: vec!["lockout".into()],
            exact: false,
        };
        assert!(f.matches("pw.console.x") && !f.matches("bf.console.lockout"));
        assert!(!f.matches("sc.cloud.tls-only"));
        let exact = Selection {
            filter: Some("pw".into()),
            skip: vec![],
            exact: true,
        };
        assert!(!exact.matches("pw.console.x") && exact.matches("pw"));
        assert_eq!(f.args(), ["console", "--skip", "lockout"]);
    }
}
