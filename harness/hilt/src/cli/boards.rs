//! `hilt boards`: what is attached to this bench and which board profile each thing is. Exits 0 even
//! with nothing attached or no USB bus at all (a CI machine): that is an answer, not an error.

use std::path::PathBuf;

use clap::Args;
use hilt::inventory::{self, Inventory, Match, Source};
use hilt::suite::SuiteRoot;
use hilt_model::profile::BoardProfile;

use super::{Failure, exit};

#[derive(Args)]
pub struct BoardsArgs {
    /// Print JSON, for scripts
    #[arg(long)]
    json: bool,
    /// How long to listen for BLE devices, in milliseconds
    #[arg(long, default_value_t = 3000)]
    ble_scan_ms: u64,
    /// Suite directory whose boards/ (and boards/examples/) profiles are matched (default: found
    /// from the current directory)
    #[arg(long)]
    suite: Option<PathBuf>,
}

pub fn run(a: BoardsArgs) -> Result<u8, Failure> {
    let suite =
        SuiteRoot::discover(a.suite.as_deref()).map_err(|e| Failure::input(anyhow::anyhow!(e)))?;
    let profiles = profiles(&suite.root)?;
    let central = hilt_link::ble::BtleplugCentral::new()
        .map(|c| Box::new(c) as Box<dyn hilt_link::ble::BleCentral>);
    let found = inventory::take(
        &hilt_link::usb::NusbBus,
        &hilt_link::memory::probe::ProbeRs,
        central,
        std::time::Duration::from_millis(a.ble_scan_ms),
        &profiles,
    );
    if a.json {
        let text =
            serde_json::to_string_pretty(&found).map_err(|e| Failure::input(anyhow::anyhow!(e)))?;
        println!("{text}");
    } else {
        print!("{}", render(&found, profiles.len()));
    }
    Ok(exit::OK)
}

/// Every profile in `boards/` and `boards/examples/`; one that does not load is bad input.
fn profiles(root: &std::path::Path) -> Result<Vec<BoardProfile>, Failure> {
    let mut out = Vec::new();
    for dir in [root.join("boards"), root.join("boards/examples")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            out.push(BoardProfile::load(&p).map_err(|e| Failure::input(anyhow::anyhow!(e)))?);
        }
    }
    Ok(out)
}

fn matched(m: &[Match]) -> String {
    if m.is_empty() {
        return "no board profile".into();
    }
    let names: Vec<String> = m
        .iter()
        .map(|m| format!("{} (link {})", m.board, m.link))
        .collect();
    names.join(", ")
}

fn section<T>(out: &mut String, title: &str, s: &Source<T>, line: impl Fn(&T) -> String) {
    out.push_str(&format!("{title}:\n"));
    match s {
        Source::Found(items) if items.is_empty() => out.push_str("  none attached\n"),
        Source::Found(items) => items
            .iter()
            .for_each(|i| out.push_str(&format!("  {}\n", line(i)))),
        Source::Absent(why) => out.push_str(&format!("  {why}\n")),
        Source::Failed(why) => out.push_str(&format!("  could not look: {why}\n")),
    }
}

fn render(inv: &Inventory, profiles: usize) -> String {
    let mut out = format!("matched against {profiles} board profile(s)\n");
    section(&mut out, "USB devices", &inv.usb, |e| {
        let d = &e.device;
        let kinds: Vec<String> = e
            .interfaces
            .iter()
            .map(|(n, k)| {
                format!(
                    "{n}:{}",
                    serde_json::to_value(k)
                        .unwrap_or_default()
                        .as_str()
                        .unwrap_or("?")
                )
            })
            .collect();
        format!(
            "{} {} {} [{}] at {}: {}",
            d.id(),
            d.manufacturer.as_deref().unwrap_or("-"),
            d.product.as_deref().unwrap_or("-"),
            kinds.join(" "),
            d.location,
            matched(&e.matches)
        )
    });
    section(&mut out, "serial ports", &inv.serial_ports, |p| {
        format!(
            "{} ({}): {}",
            p.path,
            p.usb.as_deref().unwrap_or("not on USB"),
            matched(&p.matches)
        )
    });
    section(&mut out, "debug probes", &inv.probes, |p| {
        format!("{}: {}", p.description, matched(&p.matches))
    });
    section(&mut out, "BLE devices", &inv.ble, |e| {
        let a = &e.advert;
        format!(
            "{} {:?} rssi {}: {}",
            a.address,
            a.local_name.as_deref().unwrap_or("-"),
            a.rssi.map_or("-".into(), |r| r.to_string()),
            matched(&e.matches)
        )
    });
    out
}
