//! `hilt run`: the suite against one board, or several side by side (a campaign), each with its own
//! signed report; the exit code is the worst gate.

use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};

use super::{Failure, exit, summary};
use hilt::campaign::{BoardOutcome, BoardPlan, Plan};
use hilt::display::Display;
use hilt::runner::{self, Selection, Shard, Slots};
use hilt::suite::SuiteRoot;
use hilt_link::Cancel;
use hilt_model::profile::BoardProfile;
use hilt_report::model::Gate;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[derive(Args)]
pub struct RunArgs {
    /// Run only cases whose id contains this string (exact match with --exact)
    filter: Option<String>,
    /// Board profile (default: the virtual reference board, boards/vboard.toml). Repeat it to test
    /// several boards side by side, each with its own signed report, under a signed campaign summary
    #[arg(long = "board", value_name = "PROFILE")]
    boards: Vec<PathBuf>,
    /// A campaign file listing the boards to test side by side, with labels and defects
    #[arg(long, value_name = "FILE", conflicts_with_all = ["boards", "defects"])]
    campaign: Option<PathBuf>,
    /// Report directory (default: reports/runs/<UTC time>-<board>/)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Lab signing key (PKCS#8 PEM). Without it a per-user development key is used and the report says so
    #[arg(long)]
    key: Option<PathBuf>,
    /// Also write the results as JUnit XML here, for CI test reporting (one test suite per board)
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Reach the board through this labgrid place: replaces the profile's `[labgrid] place`, or adds
    /// one with labgrid's default coordinator and client (one board only)
    #[arg(long, value_name = "NAME", conflicts_with = "campaign")]
    labgrid_place: Option<String>,
    /// Launch the virtual board(s) with this defect (repeatable)
    #[arg(long = "defect", value_name = "NAME")]
    defects: Vec<String>,
    /// Suite directory holding test-cases/, boards/ and fixtures/ (default: found from the current directory)
    #[arg(long)]
    suite: Option<PathBuf>,
    /// Skip cases whose id contains this string (repeatable)
    #[arg(long)]
    skip: Vec<String>,
    /// Match the filter and --skip exactly
    #[arg(long)]
    exact: bool,
    /// Run only shard K of N of the selected cases (a CI matrix; merge with `hilt report merge`)
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// How many cases may run at once on fresh instances of boards that allow it (default: 16 per core)
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// List the cases that would run, and exit
    #[arg(long)]
    list: bool,
    /// Print one character per case instead of one line
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(a: RunArgs) -> Result<u8, Failure> {
    let suite =
        SuiteRoot::discover(a.suite.as_deref()).map_err(|e| Failure::input(anyhow::anyhow!(e)))?;
    let boards = plan_boards(&a, &suite)?;
    let scenarios = suite.scenarios().map_err(Failure::input)?;
    let selection = Selection {
        filter: a.filter.clone(),
        skip: a.skip.clone(),
        exact: a.exact,
        shard: a.shard,
    };
    let cases = selection.select(&scenarios);
    if a.list {
        for s in &cases {
            println!("{}: case", s.id);
        }
        return Ok(exit::OK);
    }
    if cases.is_empty() {
        // A typo in a CI filter must not open the release gate: nothing is signed.
        return Err(Failure::input(anyhow::anyhow!(
            "no case matches the selection {:?}; the suite holds {} case(s) ({}); nothing was run or signed",
            selection.args().join(" "),
            scenarios.len(),
            scenarios
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let hilt_exe = std::env::current_exe()
        .context("cannot locate the hilt executable")
        .map_err(Failure::undecided)?;
    let signer = Signer::load(a.key.as_deref())?;
    let out_dir = match &a.out {
        Some(d) => d.clone(),
        None => suite.runs_dir().join(format!(
            "{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            if boards.len() > 1 {
                "campaign"
            } else {
                boards[0].profile.name()
            }
        )),
    };
    prepare_out_dir(&out_dir).map_err(Failure::input)?;
    if let Some(path) = &a.junit {
        check_writable(path).map_err(Failure::input)?;
    }
    let cancel = Cancel::new();
    install_signal_handlers(&cancel)
        .context("cannot install signal handlers")
        .map_err(Failure::undecided)?;
    let started = chrono::Utc::now();
    let plan = Plan {
        boards,
        cases,
        scenarios: &scenarios,
        suite_root: &suite.root,
        selection: selection.args(),
        shard: a.shard,
        out_dir: out_dir.clone(),
        hilt_exe,
        cancel: cancel.clone(),
        slots: Arc::new(Slots::new(a.jobs.unwrap_or_else(runner::default_jobs))),
        key: &signer.key,
        development_key: signer.public.is_some(),
    };
    let display = Display::new(a.quiet);
    let outcomes = plan.run(&display);
    display.finish();
    let gate = if plan.is_campaign() {
        finish_campaign(&plan, &outcomes, started, &signer)?
    } else {
        finish_one(&outcomes[0], &signer)?
    };
    if let Some(path) = &a.junit {
        write_junit(path, &outcomes)?;
    }
    Ok(match cancel.reason() {
        Some(signal) => {
            println!(
                "the run was interrupted by {}: the report above is partial",
                runner::signal_name(signal)
            );
            exit::interrupted(signal)
        }
        None => gate.exit_code(),
    })
}

/// The boards to test: a campaign file's, or each `--board` (the default board when none), labelled
/// by board name (`vrb`, `vrb-2`, … when one is given twice), every one with `--defect`s.
/// The profile reached through labgrid place `place` instead of its own (or of none).
fn with_place(
    profile: std::sync::Arc<hilt_model::profile::BoardProfile>,
    place: &str,
) -> anyhow::Result<std::sync::Arc<hilt_model::profile::BoardProfile>> {
    if place.trim().is_empty() || place.len() > 256 || place.chars().any(char::is_control) {
        anyhow::bail!(
            "--labgrid-place {place:?}: give a place name (1 to 256 printable characters)"
        );
    }
    let mut p = (*profile).clone();
    match &mut p.labgrid {
        Some(labgrid) => labgrid.place = place.to_string(),
        None => p.labgrid = Some(hilt_model::profile::LabgridPlace::new(place)),
    }
    Ok(std::sync::Arc::new(p))
}

fn plan_boards(a: &RunArgs, suite: &SuiteRoot) -> Result<Vec<BoardPlan>, Failure> {
    if let Some(file) = &a.campaign {
        let campaign = hilt_model::campaign::Campaign::load(file).map_err(Failure::input)?;
        let mut plans = Vec::new();
        for b in &campaign.boards {
            let profile = suite.board(Some(&b.profile)).map_err(Failure::input)?;
            for d in &b.defects {
                if !has_defect(&profile, d.get_ref()) {
                    let why = format!(
                        "{} has no defect named {:?}",
                        profile.path.display(),
                        d.get_ref()
                    );
                    return Err(Failure::input(campaign.error(d.span(), why)));
                }
            }
            plans.push(BoardPlan {
                label: b.label.clone(),
                profile,
                defects: b.defects.iter().map(|d| d.get_ref().clone()).collect(),
            });
        }
        return Ok(plans);
    }
    let paths: Vec<Option<&Path>> = if a.boards.is_empty() {
        vec![None]
    } else {
        a.boards.iter().map(|p| Some(p.as_path())).collect()
    };
    if a.labgrid_place.is_some() && paths.len() > 1 {
        return Err(Failure::input(anyhow::anyhow!(
            "--labgrid-place names the place of one board; give one --board (or a [labgrid] place in each profile)"
        )));
    }
    let mut plans: Vec<BoardPlan> = Vec::new();
    for path in paths {
        let mut profile = suite.board(path).map_err(Failure::input)?;
        if let Some(place) = &a.labgrid_place {
            profile = with_place(profile, place).map_err(Failure::input)?;
        }
        if let Some(bad) = a.defects.iter().find(|d| !has_defect(&profile, d)) {
            return Err(Failure::input(anyhow::anyhow!(
                "{}: no defect named {bad:?}",
                profile.path.display()
            )));
        }
        let name = profile.name().to_string();
        let same = plans.iter().filter(|p| p.profile.name() == name).count();
        plans.push(BoardPlan {
            label: if same == 0 {
                name
            } else {
                format!("{name}-{}", same + 1)
            },
            profile,
            defects: a.defects.clone(),
        });
    }
    Ok(plans)
}

fn has_defect(profile: &BoardProfile, defect: &str) -> bool {
    profile
        .launch
        .as_ref()
        .is_some_and(|l| l.defects.contains_key(defect))
}

/// One board: its summary and where its report is; the gate is its report's.
fn finish_one(o: &BoardOutcome, signer: &Signer) -> Result<Gate, Failure> {
    let envelope = match &o.written {
        Ok(p) => p.clone(),
        Err(e) => return Err(Failure::input(anyhow::anyhow!("{e:#}"))),
    };
    let report = o
        .report
        .as_ref()
        .ok_or_else(|| Failure::undecided(anyhow::anyhow!("the run produced no report")))?;
    summary::print(report);
    let dir = parent_of(&envelope);
    Written {
        report: dir.join("report.json"),
        html: dir.join("report.html"),
        envelope,
    }
    .print(signer);
    Ok(report.summary.gate)
}

/// Several boards: one line per board, the signed campaign summary, and the worst gate.
fn finish_campaign(
    plan: &Plan,
    outcomes: &[BoardOutcome],
    started: chrono::DateTime<chrono::Utc>,
    signer: &Signer,
) -> Result<Gate, Failure> {
    println!();
    for o in outcomes {
        match (&o.report, &o.written) {
            (Some(r), Ok(envelope)) => println!(
                "board {:<20} {:<15} {}  ({})",
                o.label,
                gate_name(r.summary.gate),
                counts(r),
                envelope.display()
            ),
            (_, Err(e)) => println!("board {:<20} NOT WRITTEN     {e:#}", o.label),
            (None, Ok(_)) => {}
        }
    }
    let (campaign, path) = plan
        .write_summary(outcomes, started)
        .context("cannot write the campaign summary")
        .map_err(Failure::input)?;
    println!(
        "\ncampaign: {} board(s), {}",
        campaign.boards.len(),
        gate_name(campaign.gate)
    );
    Written {
        report: path.with_file_name("campaign.json"),
        html: PathBuf::new(),
        envelope: path,
    }
    .print(signer);
    Ok(campaign.gate)
}

fn gate_name(g: Gate) -> &'static str {
    match g {
        Gate::Conformant => "CONFORMANT",
        Gate::NonConformant => "NON-CONFORMANT",
        Gate::Undecided => "UNDECIDED",
    }
}

fn counts(r: &hilt_report::model::Report) -> String {
    r.summary
        .cases
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(v, n)| format!("{n} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parent_of(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Every board's results in one JUnit file (a rendering of the signed reports).
fn write_junit(path: &Path, outcomes: &[BoardOutcome]) -> Result<(), Failure> {
    let reports: Vec<(&str, &hilt_report::model::Report)> = outcomes
        .iter()
        .filter_map(|o| o.report.as_ref().map(|r| (o.label.as_str(), r)))
        .collect();
    let labelled: Vec<(&str, &hilt_report::model::Report)> = if reports.len() == 1 {
        vec![("", reports[0].1)]
    } else {
        reports
    };
    let xml = hilt_report::junit::render_campaign(&labelled)
        .context("JUnit rendering")
        .map_err(Failure::undecided)?;
    hilt_report::atomic::write_atomic(path, xml.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(Failure::input)
}

/// The signing key: the lab's, or the per-user development key (whose public half is printed).
struct Signer {
    key: hilt_report::keys::KeyPair,
    /// Set for the development key.
    public: Option<PathBuf>,
}

impl Signer {
    fn load(lab_key: Option<&Path>) -> Result<Signer, Failure> {
        match lab_key {
            Some(k) => Ok(Signer {
                key: hilt_report::keys::load_private(k).map_err(Failure::input)?,
                public: None,
            }),
            None => {
                let (key, public) = hilt::devkey::load_or_create()
                    .context("development signing key")
                    .map_err(Failure::input)?;
                Ok(Signer {
                    key,
                    public: Some(public),
                })
            }
        }
    }
}

struct Written {
    envelope: PathBuf,
    report: PathBuf,
    html: PathBuf,
}

impl Written {
    fn print(&self, signer: &Signer) {
        println!();
        println!("report:    {}", self.report.display());
        println!("signed:    {}", self.envelope.display());
        if !self.html.as_os_str().is_empty() {
            println!("readable:  {}", self.html.display());
        }
        match &signer.public {
            Some(p) => println!(
                "signed with the DEVELOPMENT key {} (public key: {})",
                signer.key.key_id(),
                p.display()
            ),
            None => println!("signed with key {}", signer.key.key_id()),
        }
        println!(
            "verify:    hilt verify {} --key {}",
            self.envelope.display(),
            signer
                .public
                .as_deref()
                .unwrap_or(Path::new("PUBLIC.pem"))
                .display()
        );
    }
}

/// First SIGINT or SIGTERM: set `cancel` to the signal number (the run stops the running case, writes
/// a signed partial report and exits 130 or 143). A second one exits at once.
fn install_signal_handlers(cancel: &Cancel) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    let seen = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it runs before `seen` is set: only a second signal trips it.
        flag::register_conditional_shutdown(sig, 128 + sig, seen.clone())?;
        flag::register(sig, seen.clone())?;
        flag::register_usize(sig, cancel.flag(), sig as usize)?;
    }
    Ok(())
}

/// Fail before the run, not after it, when an output file cannot be created.
fn check_writable(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "cannot write {}: {} is not a directory",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        anyhow::bail!("cannot write {}: it is a directory", path.display());
    }
    Ok(())
}

/// A report directory must not already hold a report: nothing of an earlier run is overwritten or mixed in.
pub(super) fn prepare_out_dir(dir: &Path) -> anyhow::Result<()> {
    for f in [
        "report.json",
        "report.dsse.json",
        "evidence",
        "campaign.json",
        "campaign.dsse.json",
    ] {
        if dir.join(f).exists() {
            anyhow::bail!(
                "{} already holds a report ({f}); choose another --out",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
