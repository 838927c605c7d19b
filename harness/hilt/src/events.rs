//! Typed run events: the runner and the executor emit them, and the terminal display, the summary and
//! the report are fed from them (nextest's `TestEventKind` is the model).

use hilt_model::Verdict;
use hilt_report::model::CaseResult;
use std::time::Duration;

/// Something that happened during a run.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// Cases were selected; `selected` of the `in_suite` scenarios will run against `board`
    /// (called `label` in a campaign's display; empty for a run of one board), `side_by_side` of
    /// them at once on fresh instances when the board allows it.
    RunStarted {
        board: &'a str,
        label: &'a str,
        selected: usize,
        in_suite: usize,
        side_by_side: Option<usize>,
    },
    /// A case began on the board labelled `board`; `index` counts from 1.
    CaseStarted {
        board: &'a str,
        id: &'a str,
        index: usize,
        total: usize,
    },
    /// The case's time budget, derived from its scenario and the IXIT.
    BudgetSet { id: &'a str, budget: Duration },
    /// One attempt of an action step was recorded (`n` of `of`).
    AttemptRecorded {
        case: &'a str,
        step: &'a str,
        n: usize,
        of: usize,
        outcome: Option<&'a str>,
    },
    /// The case waits on the device or the bench (a lockout, a fault window, a flow).
    Waiting {
        case: &'a str,
        step: &'a str,
        what: &'a str,
        length: Duration,
    },
    StepFinished {
        case: &'a str,
        step: &'a str,
        attempts: usize,
    },
    CaseFinished {
        board: &'a str,
        result: &'a CaseResult,
        index: usize,
        total: usize,
    },
    /// A signal asked the run to stop; the running case ends INCONCLUSIVE and nothing else starts.
    Interrupted { signal: &'a str },
    RunFinished {
        label: &'a str,
        ran: usize,
        counts: &'a [(Verdict, usize)],
        elapsed: Duration,
    },
}

/// Where events go. Implemented for closures, so tests can collect them.
pub trait EventSink: Sync {
    fn event(&self, e: &RunEvent);
}

impl<F: Fn(&RunEvent) + Sync> EventSink for F {
    fn event(&self, e: &RunEvent) {
        self(e)
    }
}

/// A sink that drops everything.
pub struct Discard;

impl EventSink for Discard {
    fn event(&self, _: &RunEvent) {}
}
