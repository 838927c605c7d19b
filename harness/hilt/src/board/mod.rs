//! A board session: one unit of a board profile made reachable — launched if virtual, its variables
//! resolved, its links opened on demand and its credentials read from where the profile says.

mod launch;

use hilt_link::{Cancel, Console, ConsoleOptions, Pacing, Port, SerialPort};
use hilt_model::profile::{BoardProfile, Credential, Link, SecretSource, SerialTarget, Unit};
use hilt_model::template::{Template, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use launch::VirtualProcess;

use crate::cloud::CloudSession;
use crate::exec::Bench;

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("cannot launch the board: {0}")]
    Launch(String),
    #[error("{0}")]
    Profile(String),
    #[error("link {link}: {source}")]
    Link {
        link: String,
        #[source]
        source: hilt_link::LinkError,
    },
    #[error("{0}")]
    Secret(String),
    /// The link's device is not on this bench (not attached, not in range, no radio): the case cannot
    /// be tested here, which is no fault of the device.
    #[error("link {link}: {why}")]
    Unreachable { link: String, why: String },
    /// The board's labgrid place could not be had (taken past the wait, no coordinator, no client).
    #[error("labgrid: {0}")]
    Labgrid(#[from] crate::labgrid::LabgridError),
}

impl BoardError {
    /// The verdict a case gets when this stops it.
    pub fn verdict(&self) -> hilt_model::Verdict {
        match self {
            BoardError::Unreachable { .. }
            | BoardError::Link {
                source: hilt_link::LinkError::UsbNotFound { .. },
                ..
            } => hilt_model::Verdict::NotTested,
            _ => hilt_model::Verdict::Error,
        }
    }
}

/// How to open a session.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Defects to launch a virtual board with.
    pub defects: Vec<String>,
    /// The hilt executable, for `{hilt}` in launch commands.
    pub hilt_exe: PathBuf,
    /// Ends waits for the board (a labgrid place someone else holds) when the run is interrupted.
    pub cancel: Cancel,
}

pub struct BoardSession {
    pub profile: Arc<BoardProfile>,
    pub unit: Unit,
    pub defects: Vec<String>,
    opts: SessionOptions,
    vars: BTreeMap<String, String>,
    // Field order matters: stop the boards, then their cloud, before the state directories are
    // removed. Processes are held for their Drop, which stops them.
    /// The other units of a fleet (by index, 1 = the second unit), launched when a case first reads
    /// their memory and stopped when it ends; their state directories outlive them.
    fleet: Mutex<BTreeMap<usize, FleetUnit>>,
    process: Option<VirtualProcess>,
    cloud: Option<CloudSession>,
    _state: tempfile::TempDir,
    /// State directories of units 2, 3, …: their labels and flash persist from case to case.
    fleet_states: Vec<tempfile::TempDir>,
    /// The labgrid place, released last: after the board and its cloud have stopped.
    place: Option<crate::labgrid::Place>,
}

/// A launched unit other than the unit under test.
struct FleetUnit {
    vars: BTreeMap<String, String>,
    _process: Option<VirtualProcess>,
}

impl BoardSession {
    pub fn open(
        profile: Arc<BoardProfile>,
        opts: &SessionOptions,
    ) -> Result<BoardSession, BoardError> {
        let unit = profile.units[0].clone();
        let state = state_dir()?;
        let fleet_states = (1..profile.units.len())
            .map(|_| state_dir())
            .collect::<Result<Vec<_>, _>>()?;
        let mut vars = unit_vars(&profile, opts, 0, state.path());
        let place = match &profile.labgrid {
            Some(declared) => Some(acquire_place(declared, opts, &mut vars)?),
            None => None,
        };
        let mut cloud = None;
        if profile.cloud_link().is_some() {
            // One account and client certificate per unit, so a fleet's units are told apart.
            let serials: Vec<String> = profile.units.iter().map(|u| u.serial.clone()).collect();
            let c = CloudSession::start(
                std::net::Ipv4Addr::LOCALHOST.into(),
                &serials,
                state.path(),
                hilt_cloud::FlowLog::new(),
            )
            .map_err(|e| BoardError::Launch(e.to_string()))?;
            vars.extend(c.vars(state.path()));
            cloud = Some(c);
        }
        let process = launch(&profile, opts, &mut vars)?;
        Ok(BoardSession {
            profile,
            unit,
            defects: opts.defects.clone(),
            opts: opts.clone(),
            vars,
            fleet: Mutex::new(BTreeMap::new()),
            process,
            cloud,
            _state: state,
            fleet_states,
            place,
        })
    }

    /// The variables of unit `index` (0 = the unit under test), launching it first if it is another
    /// unit of a virtual fleet that is not running.
    fn unit_vars_launched(&self, index: usize) -> Result<BTreeMap<String, String>, BoardError> {
        if index == 0 {
            return Ok(self.vars.clone());
        }
        let state = self.fleet_states.get(index - 1).ok_or_else(|| {
            BoardError::Profile(format!("the board profile has no unit {}", index + 1))
        })?;
        let mut fleet = self.fleet.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = fleet.get(&index) {
            return Ok(u.vars.clone());
        }
        let mut vars = unit_vars(&self.profile, &self.opts, index, state.path());
        if let Some(c) = &self.cloud {
            let serial = &self.profile.units[index].serial;
            let own = c.vars_for(serial, self._state.path()).ok_or_else(|| {
                BoardError::Launch(format!("the mock cloud has no account for unit {serial}"))
            })?;
            vars.extend(own);
        }
        tracing::info!(unit = index + 1, "launching another unit of the fleet");
        let process = launch(&self.profile, &self.opts, &mut vars)?;
        fleet.insert(
            index,
            FleetUnit {
                vars: vars.clone(),
                _process: process,
            },
        );
        Ok(vars)
    }

    /// The variables of unit `index` as they stand, without launching it: a fleet unit never
    /// launched has its state directory but nothing in it yet.
    fn unit_vars_now(&self, index: usize) -> Result<BTreeMap<String, String>, BoardError> {
        if index == 0 {
            return Ok(self.vars.clone());
        }
        let state = self.fleet_states.get(index - 1).ok_or_else(|| {
            BoardError::Profile(format!("the board profile has no unit {}", index + 1))
        })?;
        let fleet = self.fleet.lock().unwrap_or_else(|p| p.into_inner());
        Ok(fleet
            .get(&index)
            .map(|u| u.vars.clone())
            .unwrap_or_else(|| unit_vars(&self.profile, &self.opts, index, state.path())))
    }

    /// Stops every launched unit but the unit under test (their state stays for the next case).
    pub fn release_fleet(&self) {
        let mut fleet = self.fleet.lock().unwrap_or_else(|p| p.into_inner());
        if !fleet.is_empty() {
            tracing::info!(units = fleet.len(), "stopping the other units of the fleet");
        }
        fleet.clear();
    }

    /// The board's mock cloud, when its profile declares a cloud link.
    pub fn cloud(&self) -> Option<&CloudSession> {
        self.cloud.as_ref()
    }

    /// Open a console on a serial link; its waits end when `cancel` is set.
    pub fn open_console(
        &self,
        link: &str,
        cancel: Cancel,
    ) -> Result<Console<Box<dyn Port>>, BoardError> {
        let s = match self.profile.links.get(link) {
            Some(Link::Serial(s)) => s,
            Some(Link::Ble(_)) => {
                let plan = Bench::ble_plan(self, link).map_err(BoardError::Profile)?;
                return plan.open_console(cancel).map_err(|e| {
                    let (link, why) = (link.to_string(), e.to_string());
                    match crate::ble::trouble(&e) {
                        hilt_model::Verdict::NotTested => BoardError::Unreachable { link, why },
                        _ => BoardError::Profile(format!("link {link}: {why}")),
                    }
                });
            }
            _ => {
                return Err(BoardError::Profile(format!(
                    "no serial or ble link {link:?} in {}",
                    self.profile.path.display()
                )));
            }
        };
        let link_err = |source| BoardError::Link {
            link: link.into(),
            source,
        };
        // A console found by USB identity is found again, by the same identity, if it re-enumerates.
        let (port, reattach): (Box<dyn Port>, _) = match s.target() {
            SerialTarget::Path(t) => {
                let path = PathBuf::from(render(t, &self.vars)?.text);
                let port = open_port(&path, s.baud, &cancel).map_err(link_err)?;
                (Box::new(port), None)
            }
            SerialTarget::Usb(m) => {
                let (identity, bus) = crate::usb::target(m, s.bus.as_ref(), |t| self.text(t))
                    .map_err(BoardError::Profile)?;
                let path = identity.resolve_tty(bus.as_ref()).map_err(link_err)?;
                let within = Duration::from_millis(s.reattach_ms);
                let reattach = (s.reattach_ms > 0)
                    .then(|| hilt_link::Reattach::usb(identity, bus, s.baud, within));
                let port = open_port(&path, s.baud, &cancel).map_err(link_err)?;
                (Box::new(port), reattach)
            }
            SerialTarget::Net(n) => {
                let address = self.text(&n.address).map_err(BoardError::Profile)?;
                let port = crate::netserial::open(n.protocol, &address, s).map_err(|e| {
                    if e.is_unreachable() {
                        BoardError::Unreachable {
                            link: link.into(),
                            why: e.to_string(),
                        }
                    } else {
                        link_err(e)
                    }
                })?;
                (port, None)
            }
        };
        let mut opts = ConsoleOptions {
            cancel: Some(cancel),
            ..ConsoleOptions::default()
        };
        if s.char_delay_us > 0 {
            opts.pacing = Pacing {
                per_byte: Duration::from_micros(s.char_delay_us),
                ..Pacing::default()
            };
        }
        let mut console = Console::new(port, opts);
        if let Some(r) = reattach {
            console.set_reattach(r);
        }
        Ok(console)
    }
}

impl Bench for BoardSession {
    fn profile(&self) -> &BoardProfile {
        &self.profile
    }

    fn unit(&self) -> &Unit {
        &self.unit
    }

    fn credential(&self, unit: usize, surface: &str, field: &str) -> Result<Value, String> {
        let u = self
            .profile
            .units
            .get(unit)
            .ok_or_else(|| format!("the board profile has no unit {}", unit + 1))?;
        // Never launches a unit: a fleet unit's label exists once a step has read its memory.
        let vars = self.unit_vars_now(unit).map_err(|e| e.to_string())?;
        unit_credential(u, surface, field, &vars).map_err(|e| e.to_string())
    }

    fn open_console(
        &self,
        link: &str,
        cancel: Cancel,
    ) -> Result<Console<Box<dyn Port>>, (hilt_model::Verdict, String)> {
        BoardSession::open_console(self, link, cancel).map_err(|e| (e.verdict(), e.to_string()))
    }

    fn cloud(&self) -> Option<&CloudSession> {
        self.cloud.as_ref()
    }

    fn mask(&self, secret: &str, label: &str) {
        if let Some(c) = &self.cloud {
            c.mask_secret(secret, label);
        }
        if let Some(p) = &self.process {
            p.mask(secret, label);
        }
    }

    fn memory_plan(&self, link: &str, unit: usize) -> Result<crate::memory::MemoryPlan, String> {
        let Some(Link::Memory(decl)) = self.profile.links.get(link) else {
            return Err(format!(
                "no memory link {link:?} in {}",
                self.profile.path.display()
            ));
        };
        let vars = self.unit_vars_launched(unit).map_err(|e| e.to_string())?;
        crate::memory::MemoryPlan::new(link, decl, |t| {
            render(t, &vars).map(|v| v.text).map_err(|e| e.to_string())
        })
    }

    fn usb_plan(&self, link: &str) -> Result<crate::usb::UsbPlan, String> {
        let Some(Link::Usb(decl)) = self.profile.links.get(link) else {
            return Err(format!(
                "no usb link {link:?} in {}",
                self.profile.path.display()
            ));
        };
        crate::usb::plan(link, decl, |t| self.text(t))
    }

    fn power_switch(&self, link: &str) -> Result<Box<dyn crate::power::PowerSwitch>, String> {
        let Some(Link::Power(decl)) = self.profile.links.get(link) else {
            return Err(format!(
                "no power link {link:?} in {}",
                self.profile.path.display()
            ));
        };
        match decl.via {
            hilt_model::profile::PowerVia::Labgrid => {
                let place = self.place.as_ref().ok_or_else(|| {
                    format!("power link {link:?} is switched by labgrid, but no place is held")
                })?;
                Ok(Box::new(crate::power::LabgridPower {
                    place: place.config().clone(),
                }))
            }
        }
    }

    fn ble_plan(&self, link: &str) -> Result<crate::ble::BlePlan, String> {
        let Some(Link::Ble(decl)) = self.profile.links.get(link) else {
            return Err(format!(
                "no ble link {link:?} in {}",
                self.profile.path.display()
            ));
        };
        crate::ble::plan(link, decl, |t| self.text(t), None)
    }

    fn end_case(&self) {
        self.release_fleet();
    }
}

impl BoardSession {
    /// `t` rendered with the unit under test's variables.
    fn text(&self, t: &Template) -> Result<String, String> {
        render(t, &self.vars)
            .map(|v| v.text)
            .map_err(|e| e.to_string())
    }
}

/// How long a port another holder has locked is retried: a process forked elsewhere in hilt (a board
/// launched by another thread) holds every open descriptor until it execs, the port's lock included,
/// and a serial tool of the lab's may hold it for a moment.
const PORT_BUSY_RETRY: Duration = Duration::from_secs(2);

/// Opens a serial port, retrying for [`PORT_BUSY_RETRY`] while it is locked by another holder.
fn open_port(path: &Path, baud: u32, cancel: &Cancel) -> Result<SerialPort, hilt_link::LinkError> {
    let until = std::time::Instant::now() + PORT_BUSY_RETRY;
    loop {
        match SerialPort::open(path, baud) {
            Err(e)
                if e.is_busy() && std::time::Instant::now() < until && !cancel.is_cancelled() =>
            {
                tracing::debug!(path = %path.display(), %e, "serial port busy: retrying");
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// A 0700 state directory: it holds the unit's label (its password) and the cloud's passwords.
fn state_dir() -> Result<tempfile::TempDir, BoardError> {
    tempfile::Builder::new()
        .prefix("hilt-board-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|e| BoardError::Launch(format!("cannot create a state directory: {e}")))
}

/// `state`, `hilt`, `profile_dir`, `unit.serial` and `unit.index` (1-based) of unit `index`.
fn unit_vars(
    profile: &BoardProfile,
    opts: &SessionOptions,
    index: usize,
    state: &Path,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("state".to_string(), state.display().to_string()),
        ("hilt".to_string(), opts.hilt_exe.display().to_string()),
        (
            "profile_dir".to_string(),
            profile.dir().display().to_string(),
        ),
        (
            "unit.serial".to_string(),
            profile.units[index].serial.clone(),
        ),
        ("unit.index".to_string(), (index + 1).to_string()),
    ])
}

/// Acquire the board's labgrid place (waiting as declared while someone else holds it) and add its
/// resources to `vars`: `labgrid.place`, `labgrid.serial` (`HOST:PORT` of its first network serial
/// port) and `labgrid.serial.NAME` for each.
fn acquire_place(
    declared: &hilt_model::profile::LabgridPlace,
    opts: &SessionOptions,
    vars: &mut BTreeMap<String, String>,
) -> Result<crate::labgrid::Place, BoardError> {
    let mut cfg = crate::labgrid::PlaceConfig::new(&declared.place);
    cfg.coordinator = declared.coordinator.clone();
    if let Some(client) = &declared.client {
        cfg.client = PathBuf::from(client);
    }
    cfg.acquire_timeout = Duration::from_millis(declared.acquire_timeout_ms);
    let place = crate::labgrid::Place::acquire(&cfg, &opts.cancel)?;
    let resources = place.resources()?;
    vars.insert("labgrid.place".into(), declared.place.clone());
    for (i, port) in resources.serial.iter().enumerate() {
        let address = match port.url().split_once("://") {
            Some((_, address)) => address.to_string(),
            None => port.url(),
        };
        if i == 0 {
            vars.insert("labgrid.serial".into(), address.clone());
        }
        vars.insert(format!("labgrid.serial.{}", port.name), address);
    }
    tracing::info!(place = %declared.place, serial_ports = resources.serial.len(), "acquired the labgrid place");
    Ok(place)
}

/// Launches the board for the unit `vars` describe, when the profile says how; its ready line's
/// named groups become `launch.NAME` variables.
fn launch(
    profile: &BoardProfile,
    opts: &SessionOptions,
    vars: &mut BTreeMap<String, String>,
) -> Result<Option<VirtualProcess>, BoardError> {
    let Some(launch) = &profile.launch else {
        if !opts.defects.is_empty() {
            return Err(BoardError::Profile(format!(
                "{}: defects need a [launch] section (a virtual board)",
                profile.path.display()
            )));
        }
        return Ok(None);
    };
    let mut argv = Vec::new();
    for t in &launch.command {
        argv.push(render(t, vars)?.text);
    }
    for d in &opts.defects {
        if !launch.defects.contains_key(d) {
            return Err(BoardError::Profile(format!(
                "{}: unknown defect {d:?} (declared: {})",
                profile.path.display(),
                launch
                    .defects
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if let Some(flag) = &launch.defect_flag {
            argv.push(flag.clone());
        }
        argv.push(d.clone());
    }
    let ready = regex::Regex::new(launch.ready.get_ref())
        .map_err(|e| BoardError::Profile(e.to_string()))?;
    tracing::info!(board = profile.name(), defects = ?opts.defects, "launching virtual board");
    let (p, launch_vars) = VirtualProcess::start(
        &argv,
        &ready,
        Duration::from_millis(launch.ready_timeout_ms),
    )?;
    for (k, v) in launch_vars {
        vars.insert(format!("launch.{k}"), v);
    }
    Ok(Some(p))
}

fn unit_credential(
    unit: &Unit,
    surface: &str,
    field: &str,
    vars: &BTreeMap<String, String>,
) -> Result<Value, BoardError> {
    let cred: &Credential = unit.credentials.get(surface).ok_or_else(|| {
        BoardError::Profile(format!(
            "unit {} declares no credentials for {surface:?}",
            unit.serial
        ))
    })?;
    match field {
        "username" => Ok(Value::plain(cred.username.clone())),
        "password" => read_secret(&cred.password, vars).map(Value::secret),
        other => Err(BoardError::Profile(format!(
            "credential field {other:?} (known: username, password)"
        ))),
    }
}

fn render(t: &Template, vars: &BTreeMap<String, String>) -> Result<Value, BoardError> {
    t.render(|name| {
        vars.get(name)
            .map(|v| Value::plain(v.clone()))
            .ok_or_else(|| {
                BoardError::Profile(format!("unknown variable {{{name}}} in {:?}", t.source()))
            })
    })
}

fn read_secret(src: &SecretSource, vars: &BTreeMap<String, String>) -> Result<String, BoardError> {
    match src {
        SecretSource::Env { env } => std::env::var(env)
            .map_err(|_| BoardError::Secret(format!("environment variable {env} is not set"))),
        SecretSource::File { file, key } => {
            let path = render(file, vars)?.text;
            read_secret_file(Path::new(&path), key.as_deref())
        }
    }
}

/// A secret from a file people write (a unit label): read bounded, only if it is a regular file (see
/// `hilt_model::fsread`); its whole content trimmed, or the value of its `key=` line.
fn read_secret_file(path: &Path, key: Option<&str>) -> Result<String, BoardError> {
    let text =
        hilt_model::fsread::read_text(path).map_err(|e| BoardError::Secret(e.to_string()))?;
    let Some(k) = key else {
        return Ok(text.trim().to_string());
    };
    text.lines()
        .find_map(|l| {
            l.split_once('=')
                .filter(|(lk, _)| lk.trim() == k)
                .map(|(_, v)| v.trim().to_string())
        })
        .ok_or_else(|| BoardError::Secret(format!("{}: has no {k}= line", path.display())))
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn a_label_file_gives_the_keyed_value() {
        let dir = tempfile::tempdir().unwrap();
        let label = dir.path().join("label.txt");
        std::fs::write(&label, "serial = X1\npassword = s3cret\n").unwrap();
        let pw = read_secret_file(&label, Some("password")).unwrap();
        assert_eq!(pw, "s3cret");
        let err = read_secret_file(&label, Some("pin")).unwrap_err();
        assert!(matches!(err, BoardError::Secret(_)), "{err}");
    }

    #[test]
    fn a_credential_that_is_no_regular_file_is_a_secret_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("label.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let started = std::time::Instant::now();
        for (path, why) in [
            (
                Path::new("/dev/zero"),
                "is not a regular file (a character device)",
            ),
            (fifo.as_path(), "is not a regular file (a FIFO)"),
            (dir.path(), "is not a regular file (a directory)"),
        ] {
            let err = read_secret_file(path, Some("password")).unwrap_err();
            let BoardError::Secret(msg) = &err else {
                panic!("not a secret error: {err}");
            };
            assert_eq!(msg, &format!("{}: {why}", path.display()));
        }
        let big = dir.path().join("big.txt");
        std::fs::File::create(&big)
            .and_then(|f| f.set_len(17 << 20))
            .unwrap();
        let err = read_secret_file(&big, None).unwrap_err().to_string();
        assert!(err.contains("larger than the 16 MiB limit"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
