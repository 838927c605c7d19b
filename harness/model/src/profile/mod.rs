//! Board profiles (`boards/*.toml`): what the device is (identity, units, ICS, IXIT) and how each abstract
//! action is carried out on it (bindings over its links). Validated strictly at load.

mod binding;
mod ble;
mod labgrid;
mod link;
mod memory;
mod netserial;
mod update;

pub use binding::{Binding, ExpectSpec, Script, ScriptStep, StepKind};
pub use ble::{BleLink, DEFAULT_SCAN_MS};
pub use labgrid::{DEFAULT_ACQUIRE_TIMEOUT_MS, LabgridPlace};
pub use link::{
    CloudLink, DEFAULT_REATTACH_MS, Link, PowerLink, PowerVia, SerialLink, SerialTarget, UsbLink,
    UsbMatch,
};
pub use memory::{MemoryLink, MemorySource, RegionDecl};
pub use netserial::{Flow, LineSettings, NetProtocol, NetSerial, Parity};
pub use update::{DeclaredImage, DeclaredImages, UpdateOffers};

use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::catalogue::Catalogue;
use crate::error::{LoadError, Source, read};
use crate::ics::Ics;
use crate::ixit::Ixit;
use crate::template::Template;

pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone)]
pub struct BoardProfile {
    pub path: PathBuf,
    /// The exact bytes loaded, for the report's digest.
    pub text: String,
    pub board: BoardInfo,
    pub identity: Identity,
    pub units: Vec<Unit>,
    pub links: BTreeMap<String, Link>,
    pub launch: Option<Launch>,
    /// The labgrid place the board is, when a lab shares it through labgrid.
    pub labgrid: Option<LabgridPlace>,
    pub ics: Ics,
    pub ixit: Ixit,
    /// Data flows declared in the IXIT, against which the mock cloud's flow log is classified.
    pub flows: Vec<crate::flows::DeclaredFlow>,
    pub bindings: BTreeMap<String, Binding>,
    /// How the mock update server makes offers for this board (`None`: it makes none, and update
    /// cases are NOT_TESTED).
    pub update: Option<UpdateOffers>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardInfo {
    /// Short name used in trial names and run directories.
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub manufacturer: String,
    pub model: String,
    pub hardware_version: String,
    pub firmware_version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub serial: String,
    /// Credentials per authentication surface (e.g. `console`), as printed on the unit or set by the lab.
    #[serde(default)]
    pub credentials: BTreeMap<String, Credential>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub username: String,
    pub password: SecretSource,
}

/// Where a secret comes from. Never written into a profile in the clear: a plain string is a load
/// error that shows the two forms to use instead.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// An environment variable.
    Env { env: String },
    /// A file: its whole content (trimmed), or the value of `key=` in a key=value file (a unit label).
    File { file: Template, key: Option<String> },
}

/// The two ways to give a secret, as said in errors.
const SECRET_FORMS: &str = "`{ env = \"VAR\" }` (an environment variable) or `{ file = \"path\", key = \"password\" }` (a key=value file such as a unit label; without `key`, the whole file)";

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = SecretSource;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a secret source: {SECRET_FORMS}")
    }

    /// A string here is the secret itself. Never echo it: say how to move it out of the profile.
    fn visit_str<E: serde::de::Error>(self, _secret: &str) -> Result<SecretSource, E> {
        Err(E::custom(format!(
            "a password must not be written in the profile in the clear; use {SECRET_FORMS}"
        )))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SecretSource, A::Error> {
        let raw = RawSecret::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        raw.into_source().map_err(serde::de::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    env: Option<String>,
    file: Option<Template>,
    key: Option<String>,
}

impl RawSecret {
    fn into_source(self) -> Result<SecretSource, String> {
        match (self.env, self.file, self.key) {
            (Some(env), None, None) => Ok(SecretSource::Env { env }),
            (None, Some(file), key) => Ok(SecretSource::File { file, key }),
            (Some(_), None, Some(_)) => Err("`key` goes with `file`, not with `env`".into()),
            _ => Err(format!(
                "give exactly one of `env` or `file`: {SECRET_FORMS}"
            )),
        }
    }
}

/// How a virtual board (or an emulator) is launched, as a lab would start one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    /// Program and arguments. `{hilt}` is the running hilt executable, `{state}` a fresh state directory,
    /// `{unit.serial}` the unit's serial number.
    pub command: Vec<Template>,
    /// Regex matched against each stdout line; its named groups become `{launch.NAME}` variables.
    pub ready: Spanned<String>,
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_ms: u64,
    /// Flag placed before each defect name.
    pub defect_flag: Option<String>,
    /// Each case may run on its own freshly launched instance (factory state, its own mock cloud),
    /// so cases run side by side and none sees another's state. Off for a board whose instances
    /// share something a case could change (a single emulator image, say).
    #[serde(default)]
    pub fresh_per_case: bool,
    /// Named defects the board can be launched with, and the cases each must make FAIL.
    #[serde(default)]
    pub defects: BTreeMap<String, Spanned<DefectSpec>>,
}

fn default_ready_timeout() -> u64 {
    10_000
}

/// A named defect of a virtual board: the cases it must make FAIL, and for each the step or check that
/// must be the one failing (`hilt selftest` proves the case failed for the reason it claims):
///
/// ```toml
/// [launch.defects.no-login-rate-limit]
/// description = "the console accepts unlimited login attempts at full speed"
/// fails = { "bf.console.lockout" = "check:throttled" }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefectSpec {
    #[serde(default)]
    pub description: String,
    /// Case id → the item that must fail in it.
    #[serde(default)]
    pub fails: BTreeMap<String, FailingItem>,
    /// The old form (a list of case ids), refused with a hint to write `fails`.
    #[serde(default)]
    targets: Option<Vec<String>>,
}

impl DefectSpec {
    /// The cases the defect must make FAIL.
    pub fn targets(&self) -> impl Iterator<Item = &String> {
        self.fails.keys()
    }

    pub fn targets_case(&self, id: &str) -> bool {
        self.fails.contains_key(id)
    }
}

/// What fails in a case: one of its steps (an attempt answered against its `expect`) or one of its checks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(into = "String")]
pub enum FailingItem {
    Step(String),
    Check(String),
}

impl std::fmt::Display for FailingItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailingItem::Step(id) => write!(f, "step:{id}"),
            FailingItem::Check(kind) => write!(f, "check:{kind}"),
        }
    }
}

impl From<FailingItem> for String {
    fn from(i: FailingItem) -> String {
        i.to_string()
    }
}

impl std::str::FromStr for FailingItem {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("step", id)) if !id.is_empty() => Ok(FailingItem::Step(id.into())),
            Some(("check", kind)) if !kind.is_empty() => Ok(FailingItem::Check(kind.into())),
            _ => Err(format!(
                "{s:?}: name the failing item as \"step:STEP-ID\" or \"check:KIND\""
            )),
        }
    }
}

impl<'de> Deserialize<'de> for FailingItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    schema: Spanned<u32>,
    board: BoardInfo,
    identity: Identity,
    #[serde(rename = "unit")]
    units: Spanned<Vec<Unit>>,
    #[serde(default)]
    links: BTreeMap<String, Spanned<Link>>,
    launch: Option<Launch>,
    labgrid: Option<LabgridPlace>,
    ics: Ics,
    #[serde(default)]
    ixit: Ixit,
    #[serde(default)]
    bindings: BTreeMap<String, Spanned<binding::RawBinding>>,
    update: Option<Spanned<update::RawUpdate>>,
}

impl BoardProfile {
    pub fn load(path: &Path) -> Result<BoardProfile, LoadError> {
        let text = read(path)?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<BoardProfile, LoadError> {
        let raw: RawProfile =
            toml::from_str(text).map_err(|e| LoadError::from_toml(path, text, e))?;
        let src = Source { path, text };
        src.check_schema(&raw.schema, SCHEMA)?;
        if raw.units.get_ref().is_empty() {
            return Err(src.err(
                raw.units.span(),
                "at least one [[unit]] with a serial number is required",
            ));
        }
        if raw.board.name.is_empty()
            || !raw
                .board
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(LoadError::File {
                path: path.into(),
                message: format!(
                    "board.name {:?} must be non-empty and use only letters, digits, '-' and '_'",
                    raw.board.name
                ),
            });
        }
        raw.ics.validate(&src, Catalogue::embedded())?;
        raw.ixit.validate(&src)?;
        let flows = crate::flows::declared_flows(&raw.ixit, &src)?;
        if let Some(launch) = &raw.launch {
            regex::Regex::new(launch.ready.get_ref()).map_err(|e| {
                src.err(
                    launch.ready.span(),
                    format!("launch.ready: invalid regex: {e}"),
                )
            })?;
            for (name, d) in &launch.defects {
                let spec = d.get_ref();
                if spec.targets.is_some() {
                    return Err(src.err(d.span(), format!("launch.defects.{name}: `targets` is replaced by `fails`, which also names what must fail in each case: fails = {{ \"CASE-ID\" = \"step:STEP-ID\" }} or \"check:KIND\"")));
                }
                if spec.fails.is_empty() {
                    return Err(src.err(d.span(), format!("launch.defects.{name}: say which case(s) the defect must make FAIL and what must fail in each: fails = {{ \"CASE-ID\" = \"check:KIND\" }}")));
                }
            }
        }
        let mut links = BTreeMap::new();
        for (name, link) in raw.links {
            link.get_ref().validate(&src, link.span(), &name)?;
            if matches!(link.get_ref(), Link::Power(p) if p.via == PowerVia::Labgrid)
                && raw.labgrid.is_none()
            {
                return Err(src.err(
                    link.span(),
                    format!(
                        "links.{name}: a power link via labgrid needs the profile's [labgrid] place"
                    ),
                ));
            }
            links.insert(name, link.into_inner());
        }
        let mut bindings = BTreeMap::new();
        for (name, b) in raw.bindings {
            let span = b.span();
            let binding = b.into_inner().validate(&src, span, &name, &links)?;
            bindings.insert(name, binding);
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let update = raw
            .update
            .map(|u| update::RawUpdate::validate(u, &src, dir))
            .transpose()?;
        Ok(BoardProfile {
            update,
            path: path.to_path_buf(),
            text: text.to_string(),
            board: raw.board,
            identity: raw.identity,
            units: raw.units.into_inner(),
            links,
            launch: raw.launch,
            labgrid: raw.labgrid,
            ics: raw.ics,
            ixit: raw.ixit,
            flows,
            bindings,
        })
    }

    pub fn name(&self) -> &str {
        &self.board.name
    }

    /// The mock-cloud link, if the board talks to the cloud.
    pub fn cloud_link(&self) -> Option<(&str, &link::CloudLink)> {
        self.links.iter().find_map(|(n, l)| match l {
            Link::Cloud(c) => Some((n.as_str(), c)),
            _ => None,
        })
    }

    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}
