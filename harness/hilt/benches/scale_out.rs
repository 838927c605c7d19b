//! What running boards side by side buys, measured in one run on this machine and printed as ratios:
//!
//! - eight virtual reference boards tested at once against one alone, each running its cases in
//!   order on one session (fresh instances per case off), the way a real unit would;
//! - the suite on one board with a fresh instance per case, side by side (the default), against the
//!   same cases in order on one session.
//!
//! Every run is checked to PASS every case, so a speed-up that broke a verdict cannot show as a
//! gain. `cargo bench -p hilt --bench scale_out`; `HILT_BENCH_FILTER=up.` narrows the suite.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hilt::campaign::{BoardPlan, Plan};
use hilt::runner::{Selection, Slots, default_jobs};
use hilt::suite::SuiteRoot;
use hilt_model::profile::BoardProfile;
use hilt_report::keys::KeyPair;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The reference board with fresh instances per case switched `fresh`.
fn board(suite: &SuiteRoot, fresh: bool) -> Arc<BoardProfile> {
    let mut profile = (*suite.board(None).expect("boards/vboard.toml")).clone();
    if let Some(l) = profile.launch.as_mut() {
        l.fresh_per_case = fresh;
    }
    Arc::new(profile)
}

/// Wall time of one `hilt run` over `boards` copies of `profile`, every case checked to PASS.
fn timed(suite: &SuiteRoot, profile: &Arc<BoardProfile>, boards: usize, jobs: usize) -> Duration {
    let scenarios = suite.scenarios().expect("scenarios");
    let selection = Selection {
        filter: std::env::var("HILT_BENCH_FILTER").ok(),
        ..Selection::default()
    };
    let out = tempfile::tempdir().expect("tempdir");
    let key = KeyPair::from_seed(&[7; 32]);
    let plan = Plan {
        boards: (0..boards)
            .map(|i| BoardPlan {
                label: format!("b{i}"),
                profile: profile.clone(),
                defects: Vec::new(),
            })
            .collect(),
        cases: selection.select(&scenarios),
        scenarios: &scenarios,
        suite_root: &suite.root,
        selection: selection.args(),
        shard: None,
        out_dir: out.path().to_path_buf(),
        hilt_exe: PathBuf::from(env!("CARGO_BIN_EXE_hilt")),
        cancel: hilt_link::Cancel::new(),
        slots: Arc::new(Slots::new(jobs)),
        key: &key,
        development_key: true,
    };
    let started = Instant::now();
    let outcomes = plan.run(&hilt::events::Discard);
    let took = started.elapsed();
    for o in &outcomes {
        let report = o.report.as_ref().expect("a report");
        for c in &report.cases {
            assert_eq!(
                c.verdict,
                hilt_model::Verdict::Pass,
                "board {}: {}: {}",
                o.label,
                c.id,
                c.reason
            );
        }
    }
    took
}

fn main() {
    let suite = SuiteRoot::discover(Some(&root())).expect("suite");
    let jobs = default_jobs();
    let sequential = board(&suite, false);
    let one = timed(&suite, &sequential, 1, jobs);
    let eight = timed(&suite, &sequential, 8, jobs);
    println!(
        "boards side by side (cases in order on one session each): 1 board {:.1} s, 8 boards {:.1} s: {:.2}x one board's wall time (target <= 1.5x)",
        one.as_secs_f64(),
        eight.as_secs_f64(),
        eight.as_secs_f64() / one.as_secs_f64()
    );
    let fresh = timed(&suite, &board(&suite, true), 1, jobs);
    println!(
        "one board, a fresh instance per case, {jobs} at a time: {:.1} s against {:.1} s in order on one session: {:.2}x the time ({:.1}x faster)",
        fresh.as_secs_f64(),
        one.as_secs_f64(),
        fresh.as_secs_f64() / one.as_secs_f64(),
        one.as_secs_f64() / fresh.as_secs_f64()
    );
}
