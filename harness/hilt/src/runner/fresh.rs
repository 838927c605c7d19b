//! Cases side by side, each on its own freshly launched instance of a virtual board: no case sees
//! another's state, and a suite that mostly waits on the device's timers finishes in about the time
//! of its longest case. The board's run takes a slot for each case in suite order and hands it to a
//! thread that runs the case and gives the slot back; results keep the suite's order whatever order
//! the cases end in. Only running cases have threads: a run waiting for a slot is one waiting thread.

use hilt_report::model::CaseResult;
use std::sync::Mutex;

use super::{Position, RunConfig, not_reachable, store};
use crate::board::BoardSession;
use crate::exec::{CaseControl, run_case};

pub(super) fn run_cases(cfg: &RunConfig, ctl: &CaseControl) -> Vec<CaseResult> {
    let total = cfg.cases.len();
    let results: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; total]);
    std::thread::scope(|scope| {
        for i in 0..total {
            let Some(slot) = cfg.slots.acquire(&cfg.cancel) else {
                break;
            };
            let results = &results;
            scope.spawn(move || {
                let result = one_case(cfg, ctl, i);
                drop(slot);
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(result);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// Launch an instance, run case `i` on it, stop it, then store the evidence.
fn one_case(cfg: &RunConfig, ctl: &CaseControl, i: usize) -> CaseResult {
    let case = &cfg.cases[i];
    let position = Position::new(cfg, i);
    ctl.events.event(&position.started(&case.id));
    let run = match BoardSession::open(cfg.board.clone(), &cfg.session) {
        Ok(session) => run_case(&session, case, ctl),
        Err(e) => not_reachable(case, e.to_string()),
    };
    let result = store(run, &cfg.out_dir);
    ctl.events.event(&position.finished(&result));
    result
}
