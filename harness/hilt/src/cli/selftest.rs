use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

use super::Failure;
use hilt::suite::SuiteRoot;

#[derive(Args)]
pub struct SelftestArgs {
    /// Print the results as JSON: {"reference": {...}, "defects": {...}}
    #[arg(long)]
    json: bool,
    /// Virtual board profile (default: boards/vboard.toml)
    #[arg(long)]
    board: Option<PathBuf>,
    /// Suite directory (default: found from the current directory)
    #[arg(long)]
    suite: Option<PathBuf>,
    /// How many cases may run at once on fresh instances, over all board runs (default: see `hilt run --help`)
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
}

pub fn run(a: SelftestArgs) -> Result<u8, Failure> {
    let suite =
        SuiteRoot::discover(a.suite.as_deref()).map_err(|e| Failure::input(anyhow::anyhow!(e)))?;
    let board = suite.board(a.board.as_deref()).map_err(Failure::input)?;
    let scenarios = suite.scenarios().map_err(Failure::input)?;
    let exe = std::env::current_exe().map_err(Failure::undecided)?;
    let runs = 1 + board.launch.as_ref().map_or(0, |l| l.defects.len()) as u64;
    let bar = if a.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(runs)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("board runs in parallel");
    let slots = std::sync::Arc::new(hilt::runner::Slots::new(
        a.jobs.unwrap_or_else(hilt::runner::default_jobs),
    ));
    let result = hilt::selftest::run(&board, &scenarios, &exe, &slots, |done| {
        bar.inc(1);
        bar.set_message(format!("finished: {done}"));
    })
    .map_err(Failure::input)?;
    bar.finish_and_clear();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).map_err(Failure::undecided)?
        );
    } else {
        println!("reference board:");
        for (id, v) in &result.reference {
            println!("  {id:<36} {v}");
        }
        for (name, d) in &result.defects {
            println!("defect {name}:");
            for (id, v) in &d.verdicts {
                let failed: Vec<String> = d
                    .failing
                    .get(id)
                    .map(|items| items.iter().map(|i| i.to_string()).collect())
                    .unwrap_or_default();
                let mark = match d.targets.get(id) {
                    Some(want) => format!(
                        "target, must fail at {want}; failed at: {}",
                        if failed.is_empty() {
                            "-".to_string()
                        } else {
                            failed.join(", ")
                        }
                    ),
                    None => String::new(),
                };
                println!("  {id:<36} {v:<15} {mark}");
            }
        }
    }
    if result.problems.is_empty() {
        if !a.json {
            println!(
                "selftest OK: every scenario passes on the reference board and fails under its defect(s)"
            );
        }
        Ok(super::exit::OK)
    } else {
        for p in &result.problems {
            eprintln!("selftest problem: {p}");
        }
        Ok(super::exit::FAILED)
    }
}
