//! `hilt report`: work on signed reports after the run. `merge` makes CI shards one signed report.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;

use super::{Failure, exit};
use hilt::suite::SuiteRoot;

#[derive(Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Verify the report directories of CI shards (`hilt run --shard K/N`) and merge them into one
    /// signed report that keeps every shard
    Merge(MergeArgs),
}

#[derive(Args)]
struct MergeArgs {
    /// The shards' report directories (each holding report.dsse.json)
    #[arg(required = true, value_name = "DIR")]
    shards: Vec<PathBuf>,
    /// Signing key for the merged report (PKCS#8 PEM)
    #[arg(long)]
    key: PathBuf,
    /// Public key the shards were signed with (default: the public half of --key)
    #[arg(long, value_name = "PEM")]
    shard_key: Option<PathBuf>,
    /// Where to write the merged report (must not hold a report)
    #[arg(long)]
    out: PathBuf,
    /// Suite directory the shards ran from (default: found from the current directory)
    #[arg(long)]
    suite: Option<PathBuf>,
}

pub fn run(a: ReportArgs) -> Result<u8, Failure> {
    match a.command {
        ReportCommand::Merge(m) => merge(m),
    }
}

fn merge(a: MergeArgs) -> Result<u8, Failure> {
    let suite =
        SuiteRoot::discover(a.suite.as_deref()).map_err(|e| Failure::input(anyhow::anyhow!(e)))?;
    let key = hilt_report::keys::load_private(&a.key).map_err(Failure::input)?;
    let shard_key = match &a.shard_key {
        Some(p) => hilt_report::keys::load_public(p)
            .with_context(|| format!("cannot load public key {}", p.display()))
            .map_err(Failure::input)?,
        None => key.verifying_key(),
    };
    super::run::prepare_out_dir(&a.out).map_err(Failure::input)?;
    let (envelope, report) = hilt::merge::merge(&a.shards, &shard_key, &suite.root, &a.out, &key)
        .map_err(|e| {
        let code = match e {
            // A shard that does not verify was altered or forged: as `hilt verify` says it.
            hilt::merge::MergeError::Verify { ref source, .. } if !source.is_input_error() => {
                exit::FAILED
            }
            _ => exit::USAGE,
        };
        Failure {
            code,
            error: anyhow::Error::new(e).context("cannot merge"),
        }
    })?;
    println!(
        "merged {} shard(s): {} case(s), gate {:?}",
        report.shards.len(),
        report.cases.len(),
        report.summary.gate
    );
    println!("signed:    {}", envelope.display());
    println!(
        "verify:    hilt verify {} --key PUBLIC.pem",
        envelope.display()
    );
    Ok(exit::OK)
}
