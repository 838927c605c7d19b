use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};

use super::{Failure, exit, summary};
use hilt::board::SessionOptions;
use hilt::display::Display;
use hilt::report::ReportInputs;
use hilt::runner::{self, RunConfig, Selection};
use hilt::suite::SuiteRoot;
use hilt_link::Cancel;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

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
    let selection = Selection {
        filter: a.filter.clone(),
        skip: a.skip.clone(),
        exact: a.exact,
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
            board.name()
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
    let cfg = RunConfig {
        board: board.clone(),
        cases,
        in_suite: scenarios.len(),
        out_dir: out_dir.clone(),
        session: SessionOptions {
            defects: a.defects.clone(),
            hilt_exe,
        },
        cancel,
    };
    let display = Display::new(a.quiet);
    let output = runner::run(&cfg, &display);
    // What chose the cases, in command-line form, so a reader can repeat the selection.
    let mut selected_by = selection.args();
    for d in &a.defects {
        selected_by.extend(["--defect".to_string(), d.clone()]);
    }
    let inputs = ReportInputs {
        board: &board,
        scenarios: &scenarios,
        suite_root: &suite.root,
        defects: &a.defects,
        selection: selected_by,
        development_key: signer.public.is_some(),
    };
    let report = hilt::report::build(&output, &inputs);
    let written = write_outputs(&out_dir, &report, &signer, a.junit.as_deref())?;
    summary::print(&report);
    written.print(&signer);
    Ok(match output.interrupted {
        Some(signal) => {
            println!(
                "the run was interrupted by {}: the report above is partial",
                runner::signal_name(signal)
            );
            exit::interrupted(signal)
        }
        None => report.summary.gate.exit_code(),
    })
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
        println!("readable:  {}", self.html.display());
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

/// The signed report first (it is what counts), then its renderings.
fn write_outputs(
    out_dir: &Path,
    report: &hilt_report::model::Report,
    signer: &Signer,
    junit: Option<&Path>,
) -> Result<Written, Failure> {
    let envelope = hilt::report::write(out_dir, report, &signer.key)
        .with_context(|| format!("cannot write the signed report in {}", out_dir.display()))
        .map_err(Failure::input)?;
    // A readable rendering beside the signed report (the envelope stays authoritative).
    let html = out_dir.join("report.html");
    let text = hilt_report::html::render(report)
        .context("HTML rendering")
        .map_err(Failure::undecided)?;
    hilt_report::atomic::write_atomic(&html, text.as_bytes())
        .with_context(|| format!("cannot write {}", html.display()))
        .map_err(Failure::input)?;
    if let Some(path) = junit {
        let xml = hilt_report::junit::render(report)
            .context("JUnit rendering")
            .map_err(Failure::undecided)?;
        hilt_report::atomic::write_atomic(path, xml.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Failure::input)?;
    }
    Ok(Written {
        envelope,
        report: out_dir.join("report.json"),
        html,
    })
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
