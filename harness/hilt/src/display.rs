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
    last_plain: Instant,
    /// A campaign's boards: label → (cases finished, cases selected).
    boards: std::collections::BTreeMap<String, (usize, usize)>,
}

impl Display {
    /// `quiet`: only case lines, no progress. A bar is drawn only when stderr is a terminal.
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {prefix}{wide_msg} {pos}/{len}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Display {
            quiet,
            bar,
            state: Mutex::new(State {
                last_plain: Instant::now(),
                boards: Default::default(),
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
            eprintln!("  … {}{msg}{at}", boards_line(&st.boards));
        }
    }

    /// Count a campaign board's case (`started`: its run began with `total` cases), and show every
    /// board's progress in front of the bar.
    fn board_progress(&self, label: &str, total: Option<usize>) {
        if label.is_empty() {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let entry = st.boards.entry(label.to_string()).or_insert((0, 0));
        match total {
            Some(t) => entry.1 = t,
            None => entry.0 += 1,
        }
        if let Some(bar) = &self.bar {
            bar.set_prefix(boards_line(&st.boards));
        }
    }
}

/// `reference 12/34 · no-lockout 9/34 · `, or nothing for a run of one board.
fn boards_line(boards: &std::collections::BTreeMap<String, (usize, usize)>) -> String {
    if boards.len() < 2 {
        return String::new();
    }
    let each: Vec<String> = boards
        .iter()
        .map(|(label, (done, of))| format!("{label} {done}/{of}"))
        .collect();
    format!("{} · ", each.join(" · "))
}

impl EventSink for Display {
    fn event(&self, e: &RunEvent) {
        match e {
            RunEvent::RunStarted {
                board,
                label,
                selected,
                in_suite,
                side_by_side,
            } => {
                let named = if label.is_empty() || label == board {
                    format!("board {board}")
                } else {
                    format!("board {label} ({board})")
                };
                let how = match side_by_side {
                    Some(n) if *n > 1 => format!(", {n} at a time, each on a fresh instance"),
                    Some(_) => ", each on a fresh instance".to_string(),
                    None => String::new(),
                };
                self.line(&format!(
                    "running {selected} of {in_suite} case(s) on {named}{how}"
                ));
                self.board_progress(label, Some(*selected));
            }
            RunEvent::CaseStarted {
                board,
                id,
                index,
                total,
            } => {
                self.state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .last_plain = Instant::now();
                self.progress(format!("[{}] {id}", at(board, *index, *total)), None);
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
                board,
                result,
                index,
                total,
            } => {
                self.line(&format!(
                    "[{}] {:<36} {:<14} {:>6.1} s  {}",
                    at(board, *index, *total),
                    result.id,
                    result.verdict.as_str(),
                    result.duration_ms as f64 / 1000.0,
                    one_line(&printable(&result.reason), 90)
                ));
                self.board_progress(board, None);
            }
            RunEvent::Interrupted { signal } => self.line(&format!(
                "{signal}: interrupted; the running case was stopped and its evidence kept"
            )),
            RunEvent::RunFinished {
                label,
                ran,
                counts,
                elapsed,
            } => {
                let counts: Vec<String> = counts.iter().map(|(v, n)| format!("{n} {v}")).collect();
                let counts = if counts.is_empty() {
                    "none".to_string()
                } else {
                    counts.join(", ")
                };
                let took = elapsed.as_secs_f64();
                if label.is_empty() {
                    self.finish();
                    println!("\n{ran} case(s) in {took:.1} s: {counts}");
                } else {
                    // Other boards of the campaign may still be running: the bar stays.
                    self.line(&format!(
                        "board {label}: {ran} case(s) in {took:.1} s: {counts}"
                    ));
                }
            }
        }
    }
}

impl Display {
    /// Clear the progress bar (the end of a run, or of a campaign).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `3/34`, or `vrb-2 3/34` on a campaign's board.
fn at(board: &str, index: usize, total: usize) -> String {
    if board.is_empty() {
        format!("{index}/{total}")
    } else {
        format!("{board} {index}/{total}")
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

#[cfg(test)]
mod tests {
    #[test]
    fn every_board_of_a_campaign_is_shown_with_its_progress() {
        let mut boards = std::collections::BTreeMap::new();
        assert_eq!(super::boards_line(&boards), "");
        boards.insert("reference".to_string(), (12, 34));
        assert_eq!(
            super::boards_line(&boards),
            "",
            "one board: the case lines say it all"
        );
        boards.insert("no-lockout".to_string(), (9, 34));
        assert_eq!(
            super::boards_line(&boards),
            "no-lockout 9/34 · reference 12/34 · "
        );
    }
}
