use anyhow::Context;
use clap::Args;
use nix::sys::signal::{SigSet, Signal};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::Failure;
use hilt::cloud::CloudSession;

#[derive(Args)]
pub struct CloudArgs {
    /// Address to listen on (the cloud is reachable from other hosts only if you say so)
    #[arg(long, default_value = "127.0.0.1")]
    listen: IpAddr,
    /// Directory for endpoints.json, the CA certificate, passwords, flows.jsonl and payloads (created 0700)
    #[arg(long)]
    state_dir: PathBuf,
    /// Device account to create (repeatable; default: one account "device-1")
    #[arg(long = "client", value_name = "USERNAME")]
    clients: Vec<String>,
}

pub fn run(a: CloudArgs) -> Result<u8, Failure> {
    let dir = &a.state_dir;
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .with_context(|| format!("cannot create {}", dir.display()))
        .map_err(Failure::input)?;
    let clients = if a.clients.is_empty() {
        vec!["device-1".to_string()]
    } else {
        a.clients.clone()
    };
    // Block the stop signals before any thread starts, so every thread inherits the mask and the main
    // thread alone receives them below.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
        .thread_block()
        .context("cannot block signals")
        .map_err(Failure::undecided)?;
    let log = hilt_cloud::FlowLog::new();
    log.append_jsonl(&dir.join("flows.jsonl"))
        .context("flows.jsonl")
        .map_err(Failure::input)?;
    log.keep_payloads(&dir.join("payloads"))
        .context("payloads/")
        .map_err(Failure::input)?;
    let cloud = CloudSession::start(a.listen, &clients, dir, log).map_err(Failure::undecided)?;
    let endpoints = serde_json::to_vec_pretty(&cloud.endpoints).map_err(Failure::undecided)?;
    let path = dir.join("endpoints.json");
    hilt_report::atomic::write_atomic(&path, &endpoints)
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)))
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(Failure::undecided)?;
    let e = &cloud.endpoints;
    println!("mqtt:      {}", e.mqtt);
    println!("mqtts:     {}", e.mqtts);
    println!("https:     {}", e.https);
    println!("http:      {} (the same services without TLS)", e.http);
    println!("CA:        {}", e.ca_cert);
    let vars: std::collections::BTreeMap<String, String> = cloud.vars(dir).into_iter().collect();
    println!(
        "device:    {} presents {} (key {})",
        clients[0], vars["cloud.client_cert"], vars["cloud.client_key"]
    );
    println!(
        "updates:   signed with the key in {}",
        vars["cloud.update_key"]
    );
    println!(
        "accounts:  {} (passwords in {})",
        clients.join(", "),
        path.display()
    );
    println!("flow log:  {}", dir.join("flows.jsonl").display());
    println!("running; Ctrl-C to stop");
    let sig = signals
        .wait()
        .context("waiting for a signal")
        .map_err(Failure::undecided)?;
    tracing::info!("{sig:?}: stopping the mock cloud");
    cloud.shutdown();
    println!(
        "stopped; {} flow(s) recorded",
        count_lines(&dir.join("flows.jsonl"))
    );
    Ok(super::exit::OK)
}

fn count_lines(p: &std::path::Path) -> usize {
    std::fs::read_to_string(p)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}
