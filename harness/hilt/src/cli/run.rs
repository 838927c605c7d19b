use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};

use super::{Failure, summary};
use hilt::board::SessionOptions;
use hilt::report::ReportInputs;
use hilt::runner::{self, RunConfig};
use hilt::suite::SuiteRoot;

#[derive(Args)]
pub struct RunArgs {
    /// Run only cases whose id contains this string (exact match with --exact)
    filter: Option<String>,
    /// Board profile (default: the virtual reference board, boards/vboard.toml)
    #[arg(long)]
    board: Option<PathBuf>,
    /// Report directory (default: reports/runs/<UTC time>-<board>/)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Lab signing key (PKCS#8 PEM). Without it a per-user development key is used and the report says so
    #[arg(long)]
    key: Option<PathBuf>,
    /// Also write the results as JUnit XML here, for CI test reporting
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Launch the virtual board with this defect (repeatable)
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
    let board = suite.board(a.board.as_deref()).map_err(Failure::input)?;
    let scenarios = suite.scenarios().map_err(Failure::input)?;
    if let Some(bad) = a.defects.iter().find(|d| {
        !board
            .launch
            .as_ref()
            .is_some_and(|l| l.defects.contains_key(*d))
    }) {
        return Err(Failure::input(anyhow::anyhow!(
            "{}: no defect named {bad:?}",
            board.path.display()
        )));
    }
    let args = libtest_mimic::Arguments {
        filter: a.filter.clone(),
        skip: a.skip.clone(),
        exact: a.exact,
        list: a.list,
        quiet: a.quiet,
        // Cases share the device: one at a time per board.
        test_threads: Some(1),
        ..Default::default()
    };
    let hilt_exe = std::env::current_exe()
        .context("cannot locate the hilt executable")
        .map_err(Failure::undecided)?;
    let session = SessionOptions {
        defects: a.defects.clone(),
        hilt_exe,
    };
    if a.list {
        let cfg = RunConfig {
            board,
            scenarios,
            out_dir: PathBuf::new(),
            session,
            args,
        };
        runner::run(&cfg);
        return Ok(0);
    }
    let (key, development_key, public) = match &a.key {
        Some(k) => (
            hilt_report::keys::load_private(k).map_err(Failure::input)?,
            false,
            None,
        ),
        None => {
            let (key, public) = hilt::devkey::load_or_create()
                .context("development signing key")
                .map_err(Failure::undecided)?;
            (key, true, Some(public))
        }
    };
    let out_dir = match &a.out {
        Some(d) => d.clone(),
        None => suite.runs_dir().join(format!(
            "{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            board.name()
        )),
    };
    prepare_out_dir(&out_dir).map_err(Failure::input)?;
    // What chose the cases, in command-line form, so a reader can repeat the selection.
    let mut selection: Vec<String> = a.filter.iter().cloned().collect();
    for sk in &a.skip {
        selection.extend(["--skip".to_string(), sk.clone()]);
    }
    if a.exact {
        selection.push("--exact".into());
    }
    for d in &a.defects {
        selection.extend(["--defect".to_string(), d.clone()]);
    }
    let cfg = RunConfig {
        board: board.clone(),
        scenarios: scenarios.clone(),
        out_dir: out_dir.clone(),
        session,
        args,
    };
    let output = runner::run(&cfg);
    let inputs = ReportInputs {
        board: &board,
        scenarios: &scenarios,
        suite_root: &suite.root,
        defects: &a.defects,
        selection,
        development_key,
    };
    let report = hilt::report::build(&output, &inputs);
    let envelope = hilt::report::write(&out_dir, &report, &key)
        .with_context(|| format!("cannot write the signed report in {}", out_dir.display()))
        .map_err(Failure::undecided)?;
    // A readable rendering beside the signed report (the envelope stays authoritative).
    let html_path = out_dir.join("report.html");
    let html = hilt_report::html::render(&report)
        .context("HTML rendering")
        .map_err(Failure::undecided)?;
    hilt_report::atomic::write_atomic(&html_path, html.as_bytes())
        .with_context(|| format!("cannot write {}", html_path.display()))
        .map_err(Failure::undecided)?;
    if let Some(path) = &a.junit {
        let xml = hilt_report::junit::render(&report)
            .context("JUnit rendering")
            .map_err(Failure::undecided)?;
        hilt_report::atomic::write_atomic(path, xml.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Failure::undecided)?;
    }
    summary::print(&report);
    println!();
    println!("report:    {}", out_dir.join("report.json").display());
    println!("signed:    {}", envelope.display());
    println!("readable:  {}", html_path.display());
    match &public {
        Some(p) => println!(
            "signed with the DEVELOPMENT key {} (public key: {})",
            key.key_id(),
            p.display()
        ),
        None => println!("signed with key {}", key.key_id()),
    }
    println!(
        "verify:    hilt verify {} --key {}",
        envelope.display(),
        public
            .as_deref()
            .unwrap_or(Path::new("PUBLIC.pem"))
            .display()
    );
    Ok(report.summary.gate.exit_code())
}

/// A report directory must not already hold a report: nothing of an earlier run is overwritten or mixed in.
fn prepare_out_dir(dir: &Path) -> anyhow::Result<()> {
    for f in ["report.json", "report.dsse.json", "evidence"] {
        if dir.join(f).exists() {
            anyhow::bail!(
                "{} already holds a report ({f}); choose another --out",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
