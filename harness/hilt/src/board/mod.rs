//! A board session: one unit of a board profile made reachable — launched if virtual, its variables
//! resolved, its links opened on demand and its credentials read from where the profile says.

mod launch;

use hilt_link::{Cancel, Console, ConsoleOptions, Pacing, Port, SerialPort};
use hilt_model::profile::{BoardProfile, Credential, Link, SecretSource, SerialTarget, Unit};
use hilt_model::template::{Template, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    process: Option<VirtualProcess>,
    cloud: Option<CloudSession>,
    _state: tempfile::TempDir,
}

impl BoardSession {
    pub fn open(
        profile: Arc<BoardProfile>,
        opts: &SessionOptions,
    ) -> Result<BoardSession, BoardError> {
        let unit = profile.units[0].clone();
        // 0700: it holds the unit's label (its password) and the cloud password.
        let state = tempfile::Builder::new()
            .prefix("hilt-board-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
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
            process,
            cloud,
            _state: state,
        })
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
        let Some(Link::Serial(s)) = self.profile.links.get(link) else {
            return Err(BoardError::Profile(format!(
                "no link {link:?} in {}",
                self.profile.path.display()
            )));
        };
        let path = match s.target() {
            SerialTarget::Path(t) => PathBuf::from(render(t, &self.vars)?.text),
            SerialTarget::Usb(m) => {
                let want = hilt_link::UsbMatch {
                    vid: m.vid,
                    pid: m.pid,
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
        Ok(Console::new(Box::new(port), opts))
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
        let unit = self
            .profile
            .units
            .get(unit)
            .ok_or_else(|| format!("the board profile has no unit {}", unit + 1))?;
        unit_credential(unit, surface, field, &self.vars).map_err(|e| e.to_string())
    }

    fn open_console(&self, link: &str, cancel: Cancel) -> Result<Console<Box<dyn Port>>, String> {
        BoardSession::open_console(self, link, cancel).map_err(|e| e.to_string())
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
