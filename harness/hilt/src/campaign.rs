//! Several boards in one run: each board on its own thread (its cases in order on one session, or
//! side by side on fresh instances within the run's shared slots), each with its own mock cloud,
//! its own signed report written the moment its cases end, then a signed campaign summary that
//! binds every board's report by digest. A run of one board writes its report straight into the
//! output directory, as it always has.

use hilt_model::profile::BoardProfile;
use hilt_report::campaign::{Campaign, CampaignBoard, SCHEMA};
use hilt_report::digest::sha256_file;
use hilt_report::keys::KeyPair;
use hilt_report::model::{Gate, Report};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::board::SessionOptions;
use crate::events::EventSink;
use crate::report::ReportInputs;
use crate::runner::{self, RunConfig, Shard, Slots};
use crate::suite::Case;

/// One board to test: a profile, the label its report and display lines carry, and (virtual
/// boards) the defects it is launched with.
#[derive(Debug, Clone)]
pub struct BoardPlan {
    pub label: String,
    pub profile: Arc<BoardProfile>,
    pub defects: Vec<String>,
}

/// What every board of the run shares.
pub struct Plan<'a> {
    pub boards: Vec<BoardPlan>,
    pub cases: Vec<Arc<Case>>,
    pub scenarios: &'a [Arc<Case>],
    pub suite_root: &'a Path,
    /// The selection in command-line form (filters, skips, shard).
    pub selection: Vec<String>,
    pub shard: Option<Shard>,
    pub out_dir: PathBuf,
    pub hilt_exe: PathBuf,
    pub cancel: hilt_link::Cancel,
    pub slots: Arc<Slots>,
    pub key: &'a KeyPair,
    pub development_key: bool,
}

/// A board's run, its report written and signed (or why it could not be).
pub struct BoardOutcome {
    pub label: String,
    /// Its report directory, relative to the output directory ("" for a run of one board).
    pub dir: String,
    /// None when the board's run panicked (then `written` says so).
    pub report: Option<Report>,
    pub written: anyhow::Result<PathBuf>,
}

impl Plan<'_> {
    /// Whether this run is a campaign (several boards, each under its label).
    pub fn is_campaign(&self) -> bool {
        self.boards.len() > 1
    }

    /// Run every board concurrently; outcomes in the order the boards were given.
    pub fn run(&self, events: &dyn EventSink) -> Vec<BoardOutcome> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .boards
                .iter()
                .map(|b| scope.spawn(move || self.run_board(b, events)))
                .collect();
            handles
                .into_iter()
                .zip(&self.boards)
                .map(|(h, b)| {
                    h.join().unwrap_or_else(|_| BoardOutcome {
                        label: b.label.clone(),
                        dir: b.label.clone(),
                        report: None,
                        written: Err(anyhow::anyhow!("the run of board {} panicked", b.label)),
                    })
                })
                .collect()
        })
    }

    fn run_board(&self, b: &BoardPlan, events: &dyn EventSink) -> BoardOutcome {
        let (label, dir) = if self.is_campaign() {
            (b.label.clone(), b.label.clone())
        } else {
            (String::new(), String::new())
        };
        let out_dir = self.out_dir.join(&dir);
        let cfg = RunConfig {
            board: b.profile.clone(),
            label,
            cases: self.cases.clone(),
            in_suite: self.scenarios.len(),
            out_dir: out_dir.clone(),
            session: SessionOptions {
                defects: b.defects.clone(),
                hilt_exe: self.hilt_exe.clone(),
                cancel: self.cancel.clone(),
            },
            cancel: self.cancel.clone(),
            slots: self.slots.clone(),
        };
        let output = runner::run(&cfg, events);
        let mut selection = self.selection.clone();
        for d in &b.defects {
            selection.extend(["--defect".to_string(), d.clone()]);
        }
        let inputs = ReportInputs {
            board: &b.profile,
            scenarios: self.scenarios,
            suite_root: self.suite_root,
            defects: &b.defects,
            selection,
            shard: self.shard,
            development_key: self.development_key,
        };
        let report = crate::report::build(&output, &inputs);
        let written = crate::report::write_with_html(&out_dir, &report, self.key);
        BoardOutcome {
            label: b.label.clone(),
            dir,
            report: Some(report),
            written,
        }
    }

    /// Write the signed campaign summary over `outcomes` (every board's report already signed).
    pub fn write_summary(
        &self,
        outcomes: &[BoardOutcome],
        started: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<(Campaign, PathBuf)> {
        let mut boards = Vec::new();
        for o in outcomes {
            let (envelope, report) = match (&o.written, &o.report) {
                (Ok(p), Some(r)) => (p, r),
                (Err(e), _) => {
                    anyhow::bail!("board {}: its report was not written: {e:#}", o.label)
                }
                (Ok(_), None) => anyhow::bail!("board {}: no report", o.label),
            };
            let digest = sha256_file(envelope)
                .map_err(|e| anyhow::anyhow!("{}: {e}", envelope.display()))?;
            boards.push(CampaignBoard::of(&o.label, &o.dir, digest, report));
        }
        let finished = chrono::Utc::now();
        let fmt = |t: &chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let campaign = Campaign {
            schema: SCHEMA.into(),
            suite: crate::report::suite_info(),
            started: fmt(&started),
            finished: fmt(&finished),
            duration_ms: (finished - started).num_milliseconds().max(0) as u64,
            host: crate::report::hostname(),
            selection: self.selection.clone(),
            development_key: self.development_key,
            interrupted: outcomes
                .iter()
                .any(|o| o.report.as_ref().is_some_and(|r| r.run.interrupted)),
            gate: Gate::worst(boards.iter().map(|b| b.gate)),
            boards,
        };
        let members: Vec<String> = outcomes.iter().map(|o| o.dir.clone()).collect();
        let value = serde_json::to_value(&campaign)?;
        let path =
            hilt_report::sign::write_signed_campaign(&self.out_dir, &value, &members, self.key)?;
        Ok((campaign, path))
    }
}
