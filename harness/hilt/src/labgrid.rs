//! A labgrid place, driven through labgrid's own `labgrid-client`: acquire it (waiting while someone
//! else holds it), read the resources it gives (the network serial ports its exporter serves with
//! ser2net, its power switch), power-cycle it, and release it — also when the holder panics or the run
//! is cancelled, since [`Place`] releases on drop.
//!
//! labgrid identifies the holder of a place as `HOST/USER`: `LG_HOSTNAME` (default: the host name)
//! and `LG_USERNAME` (default: the login name) of the client that acquired it. Every `labgrid-client`
//! call is bounded in time (killed and reaped when late) and in output.
//!
//! Resources are read from `labgrid-client -p PLACE env`: the YAML environment labgrid itself
//! generates for an acquired place (one `resources:` list of `{Class: {args}}`), the form labgrid's
//! own drivers consume, rather than `show`, which prints Python reprs.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::LazyLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hilt_link::Cancel;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use regex::Regex;
use serde::Deserialize;
use thiserror::Error;
use tracing::{debug, info, warn};

/// The client program when none is configured.
pub const DEFAULT_CLIENT: &str = "labgrid-client";
/// How often a taken place is asked for again.
const RETRY: Duration = Duration::from_millis(500);
/// How often a running client is looked at (exit, deadline, cancel).
const WAIT_STEP: Duration = Duration::from_millis(20);
/// An `env` listing is a few hundred bytes; anything near this is not labgrid talking.
const STDOUT_CAP: usize = 256 * 1024;
/// Python tracebacks end with the cause: keep the tail.
const STDERR_CAP: usize = 16 * 1024;
/// After the client exits, how long its pipes may take to drain (a stray grandchild may hold them).
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How long an acquired place's serial ports may go without a TCP port (ser2net starting).
const UNSERVED_GRACE: Duration = Duration::from_secs(5);
/// What [`parse_env`] says of a serial port without a TCP port.
const UNSERVED: &str = "has no TCP port";
/// How much of a complaint an error message quotes.
const SUMMARY_CHARS: usize = 600;

/// labgrid's resource classes that `labgrid-client power` can switch.
const POWER_CLASSES: [&str; 7] = [
    "NetworkPowerPort",
    "NetworkUSBPowerPort",
    "NetworkSiSPMPowerPort",
    "PDUDaemonPort",
    "TasmotaPowerPort",
    "NetworkYKUSHPowerPort",
    "NetworkSysfsGPIO",
];

/// Where a place is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct PlaceConfig {
    /// The place's exact name (labgrid matches `-p` by substring; hilt insists on the name).
    pub place: String,
    /// `HOST:PORT`; `None` = labgrid's default (`LG_COORDINATOR`, else `127.0.0.1:20408`).
    pub coordinator: Option<String>,
    /// The `labgrid-client` program.
    pub client: PathBuf,
    /// How long to wait for a place someone else holds.
    pub acquire_timeout: Duration,
    /// The bound on each `labgrid-client` call.
    pub command_timeout: Duration,
}

impl PlaceConfig {
    /// Defaults: labgrid's coordinator, `labgrid-client` from PATH, 60 s to get the place, 30 s
    /// per call (a power cycle waits labgrid's 2 s between off and on, a slow PDU answers in seconds).
    pub fn new(place: impl Into<String>) -> Self {
        PlaceConfig {
            place: place.into(),
            coordinator: None,
            client: PathBuf::from(DEFAULT_CLIENT),
            acquire_timeout: Duration::from_secs(60),
            command_timeout: Duration::from_secs(30),
        }
    }

    /// The coordinator as errors name it.
    fn coordinator_label(&self) -> String {
        match &self.coordinator {
            Some(c) => c.clone(),
            None => match std::env::var("LG_COORDINATOR") {
                Ok(c) if !c.is_empty() => format!("{c} (LG_COORDINATOR)"),
                _ => "127.0.0.1:20408 (labgrid's default)".to_string(),
            },
        }
    }
}

#[derive(Debug, Error)]
pub enum LabgridError {
    #[error(
        "labgrid: cannot run {program:?} for place {place:?}: {source} (install labgrid, e.g. `pip install labgrid`, or name the client program)"
    )]
    NoClient {
        program: PathBuf,
        place: String,
        source: io::Error,
    },
    #[error("labgrid coordinator {coordinator} is unreachable (place {place:?}): {detail}")]
    Unreachable {
        coordinator: String,
        place: String,
        detail: String,
    },
    #[error("labgrid place {place:?} does not exist on coordinator {coordinator}: {detail}")]
    NoSuchPlace {
        place: String,
        coordinator: String,
        detail: String,
    },
    #[error("labgrid place {place:?} is taken by {}; waited {waited:.1?}", holder(.by))]
    Taken {
        place: String,
        /// labgrid's `HOST/USER` of the holder, or another place holding one of its resources.
        by: Option<String>,
        waited: Duration,
    },
    #[error(
        "labgrid: `{command}` for place {place:?} did not finish within {after:?}; killed (coordinator {coordinator})"
    )]
    Timeout {
        place: String,
        coordinator: String,
        command: String,
        after: Duration,
    },
    #[error("labgrid: cancelled while working on place {place:?}")]
    Cancelled { place: String },
    #[error(
        "labgrid: `{command}` for place {place:?} (coordinator {coordinator}) failed, {status}: {}",
        summary(.stderr)
    )]
    Command {
        place: String,
        coordinator: String,
        command: String,
        status: String,
        /// The tail of what the client wrote (its own error line, or a traceback's last lines).
        stderr: String,
    },
    #[error("labgrid: the resources of place {place:?} are not usable: {detail}")]
    Resources { place: String, detail: String },
}

fn holder(by: &Option<String>) -> String {
    by.clone()
        .unwrap_or_else(|| "someone (labgrid did not say who)".to_string())
}

/// The last few lines of a client's complaint: labgrid's one-line error, or a traceback's cause.
fn summary(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    let n = tail.chars().count();
    if tail.is_empty() {
        "(no output)".to_string()
    } else if n > SUMMARY_CHARS {
        format!(
            "…{}",
            tail.chars().skip(n - SUMMARY_CHARS).collect::<String>()
        )
    } else {
        tail
    }
}

/// The ways a serial port is spoken to over the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialProtocol {
    /// Telnet with COM-port control: hilt sets the line.
    Rfc2217,
    /// Bytes only: the line is as the exporter set it.
    Raw,
}

/// A labgrid `NetworkSerialPort` of the place (ser2net on the exporter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSerial {
    /// The resource's name in the place (its rename, else its exporter name, else the class).
    pub name: String,
    pub host: String,
    pub port: u16,
    pub protocol: SerialProtocol,
    pub speed: Option<u32>,
}

impl NetworkSerial {
    /// `rfc2217://HOST:PORT` or `tcp://HOST:PORT`, as a board profile's `net = …` takes it.
    pub fn url(&self) -> String {
        let scheme = match self.protocol {
            SerialProtocol::Rfc2217 => "rfc2217",
            SerialProtocol::Raw => "tcp",
        };
        // An IPv6 literal needs brackets before the port.
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// A power switch of the place, as labgrid describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerResource {
    /// labgrid's class, e.g. `NetworkPowerPort`.
    pub class: String,
    pub name: String,
    /// The PDU back-end (`NetworkPowerPort`'s `model`, e.g. `gude`, `netio`).
    pub model: Option<String>,
    pub host: Option<String>,
    /// The outlet.
    pub index: Option<String>,
    /// Every scalar argument, as text.
    pub params: BTreeMap<String, String>,
}

/// What an acquired place gives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlaceResources {
    pub serial: Vec<NetworkSerial>,
    /// The first power switch (the one `labgrid-client power` uses without a name).
    pub power: Option<PowerResource>,
}

/// An acquired place; released by [`Place::release`] or, at the latest, on drop.
#[derive(Debug)]
pub struct Place {
    cfg: PlaceConfig,
    released: bool,
}

impl Place {
    /// Acquires the place, asking again every half second while someone else holds it, up to
    /// `acquire_timeout`.
    pub fn acquire(cfg: &PlaceConfig, cancel: &Cancel) -> Result<Place, LabgridError> {
        let started = Instant::now();
        let mut said_waiting = false;
        loop {
            if cancel.is_cancelled() {
                return Err(cancelled(cfg));
            }
            let out = match run(cfg, &["acquire"], Some(cancel)) {
                Ok(out) => out,
                Err(e @ (LabgridError::Timeout { .. } | LabgridError::Cancelled { .. })) => {
                    // Killed mid-acquire: the coordinator may have granted it; do not leave it held.
                    release_quietly(cfg);
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            if out.status.success() {
                return Place::granted(cfg, &out.stdout);
            }
            let by = match classify(&out.stdout, &out.stderr) {
                Failure::Taken { by } => by,
                other => return Err(other.into_error(cfg, "acquire", &out)),
            };
            let left = cfg.acquire_timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                let by = by.or_else(|| holder_of(cfg).ok().flatten());
                return Err(LabgridError::Taken {
                    place: cfg.place.clone(),
                    by,
                    waited: started.elapsed(),
                });
            }
            if !said_waiting {
                info!(place = %cfg.place, by = %holder(&by), left = ?left, "labgrid place taken; waiting");
                said_waiting = true;
            }
            if !cancel.sleep(left.min(RETRY)) {
                return Err(cancelled(cfg));
            }
        }
    }

    /// The client said yes; make sure it was our place (labgrid would take a substring or alias).
    fn granted(cfg: &PlaceConfig, stdout: &str) -> Result<Place, LabgridError> {
        let got = acquired_name(stdout);
        match got {
            Some(name) if name != cfg.place => {
                let other = PlaceConfig {
                    place: name.clone(),
                    ..cfg.clone()
                };
                release_quietly(&other);
                Err(LabgridError::NoSuchPlace {
                    place: cfg.place.clone(),
                    coordinator: cfg.coordinator_label(),
                    detail: format!(
                        "labgrid matched the name to place {name:?} (it matches by substring and alias), released it again; give the exact place name"
                    ),
                })
            }
            _ => {
                if got.is_none() {
                    warn!(place = %cfg.place, stdout, "labgrid acquired without saying which place");
                }
                info!(place = %cfg.place, coordinator = %cfg.coordinator_label(), "labgrid place acquired");
                Ok(Place {
                    cfg: cfg.clone(),
                    released: false,
                })
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.place
    }

    pub fn config(&self) -> &PlaceConfig {
        &self.cfg
    }

    /// The place's resources, from the environment labgrid generates for it.
    pub fn resources(&self) -> Result<PlaceResources, LabgridError> {
        let until = Instant::now() + UNSERVED_GRACE;
        loop {
            let out = run(&self.cfg, &["env"], None)?;
            if !out.status.success() {
                return Err(classify(&out.stdout, &out.stderr).into_error(&self.cfg, "env", &out));
            }
            match parse_env(&self.cfg.place, &out.stdout) {
                Ok(found) => return Ok(found),
                // The exporter publishes the TCP port once its ser2net runs, just after the grant.
                Err(detail) if detail.contains(UNSERVED) && Instant::now() < until => {
                    debug!(place = %self.cfg.place, detail, "serial port not served yet");
                    std::thread::sleep(RETRY);
                }
                Err(detail) => {
                    return Err(LabgridError::Resources {
                        place: self.cfg.place.clone(),
                        detail,
                    });
                }
            }
        }
    }

    /// Switches the place's power off and on again through labgrid's power driver.
    pub fn power_cycle(&self) -> Result<(), LabgridError> {
        power_cycle(&self.cfg)
    }

    /// Releases the place now, saying whether labgrid agreed.
    pub fn release(mut self) -> Result<(), LabgridError> {
        self.released = true;
        release_place(&self.cfg)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        // Best effort: a held place blocks the lab for everyone else.
        if let Err(e) = release_place(&self.cfg) {
            warn!(place = %self.cfg.place, error = %e, "labgrid place not released");
        }
    }
}

/// `labgrid-client release`; a place that is no longer held is what we wanted.
fn release_place(cfg: &PlaceConfig) -> Result<(), LabgridError> {
    let out = run(cfg, &["release"], None)?;
    if out.status.success() {
        info!(place = %cfg.place, "labgrid place released");
        return Ok(());
    }
    match classify(&out.stdout, &out.stderr) {
        Failure::NotAcquired => {
            warn!(place = %cfg.place, "labgrid place was no longer acquired at release");
            Ok(())
        }
        other => Err(other.into_error(cfg, "release", &out)),
    }
}

fn release_quietly(cfg: &PlaceConfig) {
    if let Err(e) = release_place(cfg) {
        debug!(place = %cfg.place, error = %e, "release after an interrupted acquire");
    }
}

fn cancelled(cfg: &PlaceConfig) -> LabgridError {
    LabgridError::Cancelled {
        place: cfg.place.clone(),
    }
}

/// Who holds the place, from `labgrid-client -p PLACE show`: `Some("HOST/USER")` or `None` when free.
pub fn holder_of(cfg: &PlaceConfig) -> Result<Option<String>, LabgridError> {
    let out = run(cfg, &["show"], None)?;
    if !out.status.success() {
        return Err(classify(&out.stdout, &out.stderr).into_error(cfg, "show", &out));
    }
    parse_holder(&out.stdout).ok_or_else(|| LabgridError::Resources {
        place: cfg.place.clone(),
        detail: "`show` printed no `acquired:` line".to_string(),
    })
}

// ---- running the client ----

/// What a finished client said.
#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `labgrid-client [-x COORD] -p PLACE ARGS…`, bounded by `command_timeout` (and `cancel`).
/// Switches the power of place `cfg` (acquired by this user) off and on again through labgrid's power
/// driver.
pub fn power_cycle(cfg: &PlaceConfig) -> Result<(), LabgridError> {
    let out = run(cfg, &["power", "cycle"], None)?;
    if !out.status.success() {
        return Err(classify(&out.stdout, &out.stderr).into_error(cfg, "power cycle", &out));
    }
    info!(place = %cfg.place, "labgrid place power-cycled");
    Ok(())
}

fn run(cfg: &PlaceConfig, args: &[&str], cancel: Option<&Cancel>) -> Result<Output, LabgridError> {
    let command = args.join(" ");
    let mut cmd = Command::new(&cfg.client);
    if let Some(c) = &cfg.coordinator {
        cmd.arg("-x").arg(c);
    }
    cmd.arg("-p").arg(&cfg.place).args(args);
    // An env file would make acquire/release act on the places it names instead.
    for var in ["LG_ENV", "LG_STATE", "LG_INITIAL_STATE"] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills whatever it started (ssh, a power back-end) too.
        .process_group(0);
    debug!(place = %cfg.place, command, "labgrid-client");
    let mut child = cmd.spawn().map_err(|source| LabgridError::NoClient {
        program: cfg.client.clone(),
        place: cfg.place.clone(),
        source,
    })?;
    let stdout = drain(child.stdout.take(), Keep::Head(STDOUT_CAP));
    let stderr = drain(child.stderr.take(), Keep::Tail(STDERR_CAP));
    let status = match wait_bounded(&mut child, cfg.command_timeout, cancel) {
        Ok(status) => status,
        Err(stop) => {
            kill_group(&mut child);
            return Err(match stop {
                Stop::Late => LabgridError::Timeout {
                    place: cfg.place.clone(),
                    coordinator: cfg.coordinator_label(),
                    command,
                    after: cfg.command_timeout,
                },
                Stop::Cancelled => cancelled(cfg),
            });
        }
    };
    Ok(Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

enum Stop {
    Late,
    Cancelled,
}

fn wait_bounded(
    child: &mut Child,
    limit: Duration,
    cancel: Option<&Cancel>,
) -> Result<ExitStatus, Stop> {
    let until = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(status);
        }
        if Instant::now() >= until {
            return Err(Stop::Late);
        }
        if cancel.is_some_and(Cancel::is_cancelled) {
            return Err(Stop::Cancelled);
        }
        std::thread::sleep(WAIT_STEP);
    }
}

fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Which part of an over-long output to keep.
#[derive(Clone, Copy)]
enum Keep {
    Head(usize),
    Tail(usize),
}

/// Reads a pipe to its end on a thread (so the client never blocks on a full pipe), keeping at most
/// the bound.
fn drain(pipe: Option<impl Read + Send + 'static>, keep: Keep) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                keep_bounded(&mut kept, &buf[..n], keep);
            }
            let _ = tx.send(kept);
        });
    }
    rx
}

/// Appends `data` to `kept` within the bound `keep` sets.
fn keep_bounded(kept: &mut Vec<u8>, data: &[u8], keep: Keep) {
    match keep {
        Keep::Head(cap) => {
            let room = cap.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
        Keep::Tail(cap) => {
            kept.extend_from_slice(data);
            if kept.len() > cap {
                kept.drain(..kept.len() - cap);
            }
        }
    }
}

fn collect(rx: mpsc::Receiver<Vec<u8>>) -> String {
    let bytes = rx.recv_timeout(DRAIN_GRACE).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

// ---- reading what the client said ----

/// Why a client call failed, from its own words.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Someone holds the place (or one of its resources); worth asking again.
    Taken {
        by: Option<String>,
    },
    NoSuchPlace(String),
    Unreachable(String),
    NotAcquired,
    Other,
}

impl Failure {
    fn into_error(self, cfg: &PlaceConfig, command: &str, out: &Output) -> LabgridError {
        let place = cfg.place.clone();
        let coordinator = cfg.coordinator_label();
        match self {
            Failure::Taken { by } => LabgridError::Taken {
                place,
                by,
                waited: Duration::ZERO,
            },
            Failure::NoSuchPlace(detail) => LabgridError::NoSuchPlace {
                place,
                coordinator,
                detail,
            },
            Failure::Unreachable(detail) => LabgridError::Unreachable {
                place,
                coordinator,
                detail,
            },
            Failure::NotAcquired | Failure::Other => LabgridError::Command {
                place,
                coordinator,
                command: command.to_string(),
                status: out.status.to_string(),
                stderr: if out.stderr.trim().is_empty() {
                    out.stdout.clone()
                } else {
                    out.stderr.clone()
                },
            },
        }
    }
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid pattern")
}

static BY_OTHER: LazyLock<Regex> = LazyLock::new(|| re(r"is already acquired by (\S+?)\.(?:\s|$)"));
static BY_YOU_ELSEWHERE: LazyLock<Regex> =
    LazyLock::new(|| re(r"You have already acquired place \S+ on (\S+?)\.(?:\s|$)"));
static BY_PLACE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"Matching resource '([^']*)' \(([^)]*)\) already acquired by place '([^']*)'")
});
static NO_MATCH: LazyLock<Regex> =
    LazyLock::new(|| re(r"place pattern \S+ matches nothing|matches multiple places \([^)]*\)"));
static UNAVAILABLE: LazyLock<Regex> = LazyLock::new(|| re(r"coordinator is unavailable: (.*)"));
static ACQUIRED: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^acquired place (\S+)\s*$"));
static HOLDER: LazyLock<Regex> = LazyLock::new(|| re(r"(?m)^  acquired: (.*?)\s*$"));

/// Sorts a failed call by labgrid 26's messages (`labgrid-client: Error: …`, `Server error: …`).
fn classify(stdout: &str, stderr: &str) -> Failure {
    if stderr.contains("Could not connect to coordinator") {
        let detail = UNAVAILABLE
            .captures(stderr)
            .map_or("could not connect to the coordinator".to_string(), |c| {
                c[1].to_string()
            });
        return Failure::Unreachable(detail);
    }
    if let Some(c) = BY_OTHER.captures(stderr) {
        return Failure::Taken {
            by: Some(c[1].to_string()),
        };
    }
    if let Some(c) = BY_YOU_ELSEWHERE.captures(stderr) {
        return Failure::Taken {
            by: Some(format!("this user, on host {}", &c[1])),
        };
    }
    if stderr.contains("You have already acquired place") {
        // Same HOST/USER as us: another run of ours, or an earlier one that never released.
        return Failure::Taken {
            by: Some("this user on this host (another run, or an earlier one that did not release it: `labgrid-client -p PLACE release`)".to_string()),
        };
    }
    if let Some(c) = BY_PLACE.captures(stdout) {
        return Failure::Taken {
            by: Some(format!(
                "place {:?}, which holds its resource {}",
                &c[3], &c[2]
            )),
        };
    }
    if stderr.contains("is already acquired") {
        // The coordinator's answer to a race: the place went between look and grab.
        return Failure::Taken { by: None };
    }
    if let Some(m) = NO_MATCH.find(stderr) {
        return Failure::NoSuchPlace(m.as_str().to_string());
    }
    if stderr.contains("is not acquired") {
        return Failure::NotAcquired;
    }
    Failure::Other
}

/// The place named by `acquire`'s `acquired place NAME`.
fn acquired_name(stdout: &str) -> Option<String> {
    ACQUIRED.captures(stdout).map(|c| c[1].to_string())
}

/// `show`'s `  acquired: HOST/USER` line: `Some(None)` when free, `None` when the line is missing.
pub fn parse_holder(show: &str) -> Option<Option<String>> {
    let c = HOLDER.captures(show)?;
    Some(match &c[1] {
        "None" => None,
        who => Some(who.to_string()),
    })
}

/// `labgrid-client env`'s document.
#[derive(Deserialize)]
struct EnvDoc {
    targets: BTreeMap<String, EnvTarget>,
}

#[derive(Deserialize)]
struct EnvTarget {
    #[serde(default)]
    resources: Option<Vec<BTreeMap<String, yaml_serde::Value>>>,
}

/// Parses `labgrid-client -p PLACE env` (labgrid 26) into the place's serial ports and power switch.
pub fn parse_env(place: &str, text: &str) -> Result<PlaceResources, String> {
    let doc: EnvDoc = yaml_serde::from_str(text)
        .map_err(|e| format!("`env` output is not labgrid's YAML: {e}"))?;
    let target = doc
        .targets
        .get(place)
        .ok_or_else(|| format!("`env` lists no target {place:?}"))?;
    let mut found = PlaceResources::default();
    for entry in target.resources.iter().flatten() {
        for (class, args) in entry {
            add_resource(&mut found, class, args)?;
        }
    }
    Ok(found)
}

fn add_resource(
    found: &mut PlaceResources,
    class: &str,
    args: &yaml_serde::Value,
) -> Result<(), String> {
    let params = scalars(args);
    // labgrid leaves `name` out when it equals the class.
    let name = params
        .get("name")
        .cloned()
        .unwrap_or_else(|| class.to_string());
    if class == "NetworkSerialPort" {
        found.serial.push(serial(name, &params)?);
    } else if POWER_CLASSES.contains(&class) {
        if found.power.is_some() {
            debug!(
                class,
                name, "a further power resource; labgrid uses the first"
            );
            return Ok(());
        }
        found.power = Some(PowerResource {
            class: class.to_string(),
            name,
            model: params.get("model").cloned(),
            host: params.get("host").cloned(),
            index: params.get("index").cloned(),
            params,
        });
    } else {
        debug!(class, name, "labgrid resource hilt does not use");
    }
    Ok(())
}

fn serial(name: String, p: &BTreeMap<String, String>) -> Result<NetworkSerial, String> {
    let host = p
        .get("host")
        .cloned()
        .ok_or_else(|| format!("serial port {name:?} has no host"))?;
    let port = p
        .get("port")
        .ok_or_else(|| format!("serial port {name:?} {UNSERVED} (is its exporter serving it?)"))?
        .parse::<u16>()
        .map_err(|e| format!("serial port {name:?}: TCP port: {e}"))?;
    // labgrid's NetworkSerialPort defaults to rfc2217, and `env` leaves defaults out.
    let protocol = match p.get("protocol").map(String::as_str) {
        None | Some("rfc2217") => SerialProtocol::Rfc2217,
        Some("raw") => SerialProtocol::Raw,
        Some(other) => return Err(format!("serial port {name:?}: unknown protocol {other:?}")),
    };
    let speed = match p.get("speed") {
        None => None,
        Some(s) => Some(
            s.parse::<u32>()
                .map_err(|e| format!("serial port {name:?}: speed {s:?}: {e}"))?,
        ),
    };
    Ok(NetworkSerial {
        name,
        host,
        port,
        protocol,
        speed,
    })
}

/// A resource's scalar arguments as text (`null` = left out).
fn scalars(args: &yaml_serde::Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(map) = args.as_mapping() else {
        return out;
    };
    for (k, v) in map {
        let Some(key) = k.as_str() else { continue };
        let text = match v {
            yaml_serde::Value::String(s) => s.clone(),
            yaml_serde::Value::Number(n) => n.to_string(),
            yaml_serde::Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        out.insert(key.to_string(), text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Recorded from labgrid 26.0.1 (`labgrid-client` against a real coordinator and exporter).
    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../tests/fixtures/labgrid/", $name))
        };
    }

    #[test]
    fn env_with_a_ser2net_port_and_a_pdu_outlet() {
        let r = parse_env("p1", fixture!("env_ser2net_and_power.yaml")).unwrap();
        assert_eq!(
            r.serial,
            [NetworkSerial {
                name: "RawSerialPort".into(),
                host: "127.0.0.1".into(),
                port: 37273,
                protocol: SerialProtocol::Rfc2217,
                speed: Some(115200),
            }]
        );
        assert_eq!(r.serial[0].url(), "rfc2217://127.0.0.1:37273");
        let power = r.power.unwrap();
        assert_eq!(power.class, "NetworkPowerPort");
        assert_eq!(power.name, "NetworkPowerPort");
        assert_eq!(power.model.as_deref(), Some("gude"));
        assert_eq!(power.host.as_deref(), Some("192.0.2.1"));
        assert_eq!(power.index.as_deref(), Some("3"));
    }

    #[test]
    fn env_with_renamed_raw_and_ipv6_ports() {
        let r = parse_env("p2", fixture!("env_named_raw_ipv6.yaml")).unwrap();
        let urls: Vec<(String, String)> =
            r.serial.iter().map(|s| (s.name.clone(), s.url())).collect();
        assert_eq!(
            urls,
            [
                ("console".to_string(), "tcp://10.0.0.7:4001".to_string()),
                ("debug".to_string(), "rfc2217://[::1]:4002".to_string()),
                ("dut".to_string(), "rfc2217://127.0.0.1:37731".to_string()),
            ]
        );
        assert_eq!(r.serial[0].speed, Some(9600));
        assert_eq!(r.serial[1].speed, None);
        assert_eq!(r.power.unwrap().model.as_deref(), Some("netio"));
    }

    #[test]
    fn env_problems_are_named() {
        let env = fixture!("env_ser2net_and_power.yaml");
        assert!(
            parse_env("p9", env)
                .unwrap_err()
                .contains("no target \"p9\"")
        );
        let no_port = env.replace("port: 37273", "port: null");
        assert!(
            parse_env("p1", &no_port)
                .unwrap_err()
                .contains("no TCP port")
        );
        let odd = env.replace("speed: 115200", "speed: 115200\n        protocol: ssh");
        assert!(
            parse_env("p1", &odd)
                .unwrap_err()
                .contains("unknown protocol")
        );
        assert!(parse_env("p1", "labgrid-client: Error: x").is_err());
        let empty = "targets:\n  p1:\n    resources: []\n";
        assert_eq!(parse_env("p1", empty).unwrap(), PlaceResources::default());
    }

    #[test]
    fn a_place_held_by_another_user_names_them() {
        let f = classify("", fixture!("acquire_taken_other_user.stderr"));
        assert_eq!(
            f,
            Failure::Taken {
                by: Some("vm/root".into())
            }
        );
    }

    #[test]
    fn a_place_we_hold_already_is_taken_by_us() {
        let Failure::Taken { by: Some(by) } =
            classify("", fixture!("acquire_already_yours.stderr"))
        else {
            panic!("not taken")
        };
        assert!(by.starts_with("this user on this host"), "{by}");
        let Failure::Taken { by: Some(by) } =
            classify("", fixture!("acquire_already_yours_other_host.stderr"))
        else {
            panic!("not taken")
        };
        assert_eq!(by, "this user, on host vm");
    }

    #[test]
    fn a_resource_held_by_another_place_is_taken_by_that_place() {
        let f = classify(
            fixture!("acquire_resource_busy.stdout"),
            fixture!("acquire_resource_busy.stderr"),
        );
        let Failure::Taken { by: Some(by) } = f else {
            panic!("{f:?}")
        };
        assert!(
            by.contains("\"p1\"") && by.contains("exp1/grp/NetworkSerialPort/RawSerialPort"),
            "{by}"
        );
    }

    #[test]
    fn missing_ambiguous_unreachable_and_not_acquired_are_told_apart() {
        assert_eq!(
            classify("", fixture!("no_such_place.stderr")),
            Failure::NoSuchPlace("place pattern nosuch matches nothing".into())
        );
        assert!(matches!(
            classify("", fixture!("ambiguous_place.stderr")),
            Failure::NoSuchPlace(d) if d.contains("(p2, p1)")
        ));
        let Failure::Unreachable(detail) = classify("", fixture!("unreachable.stderr")) else {
            panic!("not unreachable")
        };
        assert!(
            detail.contains("127.0.0.1:1") && detail.contains("Connection refused"),
            "{detail}"
        );
        assert_eq!(
            classify("", fixture!("release_not_acquired.stderr")),
            Failure::NotAcquired
        );
        assert_eq!(
            classify("", fixture!("release_other_user.stderr")),
            Failure::Other
        );
        assert_eq!(
            classify("", fixture!("power_cycle_unreachable_pdu.stderr")),
            Failure::Other
        );
    }

    #[test]
    fn a_traceback_is_summed_up_by_its_cause() {
        let s = summary(fixture!("power_cycle_unreachable_pdu.stderr"));
        assert!(s.contains("requests.exceptions.ConnectionError"), "{s}");
        assert!(s.chars().count() <= SUMMARY_CHARS + 1);
        assert_eq!(summary("\n \n"), "(no output)");
    }

    #[test]
    fn acquired_and_holder_lines() {
        assert_eq!(
            acquired_name(fixture!("acquire_ok.stdout")).as_deref(),
            Some("p1")
        );
        assert_eq!(acquired_name(fixture!("release_ok.stdout")), None);
        assert_eq!(
            parse_holder(fixture!("show_acquired.stdout")),
            Some(Some("vm/root".into()))
        );
        assert_eq!(parse_holder(fixture!("show_released.stdout")), Some(None));
        assert_eq!(parse_holder("nothing"), None);
    }

    #[test]
    fn output_is_kept_within_its_bound() {
        let mut head = Vec::new();
        keep_bounded(&mut head, b"abcdef", Keep::Head(4));
        keep_bounded(&mut head, b"gh", Keep::Head(4));
        assert_eq!(head, b"abcd");
        let mut tail = Vec::new();
        keep_bounded(&mut tail, b"abcdef", Keep::Tail(4));
        keep_bounded(&mut tail, b"gh", Keep::Tail(4));
        assert_eq!(tail, b"efgh");
    }

    // ---- the client's handling, against fake `labgrid-client` scripts ----

    /// A fake client: `body` runs with `$last` = the subcommand's last word; every call's
    /// arguments are appended to `calls`.
    struct Fake {
        dir: tempfile::TempDir,
    }

    impl Fake {
        fn new(body: &str) -> Fake {
            let dir = tempfile::tempdir().unwrap();
            let script = format!(
                "#!/bin/sh\necho \"$*\" >> '{calls}'\nfor a; do last=$a; done\n{body}\n",
                calls = dir.path().join("calls").display()
            );
            // Written by a child shell, so no fd of this (multi-threaded) process ever has the
            // file open for writing: exec'ing it cannot fail with "text file busy".
            let mut sh = Command::new("sh")
                .args(["-c", "cat > \"$1\" && chmod +x \"$1\"", "sh"])
                .arg(dir.path().join("labgrid-client"))
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            sh.stdin
                .take()
                .unwrap()
                .write_all(script.as_bytes())
                .unwrap();
            assert!(sh.wait().unwrap().success());
            Fake { dir }
        }

        fn cfg(&self) -> PlaceConfig {
            PlaceConfig {
                coordinator: Some("127.0.0.1:1".into()),
                client: self.dir.path().join("labgrid-client"),
                acquire_timeout: Duration::from_secs(1),
                command_timeout: Duration::from_secs(5),
                ..PlaceConfig::new("p1")
            }
        }

        fn calls(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join("calls"))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    const TAKEN: &str = r#"case $last in
acquire) echo "labgrid-client: Error: Place p1 is already acquired by lab.example/alice. To work simultaneously, alice can execute 'labgrid-client -p p1 allow vm/root' on lab.example." >&2; exit 1;;
esac"#;

    #[test]
    fn a_taken_place_is_asked_for_until_the_timeout() {
        let fake = Fake::new(TAKEN);
        let started = Instant::now();
        let err = Place::acquire(&fake.cfg(), &Cancel::new()).unwrap_err();
        let LabgridError::Taken { place, by, waited } = &err else {
            panic!("{err}")
        };
        assert_eq!(
            (place.as_str(), by.as_deref()),
            ("p1", Some("lab.example/alice"))
        );
        assert!(*waited >= Duration::from_secs(1), "{waited:?}");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
        let calls = fake.calls();
        assert!(calls.len() >= 2, "{calls:?}");
        assert_eq!(calls[0], "-x 127.0.0.1:1 -p p1 acquire");
        assert!(
            err.to_string().contains("taken by lab.example/alice"),
            "{err}"
        );
    }

    #[test]
    fn cancel_ends_the_wait_for_a_taken_place() {
        let fake = Fake::new(TAKEN);
        let cfg = PlaceConfig {
            acquire_timeout: Duration::from_secs(60),
            ..fake.cfg()
        };
        let cancel = Cancel::new();
        let other = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            other.cancel(2);
        });
        let started = Instant::now();
        let err = Place::acquire(&cfg, &cancel).unwrap_err();
        t.join().unwrap();
        assert!(matches!(err, LabgridError::Cancelled { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(6));
    }

    #[test]
    fn a_hung_client_is_killed_with_its_children() {
        let fake = Fake::new("sleep 30 & sleep 30");
        let cfg = PlaceConfig {
            command_timeout: Duration::from_millis(300),
            ..fake.cfg()
        };
        let started = Instant::now();
        let err = Place::acquire(&cfg, &Cancel::new()).unwrap_err();
        assert!(
            matches!(&err, LabgridError::Timeout { command, .. } if command == "acquire"),
            "{err}"
        );
        // The release after the interrupted acquire timed out too; both were killed, with the
        // background sleep holding the pipes, well before 30 s.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(fake.calls().len(), 2);
    }

    #[test]
    fn a_missing_client_is_no_client() {
        let cfg = PlaceConfig {
            client: PathBuf::from("/nonexistent/labgrid-client"),
            ..PlaceConfig::new("p1")
        };
        let err = Place::acquire(&cfg, &Cancel::new()).unwrap_err();
        assert!(
            matches!(&err, LabgridError::NoClient { place, .. } if place == "p1"),
            "{err}"
        );
        assert!(err.to_string().contains("/nonexistent/labgrid-client"));
    }

    #[test]
    fn endless_output_is_bounded() {
        let fake =
            Fake::new("head -c 3000000 /dev/zero | tr '\\0' a; head -c 100000 /dev/zero >&2");
        let out = run(&fake.cfg(), &["env"], None).unwrap();
        assert_eq!(out.stdout.len(), STDOUT_CAP);
        assert_eq!(out.stderr.len(), STDERR_CAP);
    }

    #[test]
    fn a_place_matched_by_substring_is_given_back() {
        let fake = Fake::new("case $last in acquire) echo 'acquired place p10';; esac");
        let err = Place::acquire(&fake.cfg(), &Cancel::new()).unwrap_err();
        assert!(
            matches!(&err, LabgridError::NoSuchPlace { detail, .. } if detail.contains("\"p10\"")),
            "{err}"
        );
        assert_eq!(fake.calls()[1], "-x 127.0.0.1:1 -p p10 release");
    }

    #[test]
    fn drop_releases_once_and_release_does_not_repeat() {
        let fake = Fake::new(
            "case $last in acquire) echo 'acquired place p1';; release) echo 'released place p1';; esac",
        );
        let cfg = fake.cfg();
        drop(Place::acquire(&cfg, &Cancel::new()).unwrap());
        Place::acquire(&cfg, &Cancel::new())
            .unwrap()
            .release()
            .unwrap();
        let calls: Vec<String> = fake
            .calls()
            .iter()
            .map(|c| c.rsplit(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(calls, ["acquire", "release", "acquire", "release"]);
    }

    #[test]
    fn failed_commands_quote_labgrid() {
        let fake = Fake::new(
            "case $last in acquire) echo 'acquired place p1';; cycle) echo 'Traceback...' >&2; echo 'requests.exceptions.ConnectionError: refused' >&2; exit 2;; release) exit 0;; esac",
        );
        let place = Place::acquire(&fake.cfg(), &Cancel::new()).unwrap();
        let err = place.power_cycle().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`power cycle`") && text.contains("ConnectionError: refused"),
            "{text}"
        );
        assert!(text.contains("127.0.0.1:1"), "{text}");
    }
}
