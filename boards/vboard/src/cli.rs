//! Command line of `hilt-vboard` (also reached as `hilt vboard ...`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::auth::RateLimitPolicy;
use crate::cloud::CloudSettings;
use crate::defects::{DefectSet, listing};
use crate::privacy::{DEFAULT_ANALYTICS_MS, MIN_ANALYTICS_MS, PrivacyOptions};
use crate::provision::valid_serial;
use crate::run::{RunOptions, run};
use crate::update::UpdateSettings;
use crate::usb::UsbOptions;

/// Exit code for bad arguments or a state the board refuses to boot from.
const USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "hilt-vboard",
    version,
    about = "VRB-1 virtual reference board: a simulated IoT device on a pseudo-terminal console"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Boot the board (factory-provisioning it on first boot) and serve its console.
    Run(Box<RunArgs>),
    /// List the defects the board can be launched with (NAME<TAB>description).
    Defects,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// State directory holding flash.img and the printed label (created 0700).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Serial number to provision with (default VRB-<8 random hex digits>).
    #[arg(long, value_name = "SN")]
    serial: Option<String>,
    /// Where this unit came in the factory's sequence, at provisioning (1 = the first unit made).
    #[arg(long, value_name = "N", default_value_t = 1)]
    factory_seq: u32,
    /// Switch on a named defect (repeatable; see `hilt-vboard defects`).
    #[arg(long = "defect", value_name = "NAME")]
    defects: Vec<String>,
    /// Lockout length after too many failed logins.
    #[arg(long, value_name = "N", default_value_t = 30_000)]
    lockout_ms: u64,
    /// Consecutive failed logins that start a lockout.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_failures: u32,
    /// Delay before answering a failed login.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    failure_delay_ms: u64,
    /// File to write the pty slave path into (atomically) once ready.
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Stop when stdin closes (so a dying parent takes the board with it).
    #[arg(long)]
    exit_on_stdin_eof: bool,
    /// Interval between usage-analytics events sent (with the owner's consent) to the third-party
    /// analytics processor on the update service's origin, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ANALYTICS_MS,
          value_parser = clap::value_parser!(u64).range(MIN_ANALYTICS_MS..))]
    analytics_ms: u64,
    /// Open the debug port (a GDB remote stub on TCP serving the flash) on this address, e.g.
    /// 127.0.0.1:0; the ready line then reads `PTY <path> DEBUG <ip:port>`. Locked (memory reads
    /// refused) unless the debug-port-open defect is on.
    #[arg(long, value_name = "ADDR")]
    debug_port: Option<std::net::SocketAddr>,
    /// Publish the board's USB device in this file (rewritten atomically): a JSON list of one
    /// device, a CDC ACM console on the pty, as a host would enumerate it.
    #[arg(long, value_name = "PATH")]
    usb_bus: Option<PathBuf>,
    /// A reboot re-enumerates the USB device: it leaves the bus and comes back with its console on
    /// a new pty, as a native-USB console does.
    #[arg(long, requires = "usb_bus")]
    usb_reenumerate: bool,
    /// Run the BLE radio: a Unix stream socket at PATH speaking hilt's BLE wire protocol (JSON lines),
    /// listening before the ready line is printed.
    #[arg(long, value_name = "PATH")]
    ble: Option<PathBuf>,
    #[command(flatten)]
    cloud: CloudSettings,
    #[command(flatten)]
    update: UpdateSettings,
}

impl RunArgs {
    fn into_options(self) -> Result<RunOptions, String> {
        let defects = DefectSet::parse(&self.defects).map_err(|e| e.to_string())?;
        if let Some(sn) = &self.serial
            && !valid_serial(sn)
        {
            return Err(format!(
                "invalid serial number '{}': use 1 to 32 printable ASCII characters without spaces",
                sn.escape_default()
            ));
        }
        let cloud = self
            .cloud
            .resolve(&defects, self.update.update_url.is_some())
            .map_err(|e| e.to_string())?;
        let update = self
            .update
            .resolve(self.cloud.ca_cert.as_deref(), &defects)
            .map_err(|e| e.to_string())?;
        let analytics_every = std::time::Duration::from_millis(self.analytics_ms);
        let privacy = update
            .as_ref()
            .map(|u| PrivacyOptions::new(u, analytics_every, &defects));
        Ok(RunOptions {
            state_dir: self.state,
            serial: self.serial,
            factory_seq: self.factory_seq,
            defects,
            policy: RateLimitPolicy {
                max_failures: self.max_failures,
                lockout_ms: self.lockout_ms,
                failure_delay_ms: self.failure_delay_ms,
            },
            ready_file: self.ready_file,
            exit_on_stdin_eof: self.exit_on_stdin_eof,
            cloud,
            update,
            privacy,
            debug_port: self.debug_port,
            usb: self.usb_bus.map(|bus| UsbOptions {
                bus,
                reenumerate: self.usb_reenumerate,
            }),
            ble: self.ble,
        })
    }
}

/// Entry point; `args` excludes argv[0].
pub fn main_with_args(args: Vec<OsString>) -> ExitCode {
    init_logging();
    let argv = std::iter::once(OsString::from("hilt-vboard")).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return ExitCode::from(u8::try_from(code).unwrap_or(USAGE));
        }
    };
    match cli.command {
        Command::Defects => {
            print!("{}", listing());
            ExitCode::SUCCESS
        }
        Command::Run(args) => match (*args).into_options() {
            Err(msg) => {
                eprintln!("hilt-vboard: {msg}");
                ExitCode::from(USAGE)
            }
            Ok(opts) => match run(&opts) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "board failed");
                    eprintln!("hilt-vboard: {e}");
                    ExitCode::from(e.exit_code())
                }
            },
        },
    }
}

/// Logs go to stderr (stdout carries the PTY line). `HILT_VBOARD_LOG` sets
/// the filter. A host process that already installed a subscriber keeps it.
/// The debug port's protocol library only warns by default (every packet a
/// debugger probes with that it does not know would be an info line).
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HILT_VBOARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,gdbstub=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<RunOptions, String> {
        let argv = std::iter::once("hilt-vboard").chain(args.iter().copied());
        match Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .command
        {
            Command::Run(r) => (*r).into_options(),
            Command::Defects => Err("defects".into()),
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let o = parse(&["run", "--state", "/tmp/x"]).unwrap();
        assert_eq!(o.policy, RateLimitPolicy::default());
        assert!(!o.exit_on_stdin_eof);
        let o = parse(&[
            "run",
            "--state",
            "d",
            "--max-failures",
            "3",
            "--lockout-ms",
            "1500",
            "--failure-delay-ms",
            "50",
            "--defect",
            "no-login-rate-limit",
            "--serial",
            "SN1",
            "--exit-on-stdin-eof",
        ])
        .unwrap();
        assert_eq!(
            (
                o.policy.max_failures,
                o.policy.lockout_ms,
                o.policy.failure_delay_ms
            ),
            (3, 1500, 50)
        );
        assert_eq!(o.serial.as_deref(), Some("SN1"));
        assert!(o.exit_on_stdin_eof);
    }

    #[test]
    fn bad_values_are_refused() {
        let err = parse(&["run", "--state", "d", "--defect", "bogus"]).unwrap_err();
        assert!(
            err.contains("bogus") && err.contains("universal-default-password"),
            "{err}"
        );
        assert!(parse(&["run", "--state", "d", "--max-failures", "0"]).is_err());
        assert!(parse(&["run", "--state", "d", "--serial", "a b"]).is_err());
        assert!(parse(&["run"]).is_err());
    }

    #[test]
    fn debug_port_option() {
        assert!(
            parse(&["run", "--state", "d"])
                .unwrap()
                .debug_port
                .is_none()
        );
        let o = parse(&["run", "--state", "d", "--debug-port", "127.0.0.1:0"]).unwrap();
        assert_eq!(o.debug_port, Some("127.0.0.1:0".parse().unwrap()));
        assert!(parse(&["run", "--state", "d", "--debug-port", "nowhere"]).is_err());
        let o = parse(&["run", "--state", "d", "--defect", "debug-port-open"]).unwrap();
        assert!(o.defects.has(crate::Defect::DebugPortOpen));
    }

    #[test]
    fn usb_and_ble_options() {
        let o = parse(&["run", "--state", "d"]).unwrap();
        assert!(o.usb.is_none() && o.ble.is_none());
        let o = parse(&[
            "run",
            "--state",
            "d",
            "--usb-bus",
            "bus.json",
            "--ble",
            "b.sock",
        ])
        .unwrap();
        let usb = o.usb.expect("a USB device");
        assert_eq!(
            (usb.bus.to_str(), usb.reenumerate),
            (Some("bus.json"), false)
        );
        assert_eq!(o.ble.as_deref(), Some(std::path::Path::new("b.sock")));
        let o = parse(&["run", "--state", "d", "--usb-bus", "b", "--usb-reenumerate"]).unwrap();
        assert!(o.usb.unwrap().reenumerate);
        assert!(parse(&["run", "--state", "d", "--usb-reenumerate"]).is_err());
    }

    #[test]
    fn cloud_options() {
        assert!(parse(&["run", "--state", "d"]).unwrap().cloud.is_none());
        let err = parse(&["run", "--state", "d", "--defect", "plaintext-mqtt"]).unwrap_err();
        assert!(err.contains("--mqtt-plain-url"), "{err}");
        let o = parse(&[
            "run",
            "--state",
            "d",
            "--mqtt-url",
            "mqtt://127.0.0.1:1883",
            "--telemetry-ms",
            "250",
        ])
        .unwrap();
        let cloud = o.cloud.expect("a cloud");
        assert_eq!(cloud.telemetry, std::time::Duration::from_millis(250));
        assert!(!cloud.url.tls && cloud.credentials.is_none());
        let err = parse(&["run", "--state", "d", "--mqtt-url", "mqtts://h:1"]).unwrap_err();
        assert!(err.contains("--ca-cert"), "{err}");
        // The password has no command-line option: only a file.
        assert!(parse(&["run", "--state", "d", "--mqtt-password", "x"]).is_err());
        assert!(parse(&["run", "--state", "d", "--telemetry-ms", "5"]).is_err());
    }

    #[test]
    fn update_options() {
        let o = parse(&["run", "--state", "d"]).unwrap();
        assert!(o.update.is_none() && o.privacy.is_none());
        assert!(parse(&["run", "--state", "d", "--analytics-ms", "99"]).is_err());
        let err = parse(&["run", "--state", "d", "--update-url", "https://h/u"]).unwrap_err();
        assert!(err.contains("--update-key"), "{err}");
        let err = parse(&["run", "--state", "d", "--client-cert", "c.pem"]).unwrap_err();
        assert!(err.contains("--update-url"), "{err}");
        let short = ["run", "--state", "d", "--update-check-ms", "99"];
        assert!(parse(&short).is_err());

        let dir = tempfile::tempdir().unwrap();
        let pki = hilt_cloud::Pki::generate(&["127.0.0.1".into()]).unwrap();
        let client = pki.issue_client("SN1").unwrap();
        let vendor = hilt_report::keys::KeyPair::from_seed(&[5; 32]);
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.to_str().unwrap().to_string()
        };
        let ca = file("ca.pem", pki.ca_pem());
        let key = file(
            "k.pub",
            &hilt_report::keys::public_pem(&vendor.verifying_key()),
        );
        let cert = file("c.pem", &client.cert_pem);
        let ckey = file("c.key", &client.key_pem);
        let args = [
            "run",
            "--state",
            "d",
            "--update-url",
            "https://127.0.0.1:1/update/VRB-1",
            "--update-key",
            &key,
            "--client-cert",
            &cert,
            "--client-key",
            &ckey,
            "--ca-cert",
            &ca,
        ];
        let o = parse(&args).unwrap();
        assert!(o.cloud.is_none(), "--ca-cert serves the update agent alone");
        let p = o
            .privacy
            .as_ref()
            .expect("a privacy agent beside the update agent");
        assert_eq!(p.analytics_every, std::time::Duration::from_millis(60_000));
        assert_eq!(p.url.origin(), "https://127.0.0.1:1");
        assert_eq!(p.consent, crate::privacy::ConsentPolicy::default());
        let u = o.update.expect("an update agent");
        assert_eq!(
            u.check_interval,
            std::time::Duration::from_millis(86_400_000)
        );
        assert_eq!(u.warn, std::time::Duration::from_millis(10_000));
        let mut more = args.to_vec();
        more.extend(["--update-check-ms", "100", "--update-warn-ms", "0"]);
        let u = parse(&more).unwrap().update.unwrap();
        assert_eq!(u.check_interval, std::time::Duration::from_millis(100));
        assert!(u.warn.is_zero());
        let mut more = args.to_vec();
        more.extend(["--analytics-ms", "100", "--defect", "sends-before-consent"]);
        let p = parse(&more).unwrap().privacy.unwrap();
        assert_eq!(p.analytics_every, std::time::Duration::from_millis(100));
        assert!(p.consent.before_consent && !p.consent.after_withdrawal);
    }
}
