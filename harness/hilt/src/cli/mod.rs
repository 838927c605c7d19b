//! Command-line front end: parses arguments, adds context to errors, and maps outcomes to the exit
//! codes of [`exit`] (0 conformant, 1 a mandatory provision FAILs, 2 bad input or usage, 3 undecided,
//! 130/143 interrupted).

mod boards;
mod cloud;
pub mod exit;
mod keygen;
mod render;
mod report;
mod run;
mod selftest;
mod summary;
mod verify;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::process::ExitCode;

pub const EXIT_USAGE: u8 = exit::USAGE;
pub const EXIT_UNDECIDED: u8 = exit::UNDECIDED;

#[derive(Parser)]
#[command(name = "hilt", version, about = "Hardware-in-the-loop conformance tests for consumer IoT devices (ETSI EN 303 645, UK PSTI, ICO)", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the suite against a board and write a signed conformance report
    Run(run::RunArgs),
    /// Check a signed report: the signature and every evidence file's digest
    Verify(verify::VerifyArgs),
    /// Render a signed report as HTML or JUnit, after verifying it
    Render(render::RenderArgs),
    /// Work on signed reports: merge CI shards into one signed report
    Report(report::ReportArgs),
    /// Write an Ed25519 signing key pair (PKCS#8 / SubjectPublicKeyInfo PEM)
    Keygen(keygen::KeygenArgs),
    /// Run the mock cloud (MQTT broker, HTTPS services) for testing a real device by hand
    Cloud(cloud::CloudArgs),
    /// List what is attached to this bench (USB devices, serial ports, debug probes) and which
    /// board profile each is
    Boards(boards::BoardsArgs),
    /// Prove the suite can tell the reference board from each of its defects
    Selftest(selftest::SelftestArgs),
    /// Run the virtual reference board by hand (see `hilt vboard --help`)
    #[command(disable_help_flag = true)]
    Vboard {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

/// An error with the exit code it should end the process with.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn input(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: EXIT_USAGE,
            error: error.into(),
        }
    }
    pub fn undecided(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: EXIT_UNDECIDED,
            error: error.into(),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    if let Command::Vboard { args } = cli.command {
        return hilt_vboard::main_with_args(args);
    }
    init_logging();
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Keygen(a) => keygen::run(a),
        Command::Render(a) => render::run(a),
        Command::Report(a) => report::run(a),
        Command::Selftest(a) => selftest::run(a),
        Command::Cloud(a) => cloud::run(a),
        Command::Boards(a) => boards::run(a),
        Command::Vboard { .. } => unreachable!("handled above"),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error: {}", say_once(&f.error));
            ExitCode::from(f.code)
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause the message before it already says
/// (many errors quote their source), so nothing is said twice.
fn say_once(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HILT_LOG")
        // probe-rs warns about every USB back end it cannot list on a machine without USB: the
        // verdict already says what was not found.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,probe_rs=error"));
    // Colour only on a terminal: logs redirected to a file carry no ANSI codes.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_already_quoted_are_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = anyhow::Error::new(io).context(format!(
            "cannot read x.toml: {}",
            std::io::Error::from(std::io::ErrorKind::NotFound)
        ));
        let said = super::say_once(&e);
        assert_eq!(said.matches("not found").count(), 1, "{said}");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::say_once(&e), "outer: inner");
    }
}
