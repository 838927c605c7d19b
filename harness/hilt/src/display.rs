//! The terminal display, fed by [`RunEvent`]s: one line per case with its verdict by name, and inside
//! long steps a progress bar (attempt n of N, time left in a wait) when stderr is a terminal, or a
//! plain progress line every few seconds when it is not (no ANSI codes in logs written to files).
//! Device text is escaped before it reaches the terminal.

use hilt_report::printable::printable;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::events::{EventSink, RunEvent};

/// How often plain (non-terminal) output reports progress inside a case.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

pub struct Display {
    quiet: bool,
    bar: Option<ProgressBar>,
    state: Mutex<State>,
}

struct State {
    case_started: Instant,
    last_plain: Instant,
}

impl Display {
    /// `quiet`: only case lines, no progress. A bar is drawn only when stderr is a terminal.
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {wide_msg} {pos}/{len}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Display {
            quiet,
            bar,
            state: Mutex::new(State {
                case_started: Instant::now(),
                last_plain: Instant::now(),
            }),
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
    }

    fn progress(&self, msg: String, pos: Option<(usize, usize)>) {
        if self.quiet {
            return;
        }
        if let Some(bar) = &self.bar {
            if let Some((n, of)) = pos {
                bar.set_length(of as u64);
                bar.set_position(n as u64);
            }
            bar.set_message(msg);
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.last_plain.elapsed() >= PLAIN_EVERY {
            st.last_plain = Instant::now();
            let at = pos
                .map(|(n, of)| format!(" ({n}/{of})"))
                .unwrap_or_default();
            eprintln!("  … {msg}{at}");
        }
    }
}

impl EventSink for Display {
    fn event(&self, e: &RunEvent) {
        match e {
            RunEvent::RunStarted {
                board,
                selected,
                in_suite,
            } => self.line(&format!(
                "running {selected} of {in_suite} case(s) on board {board}"
            )),
            RunEvent::CaseStarted { id, index, total } => {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                st.case_started = Instant::now();
                st.last_plain = Instant::now();
                drop(st);
                self.progress(format!("[{index}/{total}] {id}"), None);
            }
            RunEvent::BudgetSet { .. } | RunEvent::StepFinished { .. } => {}
            RunEvent::AttemptRecorded {
                case,
                step,
                n,
                of,
                outcome,
            } => self.progress(
                format!(
                    "{case}: {step} attempt {n} of {of}: {}",
                    printable(outcome.unwrap_or("-"))
                ),
                Some((*n, *of)),
            ),
            RunEvent::Waiting {
                case,
                step,
                what,
                length,
            } => self.progress(
                format!("{case}: {step}: {what}, {:.1} s", length.as_secs_f64()),
                None,
            ),
            RunEvent::CaseFinished {
                result,
                index,
                total,
            } => {
                let took = self
                    .state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .case_started
                    .elapsed();
                self.line(&format!(
                    "[{index}/{total}] {:<36} {:<14} {:>6.1} s  {}",
                    result.id,
                    result.verdict.as_str(),
                    took.as_secs_f64(),
                    one_line(&printable(&result.reason), 90)
                ));
            }
            RunEvent::Interrupted { signal } => self.line(&format!(
                "{signal}: interrupted; the running case was stopped and its evidence kept"
            )),
            RunEvent::RunFinished {
                ran,
                counts,
                elapsed,
            } => {
                if let Some(bar) = &self.bar {
                    bar.finish_and_clear();
                }
                let counts: Vec<String> = counts.iter().map(|(v, n)| format!("{n} {v}")).collect();
                println!(
                    "\n{ran} case(s) in {:.1} s: {}",
                    elapsed.as_secs_f64(),
                    if counts.is_empty() {
                        "none".to_string()
                    } else {
                        counts.join(", ")
                    }
                );
            }
        }
    }
}

/// The first line of `s`, cut to `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= max {
        s
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
}
