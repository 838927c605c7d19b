//! A board session: one unit of a board profile made reachable — launched if virtual, its variables
//! resolved, its links opened on demand and its credentials read from where the profile says.

mod launch;

use hilt_link::{Console, ConsoleOptions, Pacing, SerialPort};
use hilt_model::profile::{BoardProfile, Credential, Link, SecretSource, SerialTarget, Unit};
use hilt_model::template::{Template, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use launch::VirtualProcess;

use crate::cloud::CloudSession;

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
}

/// How to open a session.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Defects to launch a virtual board with.
    pub defects: Vec<String>,
    /// The hilt executable, for `{hilt}` in launch commands.
    pub hilt_exe: PathBuf,
}

pub struct BoardSession {
    pub profile: Arc<BoardProfile>,
    pub unit: Unit,
    pub defects: Vec<String>,
    vars: BTreeMap<String, String>,
    // Field order matters: stop the board, then its cloud, before the state directory is removed.
    // Held for its Drop, which stops the board.
    _process: Option<VirtualProcess>,
    cloud: Option<CloudSession>,
    _state: tempfile::TempDir,
}

impl BoardSession {
    pub fn open(
        profile: Arc<BoardProfile>,
        opts: &SessionOptions,
    ) -> Result<BoardSession, BoardError> {
        let unit = profile.units[0].clone();
        let state = tempfile::Builder::new()
            .prefix("hilt-board-")
            .tempdir()
            .map_err(|e| BoardError::Launch(format!("cannot create a state directory: {e}")))?;
        let mut vars = BTreeMap::new();
        vars.insert("state".to_string(), state.path().display().to_string());
        vars.insert("hilt".to_string(), opts.hilt_exe.display().to_string());
        vars.insert(
            "profile_dir".to_string(),
            profile.dir().display().to_string(),
        );
        vars.insert("unit.serial".to_string(), unit.serial.clone());
        let mut cloud = None;
        if profile.cloud_link().is_some() {
            let c = CloudSession::start(
                std::net::Ipv4Addr::LOCALHOST.into(),
                std::slice::from_ref(&unit.serial),
                state.path(),
                hilt_cloud::FlowLog::new(),
            )
            .map_err(|e| BoardError::Launch(e.to_string()))?;
            vars.extend(c.vars(state.path()));
            cloud = Some(c);
        }
        let mut process = None;
        match &profile.launch {
            Some(launch) => {
                let mut argv = Vec::new();
                for t in &launch.command {
                    argv.push(render(t, &vars)?.text);
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
                process = Some(p);
            }
            None if !opts.defects.is_empty() => {
                return Err(BoardError::Profile(format!(
                    "{}: defects need a [launch] section (a virtual board)",
                    profile.path.display()
                )));
            }
            None => {}
        }
        Ok(BoardSession {
            profile,
            unit,
            defects: opts.defects.clone(),
            vars,
            _process: process,
            cloud,
            _state: state,
        })
    }

    /// The board's mock cloud, when its profile declares a cloud link.
    pub fn cloud(&self) -> Option<&CloudSession> {
        self.cloud.as_ref()
    }

    /// A unit credential field: `username` (plain) or `password` (secret).
    pub fn credential(&self, surface: &str, field: &str) -> Result<Value, BoardError> {
        let cred: &Credential = self.unit.credentials.get(surface).ok_or_else(|| {
            BoardError::Profile(format!(
                "unit {} declares no credentials for {surface:?}",
                self.unit.serial
            ))
        })?;
        match field {
            "username" => Ok(Value::plain(cred.username.clone())),
            "password" => read_secret(&cred.password, &self.vars).map(Value::secret),
            other => Err(BoardError::Profile(format!(
                "credential field {other:?} (known: username, password)"
            ))),
        }
    }

    /// Open a console on a serial link.
    pub fn open_console(&self, link: &str) -> Result<Console<SerialPort>, BoardError> {
        let Some(Link::Serial(s)) = self.profile.links.get(link) else {
            return Err(BoardError::Profile(format!(
                "no link {link:?} in {}",
                self.profile.path.display()
            )));
        };
        let path = match s.target() {
            SerialTarget::Path(t) => PathBuf::from(render(t, &self.vars)?.text),
            SerialTarget::Usb(m) => {
                let (vid, pid) = m.ids().map_err(BoardError::Profile)?;
                let want = hilt_link::UsbMatch {
                    vid,
                    pid,
                    serial: m.serial.clone(),
                };
                hilt_link::find_usb_serial(&want).map_err(|source| BoardError::Link {
                    link: link.into(),
                    source,
                })?
            }
        };
        let port = SerialPort::open(&path, s.baud).map_err(|source| BoardError::Link {
            link: link.into(),
            source,
        })?;
        let mut opts = ConsoleOptions::default();
        if s.char_delay_us > 0 {
            opts.pacing = Pacing {
                per_byte: Duration::from_micros(s.char_delay_us),
                ..Pacing::default()
            };
        }
        Ok(Console::new(port, opts))
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
            let text = std::fs::read_to_string(Path::new(&path))
                .map_err(|e| BoardError::Secret(format!("cannot read {path}: {e}")))?;
            match key {
                None => Ok(text.trim().to_string()),
                Some(k) => text
                    .lines()
                    .find_map(|l| {
                        l.split_once('=')
                            .filter(|(lk, _)| lk.trim() == k)
                            .map(|(_, v)| v.trim().to_string())
                    })
                    .ok_or_else(|| BoardError::Secret(format!("{path} has no {k}= line"))),
            }
        }
    }
}
