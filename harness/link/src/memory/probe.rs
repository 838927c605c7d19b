//! Memory through a debug probe, with probe-rs: a CMSIS-DAP, J-Link, ST-LINK … on the device's SWD/JTAG
//! port.
//!
//! The hardware sits behind two small traits, [`Debugger`] (find probes, attach to a chip) and
//! [`AttachedCore`] (halt, read, resume). [`ProbeRs`] implements them with the real probe-rs API;
//! [`fake::FakeDebugger`] implements them from a recorded fixture, so the session logic of
//! [`ProbeMemory`] (lazy attach, halt, chunked reads within [`Limits`], resume) is tested without a
//! probe.
//!
//! A locked debug port is a finding, not bench trouble: when probe-rs says it could only go on by
//! erasing the chip (nRF APPROTECT, a locked ATSAM DSU: `MissingPermissions`), or the target answers a
//! memory read with a FAULT (readout protection, e.g. STM32 RDP level 1), the read is
//! [`MemoryError::Refused`]. No probe, no matching probe, a probe this user may not open, a chip name
//! probe-rs does not know, no answer on the wire and USB errors are [`MemoryError::Unreachable`].
//! hilt never grants probe-rs the `erase_all` permission: a test tool must not wipe a locked chip.
//!
//! Limit: a debug port disabled for good (STM32 RDP level 2, a blown JTAG fuse) does not answer at
//! all, exactly like a missing wire or an unpowered board; probe-rs cannot tell them apart, so neither
//! can we: both are Unreachable.

use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use probe_rs::architecture::arm::{ArmError, DapError};
use probe_rs::config::{MemoryRegion, Registry, RegistryError, Target};
use probe_rs::probe::list::{Accessibility, Lister, ProbeListItem};
use probe_rs::probe::{DebugProbeError, DebugProbeSelector, ProbeCreationError};
use probe_rs::{MemoryInterface, Permissions, Session};

use super::{Limits, MemoryError, MemoryLink, Region};

/// How much one probe read asks for; limits are checked between chunks.
pub const DEFAULT_CHUNK: usize = 4096;

/// The longest wait for the core to halt (less when the deadline is nearer).
pub const DEFAULT_HALT_TIMEOUT: Duration = Duration::from_millis(500);

/// Which probe to use, parsed once from `VID:PID[-INTERFACE][:SERIAL]` (hex VID and PID), the syntax of
/// probe-rs's `--probe` option.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeSelector(DebugProbeSelector);

/// A probe selector that does not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "probe selector {input:?} is not VID:PID[-INTERFACE][:SERIAL] with hex VID and PID: {reason}"
)]
pub struct SelectorError {
    pub input: String,
    pub reason: String,
}

impl FromStr for ProbeSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<DebugProbeSelector>()
            .map(ProbeSelector)
            .map_err(|e| SelectorError {
                input: s.to_string(),
                reason: e.to_string(),
            })
    }
}

impl fmt::Display for ProbeSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ProbeSelector {
    /// The probe-rs selector, to open a probe with.
    pub fn as_probe_rs(&self) -> &DebugProbeSelector {
        &self.0
    }

    /// Whether `probe` is one this selector picks, by probe-rs's rules: VID and PID equal; the
    /// interface equal when given; the serial equal (or equal to the hex of the serial's bytes) when
    /// given, an empty serial picking probes without one.
    pub fn matches(&self, probe: &ProbeInfo) -> bool {
        let s = &self.0;
        s.vendor_id == probe.vendor_id
            && s.product_id == probe.product_id
            && s.interface.is_none_or(|i| probe.interface == Some(i))
            && s.serial_number
                .as_deref()
                .is_none_or(|want| match probe.serial_number.as_deref() {
                    Some(have) => have == want || hex::encode_upper(have) == want,
                    None => want.is_empty(),
                })
    }
}

/// A debug probe found on the bench.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInfo {
    /// The probe's USB product string, e.g. `J-Link`.
    pub identifier: String,
    pub vendor_id: u16,
    pub product_id: u16,
    pub interface: Option<u8>,
    pub serial_number: Option<String>,
    /// The probe-rs driver, e.g. `J-Link`, `CMSIS-DAP`, `ST-LINK`.
    pub probe_type: String,
    /// False when the probe is there but this user may not open its device node (udev rules).
    pub accessible: bool,
}

impl fmt::Display for ProbeInfo {
    /// As `probe-rs list` prints a probe: `J-Link -- 1366:1015:000683000001 (J-Link)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -- {:04x}:{:04x}",
            self.identifier, self.vendor_id, self.product_id
        )?;
        if let Some(i) = self.interface {
            write!(f, "-{i}")?;
        }
        write!(
            f,
            ":{} ({})",
            self.serial_number.as_deref().unwrap_or(""),
            self.probe_type
        )?;
        if !self.accessible {
            f.write_str(" [no permission]")?;
        }
        Ok(())
    }
}

impl ProbeInfo {
    /// Parse what `probe-rs list` prints (`[0]: J-Link -- 1366:1015:000683000001 (J-Link)` per probe;
    /// the heading and "No debug probes were found." are skipped).
    pub fn parse_list(text: &str) -> Result<Vec<ProbeInfo>, String> {
        let mut probes = Vec::new();
        for line in text.lines().map(str::trim) {
            let Some(rest) = line.strip_prefix('[') else {
                continue;
            };
            let item = rest
                .split_once("]: ")
                .map(|(_, item)| item)
                .ok_or_else(|| format!("not a probe line: {line:?}"))?;
            let (identifier, ids) = item
                .rsplit_once(" -- ")
                .ok_or_else(|| format!("no ' -- ' in {line:?}"))?;
            let (ids, probe_type) = ids
                .strip_suffix(')')
                .and_then(|s| s.rsplit_once(" ("))
                .ok_or_else(|| format!("no '(DRIVER)' at the end of {line:?}"))?;
            let sel: DebugProbeSelector = ids
                .parse()
                .map_err(|e| format!("{ids:?} in {line:?}: {e}"))?;
            probes.push(ProbeInfo {
                identifier: identifier.to_string(),
                vendor_id: sel.vendor_id,
                product_id: sel.product_id,
                interface: sel.interface,
                serial_number: sel.serial_number.filter(|s| !s.is_empty()),
                probe_type: probe_type.to_string(),
                accessible: true,
            });
        }
        Ok(probes)
    }
}

impl From<ProbeListItem> for ProbeInfo {
    fn from(item: ProbeListItem) -> Self {
        ProbeInfo {
            probe_type: item.info.probe_type(),
            identifier: item.info.identifier,
            vendor_id: item.info.vendor_id,
            product_id: item.info.product_id,
            interface: item.info.interface,
            serial_number: item.info.serial_number,
            accessible: item.accessibility == Accessibility::Accessible,
        }
    }
}

/// Finds probes and attaches to a chip through one. [`ProbeRs`] is the real one.
pub trait Debugger: Send {
    /// The probes on the bench. An empty list is not an error.
    fn list(&self) -> Result<Vec<ProbeInfo>, MemoryError>;

    /// Open the probe `selector` picks and attach to core 0 of `chip` (a name from probe-rs's target
    /// database, already checked), never erasing anything. A locked chip is `Refused`.
    fn attach(
        &mut self,
        selector: &ProbeSelector,
        chip: &str,
    ) -> Result<Box<dyn AttachedCore>, MemoryError>;
}

/// Core 0 of an attached chip. Dropping it ends the debug session.
pub trait AttachedCore: Send {
    /// Halt the core within `timeout`: `Ok(true)` when it was running and is now halted by us,
    /// `Ok(false)` when it was halted already.
    fn halt(&mut self, timeout: Duration) -> Result<bool, MemoryError>;

    /// Fill `buf` from target memory at `addr`.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

    /// Let the core run again.
    fn resume(&mut self) -> Result<(), MemoryError>;
}

/// What the debugger was allowed to do, once attached: what a check reports as "debug access open".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Attached and the core halted: full debug access.
    Open,
    /// Attached (memory reachable) but the core did not halt: why. Still open debug access; a RAM
    /// image read while the core runs may be inconsistent.
    OpenRunning(String),
    /// The target refused the debugger: why (e.g. nRF APPROTECT).
    Refused(String),
}

impl Access {
    /// True when a debugger got in (halted or not).
    pub fn is_open(&self) -> bool {
        !matches!(self, Access::Refused(_))
    }
}

/// How a probe-rs source names itself in evidence and errors: `probe-rs CHIP via SELECTOR`.
pub fn source_desc(chip: &str, selector: &ProbeSelector) -> String {
    format!("probe-rs {chip} via {selector}")
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::from_builtin_families)
}

/// Look `chip` up in probe-rs's built-in target database. Unknown or ambiguous names are
/// `Unreachable` (a bench configuration error), naming the chip.
pub fn resolve_chip(chip: &str) -> Result<Target, MemoryError> {
    registry().get_target_by_name(chip).map_err(|e| {
        let reason = match &e {
            RegistryError::ChipNotFound(_) => format!(
                "chip {chip:?} is not in probe-rs 0.32's target database \
                 (names look like nRF52840_xxAA or STM32F411RE; `probe-rs chip list` shows them)"
            ),
            RegistryError::ChipNotUnique(_, candidates) => format!(
                "chip {chip:?} matches several targets in probe-rs's database: {candidates}"
            ),
            other => format!("chip {chip:?}: {}", chain(other)),
        };
        MemoryError::Unreachable {
            source_desc: "probe-rs target database".to_string(),
            reason,
        }
    })
}

/// The memory map of `chip` from probe-rs's target database, as regions core 0 can read, in
/// database order: the first non-volatile region is `flash` and the first RAM region `ram`, whatever
/// the database calls them, so board profiles can name them alike across chips; the others keep the
/// database's name (lower-cased) or, without one, are `flash1`, `ram1`, `generic`, … Alias regions
/// (the same memory at a second address) are left out. E.g. nRF52840_xxAA: `flash` 0x0 1 MiB, `ram`
/// 0x800000 256 KiB (probe-rs marks 0x20000000 as the alias), `flash1` 0x10001000 4 KiB (the UICR);
/// STM32F411RE: `flash` 0x08000000 512 KiB, `otp`, `ram` 0x20000000 128 KiB.
pub fn chip_regions(chip: &str) -> Result<Vec<Region>, MemoryError> {
    let target = resolve_chip(chip)?;
    let core = target.cores.first().map(|c| c.name.clone());
    let mut seen = [0usize; 3];
    let mut regions: Vec<Region> = Vec::new();
    for region in &target.memory_map {
        let (kind, name, range, cores, alias) = match region {
            MemoryRegion::Nvm(r) => (0, &r.name, &r.range, &r.cores, r.is_alias),
            MemoryRegion::Ram(r) => (1, &r.name, &r.range, &r.cores, r.is_alias),
            MemoryRegion::Generic(r) => (2, &r.name, &r.range, &r.cores, false),
        };
        if alias || range.end <= range.start {
            continue;
        }
        if let Some(core) = &core
            && !cores.is_empty()
            && !cores.contains(core)
        {
            continue;
        }
        let base = ["flash", "ram", "generic"][kind];
        let taken = |n: &str| regions.iter().any(|r| r.name == n);
        let own = name
            .as_deref()
            .map(str::to_lowercase)
            .filter(|n| !n.is_empty());
        let name = match own {
            _ if kind < 2 && seen[kind] == 0 && !taken(base) => base.to_string(),
            Some(own) if !taken(&own) => own,
            _ => (seen[kind]..)
                .map(|n| {
                    if n == 0 {
                        base.to_string()
                    } else {
                        format!("{base}{n}")
                    }
                })
                .find(|n| !taken(n))
                .expect("an unused name"),
        };
        seen[kind] += 1;
        regions.push(Region {
            name,
            start: range.start,
            len: range.end - range.start,
        });
    }
    Ok(regions)
}

/// An error and its causes on one line: `a: b: c`, trailing full stops dropped, repeats skipped.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        let text = text.trim().trim_end_matches('.').to_string();
        if !text.is_empty() && parts.last() != Some(&text) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn causes<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| e.source())
}

/// Turn a probe-rs error into a [`MemoryError`], telling the device's refusal from bench trouble:
/// - the chip is locked and only an erase would unlock it (`MissingPermissions`, e.g. nRF APPROTECT):
///   Refused;
/// - the target answered a memory access with FAULT (readout protection): Refused;
/// - a timeout: Timeout;
/// - anything else (no probe, USB, no answer on the wire, unknown chip): Unreachable.
///
/// `what` names what was being read (a region name, or `memory` while attaching).
pub fn classify(err: &probe_rs::Error, source_desc: &str, what: &str) -> MemoryError {
    let detail = chain(err);
    let refused = |reason: String| MemoryError::Refused {
        source_desc: source_desc.to_string(),
        what: what.to_string(),
        reason,
    };
    for cause in causes(err) {
        let missing = match cause.downcast_ref::<probe_rs::Error>() {
            Some(probe_rs::Error::MissingPermissions(p)) => Some(p),
            _ => match cause.downcast_ref::<ArmError>() {
                Some(ArmError::MissingPermissions(p)) => Some(p),
                _ => None,
            },
        };
        if missing.is_some() {
            return refused(format!(
                "the debug port is locked (e.g. nRF APPROTECT); probe-rs could only unlock it by \
                 erasing the chip, which hilt never permits [probe-rs: {detail}]"
            ));
        }
        if let Some(DapError::FaultResponse) = cause.downcast_ref::<DapError>() {
            return refused(format!(
                "the target answered FAULT: the memory is read-protected (e.g. STM32 RDP level 1) \
                 or not mapped on this chip [probe-rs: {detail}]"
            ));
        }
    }
    let timed_out = causes(err).any(|c| {
        matches!(
            c.downcast_ref::<probe_rs::Error>(),
            Some(probe_rs::Error::Timeout)
        ) || matches!(c.downcast_ref::<ArmError>(), Some(ArmError::Timeout))
            || matches!(
                c.downcast_ref::<DebugProbeError>(),
                Some(DebugProbeError::Timeout)
            )
    });
    if timed_out {
        return MemoryError::Timeout {
            source_desc: source_desc.to_string(),
            what: format!("{what} (the probe timed out: {detail})"),
            after: Duration::ZERO,
        };
    }
    if let probe_rs::Error::ChipNotFound(RegistryError::ChipNotFound(chip)) = err {
        return MemoryError::Unreachable {
            source_desc: source_desc.to_string(),
            reason: format!("chip {chip:?} is not in probe-rs 0.32's target database"),
        };
    }
    MemoryError::Unreachable {
        source_desc: source_desc.to_string(),
        reason: detail,
    }
}

/// The real debugger: probe-rs's built-in drivers over USB.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProbeRs;

impl ProbeRs {
    pub fn new() -> Self {
        ProbeRs
    }
}

impl Debugger for ProbeRs {
    fn list(&self) -> Result<Vec<ProbeInfo>, MemoryError> {
        // probe-rs logs and skips drivers whose bus is missing (no /sys/bus/usb): an empty list.
        Ok(Lister::new()
            .list_all_with_access()
            .into_iter()
            .map(ProbeInfo::from)
            .collect())
    }

    fn attach(
        &mut self,
        selector: &ProbeSelector,
        chip: &str,
    ) -> Result<Box<dyn AttachedCore>, MemoryError> {
        let desc = source_desc(chip, selector);
        let target = resolve_chip(chip)?;
        let probe = Lister::new()
            .open(selector.as_probe_rs().clone())
            .map_err(|e| {
                let hint = match &e {
                    DebugProbeError::ProbeCouldNotBeCreated(ProbeCreationError::NotFound) => {
                        " (not connected, or this user may not open it)"
                    }
                    DebugProbeError::ProbeCouldNotBeCreated(ProbeCreationError::CouldNotOpen) => {
                        " (in use by another program, or no permission)"
                    }
                    _ => "",
                };
                MemoryError::Unreachable {
                    source_desc: desc.clone(),
                    reason: format!("cannot open probe {selector}{hint}: {}", chain(&e)),
                }
            })?;
        // Permissions::default(): no erase_all. A locked chip stays locked and says so.
        let session = probe
            .attach_with_registry(target, Permissions::default(), registry())
            .map_err(|e| classify(&e, &desc, "memory"))?;
        Ok(Box::new(ProbeRsCore { session, desc }))
    }
}

struct ProbeRsCore {
    session: Session,
    desc: String,
}

impl ProbeRsCore {
    fn core(&mut self, what: &str) -> Result<probe_rs::Core<'_>, MemoryError> {
        let desc = &self.desc;
        self.session.core(0).map_err(|e| classify(&e, desc, what))
    }
}

impl AttachedCore for ProbeRsCore {
    fn halt(&mut self, timeout: Duration) -> Result<bool, MemoryError> {
        let desc = self.desc.clone();
        let mut core = self.core("core 0")?;
        if core
            .core_halted()
            .map_err(|e| classify(&e, &desc, "core 0"))?
        {
            return Ok(false);
        }
        core.halt(timeout)
            .map_err(|e| classify(&e, &desc, "core 0"))?;
        Ok(true)
    }

    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let desc = self.desc.clone();
        let what = format!("{:#x}+{:#x}", addr, buf.len());
        let mut core = self.core(&what)?;
        core.read(addr, buf).map_err(|e| classify(&e, &desc, &what))
    }

    fn resume(&mut self) -> Result<(), MemoryError> {
        let desc = self.desc.clone();
        let mut core = self.core("core 0")?;
        core.run().map_err(|e| classify(&e, &desc, "core 0"))
    }
}

/// Memory through a debug probe: attaches on first use, halts core 0, reads regions in chunks within
/// the limits, and lets the core run again when dropped (or on [`ProbeMemory::release`]).
pub struct ProbeMemory {
    debugger: Box<dyn Debugger>,
    selector: ProbeSelector,
    chip: String,
    core: Option<Box<dyn AttachedCore>>,
    access: Option<Access>,
    /// We halted the core, so we resume it.
    resume: bool,
    chunk: usize,
    halt_timeout: Duration,
}

impl fmt::Debug for ProbeMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeMemory")
            .field("source", &self.describe())
            .field("attached", &self.core.is_some())
            .field("access", &self.access)
            .finish()
    }
}

impl ProbeMemory {
    /// A source reading `chip` (a probe-rs target name, e.g. `nRF52840_xxAA`) through the probe
    /// `selector` picks, with `debugger` (real: [`ProbeRs`]). Nothing is opened until the first read.
    pub fn new(
        debugger: Box<dyn Debugger>,
        selector: ProbeSelector,
        chip: impl Into<String>,
    ) -> Self {
        ProbeMemory {
            debugger,
            selector,
            chip: chip.into(),
            core: None,
            access: None,
            resume: false,
            chunk: DEFAULT_CHUNK,
            halt_timeout: DEFAULT_HALT_TIMEOUT,
        }
    }

    /// The same with the real probe-rs debugger.
    pub fn probe_rs(selector: ProbeSelector, chip: impl Into<String>) -> Self {
        Self::new(Box::new(ProbeRs), selector, chip)
    }

    /// Bytes per probe read (at least 1); limits are checked between reads.
    pub fn with_chunk(mut self, bytes: usize) -> Self {
        self.chunk = bytes.max(1);
        self
    }

    /// The longest wait for the core to halt.
    pub fn with_halt_timeout(mut self, timeout: Duration) -> Self {
        self.halt_timeout = timeout;
        self
    }

    pub fn chip(&self) -> &str {
        &self.chip
    }

    pub fn selector(&self) -> &ProbeSelector {
        &self.selector
    }

    /// What the last attach found; `None` before one got an answer from the target.
    pub fn access(&self) -> Option<&Access> {
        self.access.as_ref()
    }

    /// Attach (if not yet) and say whether debug access is open, without reading memory. A refusal
    /// is `Ok(Access::Refused(..))`; bench trouble is an error.
    pub fn check_access(&mut self, limits: &Limits) -> Result<Access, MemoryError> {
        match self.attach(limits) {
            Ok(()) => {}
            Err(e) if e.is_refusal() => {}
            Err(e) => return Err(e),
        }
        Ok(self
            .access
            .clone()
            .expect("an attach that answered records the access"))
    }

    /// Resume the core if we halted it and end the debug session now (the next read attaches again).
    pub fn release(&mut self) {
        if let Some(mut core) = self.core.take()
            && std::mem::take(&mut self.resume)
            && let Err(e) = core.resume()
        {
            tracing::warn!("{}: could not resume the core: {e}", self.describe());
        }
    }

    fn attach(&mut self, limits: &Limits) -> Result<(), MemoryError> {
        let desc = self.describe();
        match &self.access {
            Some(Access::Refused(reason)) => {
                return Err(MemoryError::Refused {
                    source_desc: desc,
                    what: "memory".to_string(),
                    reason: reason.clone(),
                });
            }
            Some(_) if self.core.is_some() => return Ok(()),
            _ => {}
        }
        if limits.cancel.is_cancelled() {
            return Err(MemoryError::Cancelled);
        }
        if limits.remaining().is_zero() {
            return Err(MemoryError::Timeout {
                source_desc: desc,
                what: "attaching".to_string(),
                after: Duration::ZERO,
            });
        }
        // The chip name first: a typo is a configuration error, whatever is plugged in.
        let target = resolve_chip(&self.chip).map_err(|e| match e {
            MemoryError::Unreachable { reason, .. } => MemoryError::Unreachable {
                source_desc: desc.clone(),
                reason,
            },
            other => other,
        })?;
        let probes = self.debugger.list()?;
        let Some(probe) = probes.iter().find(|p| self.selector.matches(p)) else {
            let reason = if probes.is_empty() {
                "no debug probe found (is one plugged in?)".to_string()
            } else {
                let found: Vec<String> = probes.iter().map(ToString::to_string).collect();
                format!(
                    "no debug probe matches {}; found: {}",
                    self.selector,
                    found.join("; ")
                )
            };
            return Err(MemoryError::Unreachable {
                source_desc: desc,
                reason,
            });
        };
        if !probe.accessible {
            return Err(MemoryError::Unreachable {
                source_desc: desc,
                reason: format!(
                    "probe {probe} is there but this user may not open it (install probe-rs's udev rules)"
                ),
            });
        }
        let started = Instant::now();
        let mut core = match self.debugger.attach(&self.selector, &target.name) {
            Ok(core) => core,
            Err(MemoryError::Timeout {
                source_desc, what, ..
            }) => {
                return Err(MemoryError::Timeout {
                    source_desc,
                    what: format!("attaching: {what}"),
                    after: started.elapsed(),
                });
            }
            Err(MemoryError::Refused { reason, .. }) => {
                self.access = Some(Access::Refused(reason.clone()));
                return Err(MemoryError::Refused {
                    source_desc: desc,
                    what: "memory".to_string(),
                    reason,
                });
            }
            Err(e) => return Err(e),
        };
        let timeout = self.halt_timeout.min(limits.remaining());
        let access = match core.halt(timeout) {
            Ok(we_halted) => {
                self.resume = we_halted;
                Access::Open
            }
            Err(MemoryError::Refused { reason, .. }) => Access::Refused(reason),
            Err(e) => {
                tracing::warn!("{desc}: core 0 did not halt: {e}");
                Access::OpenRunning(format!("core 0 did not halt within {timeout:?}: {e}"))
            }
        };
        self.access = Some(access.clone());
        if let Access::Refused(reason) = access {
            return Err(MemoryError::Refused {
                source_desc: desc,
                what: "memory".to_string(),
                reason,
            });
        }
        self.core = Some(core);
        Ok(())
    }
}

impl MemoryLink for ProbeMemory {
    fn describe(&self) -> String {
        source_desc(&self.chip, &self.selector)
    }

    fn read(&mut self, region: &Region, limits: &Limits) -> Result<Vec<u8>, MemoryError> {
        let started = Instant::now();
        limits.admit(region)?;
        let desc = self.describe();
        let len = usize::try_from(region.len).map_err(|_| MemoryError::TooLarge {
            region: region.name.clone(),
            len: region.len,
            max: usize::MAX as u64,
        })?;
        if region.start.checked_add(region.len).is_none() {
            return Err(MemoryError::Protocol {
                source_desc: desc,
                detail: format!(
                    "region {} at {:#x} (+{:#x}) runs past the end of the address space",
                    region.name, region.start, region.len
                ),
            });
        }
        self.attach(limits).map_err(|e| match e {
            MemoryError::Refused {
                source_desc,
                reason,
                ..
            } => MemoryError::Refused {
                source_desc,
                what: region.name.clone(),
                reason,
            },
            other => other,
        })?;
        let chunk = self.chunk;
        let core = self
            .core
            .as_mut()
            .expect("attach succeeded, so a core is attached");
        let mut bytes = vec![0u8; len];
        for (i, buf) in bytes.chunks_mut(chunk).enumerate() {
            if limits.cancel.is_cancelled() {
                return Err(MemoryError::Cancelled);
            }
            if Instant::now() >= limits.deadline {
                return Err(MemoryError::Timeout {
                    source_desc: desc,
                    what: format!(
                        "reading {} ({} of {} bytes read)",
                        region.name,
                        i * chunk,
                        len
                    ),
                    after: started.elapsed(),
                });
            }
            let addr = region.start + (i * chunk) as u64;
            core.read(addr, buf).map_err(|e| match e {
                MemoryError::Refused {
                    source_desc,
                    what,
                    reason,
                } => MemoryError::Refused {
                    source_desc,
                    what: format!("{} ({what})", region.name),
                    reason,
                },
                MemoryError::Timeout {
                    source_desc, what, ..
                } => MemoryError::Timeout {
                    source_desc,
                    what: format!("reading {} at {what}", region.name),
                    after: started.elapsed(),
                },
                other => other,
            })?;
        }
        Ok(bytes)
    }
}

impl Drop for ProbeMemory {
    fn drop(&mut self) {
        self.release();
    }
}

/// A [`Debugger`] fed by a recorded bench: the probes `probe-rs list` printed, and per target its
/// chip, lock state and memory image. Errors are built as the probe-rs values the real hardware
/// gives and pass through the same [`classify`] as [`ProbeRs`]'s.
pub mod fake {
    use std::ops::Range;
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use probe_rs::architecture::arm::{ArmError, DapError};
    use probe_rs::probe::DebugProbeError;

    use super::{AttachedCore, Debugger, ProbeInfo, ProbeSelector, classify, source_desc};
    use crate::memory::MemoryError;

    /// How a recorded target answers an attach.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Lock {
        /// The debug port is open.
        Open,
        /// nRF52 APPROTECT: `APPROTECTSTATUS` reads 0, so probe-rs 0.32's nRF52 `debug_device_unlock`
        /// (src/vendor/nordicsemi/sequences/nrf52.rs) asks for the erase_all permission, which
        /// `Permissions::default()` lacks (src/session.rs: `MissingPermissions("erase_all")`), and
        /// the attach ends in `Error::Arm(ArmError::MissingPermissions("erase_all"))`.
        Approtect,
        /// Nothing answers on SWD (unpowered, not wired, or SWD disabled for good):
        /// `ArmError::NoTargetResponse` after a NoAcknowledge.
        NoTargetResponse,
    }

    /// One recorded target, on the probe its `probe` selector picks.
    #[derive(Debug, Clone)]
    pub struct FakeTarget {
        pub probe: ProbeSelector,
        pub chip: String,
        pub lock: Lock,
        /// False: the core does not halt (probe-rs times out).
        pub halts: bool,
        /// Recorded bytes by start address. Reading outside them is a fixture error (Protocol).
        pub memory: Vec<(u64, Vec<u8>)>,
        /// Ranges whose reads the target answers with FAULT (readout protection).
        pub faults: Vec<Range<u64>>,
    }

    /// What the fake was asked to do, in order: `attach CHIP`, `halt`, `read 0xADDR+0xLEN`, `resume`,
    /// `detach`.
    pub type FakeLog = Arc<Mutex<Vec<String>>>;

    type Hook = Arc<Mutex<dyn FnMut(u64, usize) + Send>>;

    /// A bench of recorded probes and targets.
    #[derive(Clone)]
    pub struct FakeDebugger {
        pub probes: Vec<ProbeInfo>,
        pub targets: Vec<FakeTarget>,
        log: FakeLog,
        hook: Option<Hook>,
    }

    impl std::fmt::Debug for FakeDebugger {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("FakeDebugger")
                .field("probes", &self.probes)
                .field("targets", &self.targets.len())
                .finish()
        }
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fixture {
        #[allow(dead_code)]
        about: Option<String>,
        /// `probe-rs list` output, one line per string.
        probe_list: Vec<String>,
        targets: Vec<FixtureTarget>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FixtureTarget {
        probe: String,
        chip: String,
        /// `open`, `approtect` or `no-target-response`.
        lock: String,
        #[serde(default = "yes")]
        halts: bool,
        /// What probe-rs printed for this target, for the reader (and checked by a test).
        #[allow(dead_code)]
        probe_rs_error: Option<String>,
        #[allow(dead_code)]
        about: Option<String>,
        #[serde(default)]
        memory: Vec<FixtureImage>,
        #[serde(default)]
        faults: Vec<FixtureRange>,
    }

    fn yes() -> bool {
        true
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FixtureImage {
        start: String,
        /// A binary file beside the fixture.
        file: String,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FixtureRange {
        start: String,
        len: String,
    }

    fn number(s: &str) -> Result<u64, String> {
        let t = s.trim().replace('_', "");
        match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => t.parse(),
        }
        .map_err(|e| format!("{s:?} is not a number: {e}"))
    }

    impl FakeDebugger {
        pub fn new(probes: Vec<ProbeInfo>, targets: Vec<FakeTarget>) -> Self {
            FakeDebugger {
                probes,
                targets,
                log: FakeLog::default(),
                hook: None,
            }
        }

        /// Load a fixture (JSON: `probe_list`, `targets` with `probe`, `chip`, `lock`, optional
        /// `halts`, `memory` [{`start`, `file`}], `faults` [{`start`, `len`}]); image files are read
        /// from the fixture's folder.
        pub fn from_fixture(path: impl AsRef<Path>) -> Result<Self, String> {
            let path = path.as_ref();
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let fixture: Fixture =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let dir = path.parent().unwrap_or(Path::new("."));
            let probes = ProbeInfo::parse_list(&fixture.probe_list.join("\n"))?;
            let mut targets = Vec::new();
            for t in fixture.targets {
                let lock = match t.lock.as_str() {
                    "open" => Lock::Open,
                    "approtect" => Lock::Approtect,
                    "no-target-response" => Lock::NoTargetResponse,
                    other => return Err(format!("{}: unknown lock {other:?}", path.display())),
                };
                let mut memory = Vec::new();
                for image in t.memory {
                    let file = dir.join(&image.file);
                    let bytes =
                        std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
                    memory.push((number(&image.start)?, bytes));
                }
                let mut faults = Vec::new();
                for f in t.faults {
                    let start = number(&f.start)?;
                    faults.push(start..start.saturating_add(number(&f.len)?));
                }
                targets.push(FakeTarget {
                    probe: t
                        .probe
                        .parse()
                        .map_err(|e| format!("{}: {e}", path.display()))?,
                    chip: t.chip,
                    lock,
                    halts: t.halts,
                    memory,
                    faults,
                });
            }
            Ok(FakeDebugger::new(probes, targets))
        }

        /// What was done, shared with every core this fake attaches.
        pub fn log(&self) -> FakeLog {
            self.log.clone()
        }

        /// Call `f(addr, len)` before every memory read (to cancel, sleep, count …).
        pub fn on_read(mut self, f: impl FnMut(u64, usize) + Send + 'static) -> Self {
            self.hook = Some(Arc::new(Mutex::new(f)));
            self
        }

        fn note(&self, event: String) {
            self.log.lock().expect("fake log").push(event);
        }
    }

    impl Debugger for FakeDebugger {
        fn list(&self) -> Result<Vec<ProbeInfo>, MemoryError> {
            Ok(self.probes.clone())
        }

        fn attach(
            &mut self,
            selector: &ProbeSelector,
            chip: &str,
        ) -> Result<Box<dyn AttachedCore>, MemoryError> {
            let desc = source_desc(chip, selector);
            let Some(probe) = self.probes.iter().find(|p| selector.matches(p)) else {
                return Err(MemoryError::Unreachable {
                    source_desc: desc,
                    reason: format!(
                        "cannot open probe {selector}: The selected debug probe was not found"
                    ),
                });
            };
            let Some(target) = self
                .targets
                .iter()
                .find(|t| t.probe.matches(probe))
                .cloned()
            else {
                let e = probe_rs::Error::Probe(DebugProbeError::TargetNotFound);
                return Err(classify(&e, &desc, "memory"));
            };
            self.note(format!("attach {chip}"));
            if target.chip != chip {
                return Err(MemoryError::Unreachable {
                    source_desc: desc,
                    reason: format!(
                        "fixture: the target on {probe} is {}, not {chip}",
                        target.chip
                    ),
                });
            }
            match target.lock {
                Lock::Open => {}
                Lock::Approtect => {
                    let e = probe_rs::Error::Arm(ArmError::MissingPermissions("erase_all".into()));
                    return Err(classify(&e, &desc, "memory"));
                }
                Lock::NoTargetResponse => {
                    let e = probe_rs::Error::Arm(ArmError::NoTargetResponse {
                        source: Box::new(ArmError::Dap(DapError::NoAcknowledge)),
                    });
                    return Err(classify(&e, &desc, "memory"));
                }
            }
            Ok(Box::new(FakeCore {
                target,
                desc,
                log: self.log.clone(),
                hook: self.hook.clone(),
                halted: false,
            }))
        }
    }

    struct FakeCore {
        target: FakeTarget,
        desc: String,
        log: FakeLog,
        hook: Option<Hook>,
        halted: bool,
    }

    impl FakeCore {
        fn note(&self, event: String) {
            self.log.lock().expect("fake log").push(event);
        }
    }

    impl AttachedCore for FakeCore {
        fn halt(&mut self, _timeout: Duration) -> Result<bool, MemoryError> {
            self.note("halt".to_string());
            if !self.target.halts {
                return Err(classify(&probe_rs::Error::Timeout, &self.desc, "core 0"));
            }
            let was_running = !self.halted;
            self.halted = true;
            Ok(was_running)
        }

        fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
            let len = buf.len() as u64;
            self.note(format!("read {addr:#x}+{len:#x}"));
            if let Some(hook) = &self.hook {
                (hook.lock().expect("fake hook"))(addr, buf.len());
            }
            let what = format!("{addr:#x}+{len:#x}");
            let end = addr.saturating_add(len);
            if self
                .target
                .faults
                .iter()
                .any(|f| f.start < end && addr < f.end)
            {
                let e = probe_rs::Error::Arm(ArmError::Dap(DapError::FaultResponse));
                return Err(classify(&e, &self.desc, &what));
            }
            for (start, bytes) in &self.target.memory {
                let image_end = start + bytes.len() as u64;
                if *start <= addr && end <= image_end {
                    let off = (addr - start) as usize;
                    buf.copy_from_slice(&bytes[off..off + buf.len()]);
                    return Ok(());
                }
            }
            Err(MemoryError::Protocol {
                source_desc: self.desc.clone(),
                detail: format!("fixture: no recorded bytes at {what}"),
            })
        }

        fn resume(&mut self) -> Result<(), MemoryError> {
            self.note("resume".to_string());
            self.halted = false;
            Ok(())
        }
    }

    impl Drop for FakeCore {
        fn drop(&mut self) {
            self.note("detach".to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::fake::{FakeDebugger, FakeLog};
    use super::*;
    use crate::Cancel;
    use crate::memory::snapshot;

    const OPEN: &str = "1366:1015:000683000001";
    const LOCKED: &str = "1366:1015:000683000002";
    const NRF: &str = "nRF52840_xxAA";

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probe")
    }

    fn bench() -> FakeDebugger {
        FakeDebugger::from_fixture(fixtures().join("bench.json")).expect("fixture loads")
    }

    fn memory(fake: FakeDebugger, selector: &str, chip: &str) -> ProbeMemory {
        ProbeMemory::new(Box::new(fake), selector.parse().expect("selector"), chip)
    }

    fn limits() -> Limits {
        Limits::new(1 << 20, Duration::from_secs(10), Cancel::new())
    }

    fn flash_4k() -> Region {
        Region {
            name: "flash".into(),
            start: 0,
            len: 4096,
        }
    }

    fn events(log: &FakeLog) -> Vec<String> {
        log.lock().unwrap().clone()
    }

    #[test]
    fn selector_parses_with_probe_rs_syntax_and_wraps_errors() {
        let s: ProbeSelector = "1366:1015:000683000001".parse().unwrap();
        assert_eq!(s.as_probe_rs().vendor_id, 0x1366);
        assert_eq!(s.as_probe_rs().product_id, 0x1015);
        assert_eq!(s.to_string(), "1366:1015:000683000001");
        let s: ProbeSelector = "0d28:0204-1".parse().unwrap();
        assert_eq!(s.as_probe_rs().interface, Some(1));
        for bad in ["", "1366", "zz:1015", "1366:1015-x"] {
            let e = bad.parse::<ProbeSelector>().unwrap_err();
            assert_eq!(e.input, bad);
            assert!(e.to_string().contains("VID:PID"), "{e}");
        }
    }

    #[test]
    fn probe_list_parses_as_probe_rs_prints_it() {
        let fake = bench();
        assert_eq!(fake.probes.len(), 3);
        let p = &fake.probes[0];
        assert_eq!(p.identifier, "J-Link");
        assert_eq!((p.vendor_id, p.product_id), (0x1366, 0x1015));
        assert_eq!(p.serial_number.as_deref(), Some("000683000001"));
        assert_eq!(p.probe_type, "J-Link");
        assert_eq!(p.to_string(), "J-Link -- 1366:1015:000683000001 (J-Link)");
        let sel: ProbeSelector = "1366:1015".parse().unwrap();
        assert!(sel.matches(p));
        let sel: ProbeSelector = "1366:1015:000683000009".parse().unwrap();
        assert!(!sel.matches(p));
        // probe-rs also accepts the serial as the hex of its bytes.
        let sel: ProbeSelector = format!("1366:1015:{}", hex::encode_upper("000683000001"))
            .parse()
            .unwrap();
        assert!(sel.matches(p));
        assert!(
            ProbeInfo::parse_list("No debug probes were found.")
                .unwrap()
                .is_empty()
        );
        assert!(ProbeInfo::parse_list("[0]: garbage").is_err());
    }

    #[test]
    fn open_access_reads_the_fixture_bytes_halts_and_resumes() {
        let fake = bench();
        let log = fake.log();
        let mut mem = memory(fake, OPEN, NRF).with_chunk(1024);
        assert_eq!(mem.describe(), format!("probe-rs {NRF} via {OPEN}"));
        assert_eq!(
            mem.access(),
            None,
            "nothing is opened before the first read"
        );
        assert!(events(&log).is_empty());

        let bytes = mem.read(&flash_4k(), &limits()).unwrap();
        let want = std::fs::read(fixtures().join("nrf52840-open-flash-0x0-4k.bin")).unwrap();
        assert_eq!(bytes, want);
        assert_eq!(mem.access(), Some(&Access::Open));
        assert_eq!(
            events(&log),
            [
                "attach nRF52840_xxAA",
                "halt",
                "read 0x0+0x400",
                "read 0x400+0x400",
                "read 0x800+0x400",
                "read 0xc00+0x400",
            ]
        );
        // The initial stack pointer of the recorded image: the top of the nRF52840's RAM.
        assert_eq!(&bytes[..4], &0x2004_0000u32.to_le_bytes());

        // A second read reuses the session.
        let part = Region {
            name: "vectors".into(),
            start: 0x100,
            len: 0x10,
        };
        assert_eq!(mem.read(&part, &limits()).unwrap(), want[0x100..0x110]);
        drop(mem);
        let ev = events(&log);
        assert_eq!(
            ev.iter().filter(|e| *e == "attach nRF52840_xxAA").count(),
            1
        );
        assert_eq!(&ev[ev.len() - 2..], ["resume", "detach"]);
    }

    #[test]
    fn check_access_reports_open_without_reading() {
        let fake = bench();
        let log = fake.log();
        let mut mem = memory(fake, OPEN, NRF);
        assert_eq!(mem.check_access(&limits()).unwrap(), Access::Open);
        assert!(mem.access().unwrap().is_open());
        assert_eq!(events(&log), ["attach nRF52840_xxAA", "halt"]);
        mem.release();
        assert_eq!(events(&log)[2..], ["resume", "detach"]);
    }

    #[test]
    fn approtect_locked_chip_is_refused_with_probe_rs_reason() {
        let fake = bench();
        let log = fake.log();
        let mut mem = memory(fake, LOCKED, NRF);
        let err = mem.read(&flash_4k(), &limits()).unwrap_err();
        assert!(err.is_refusal(), "{err}");
        let MemoryError::Refused {
            source_desc,
            what,
            reason,
        } = &err
        else {
            unreachable!()
        };
        assert_eq!(source_desc, &format!("probe-rs {NRF} via {LOCKED}"));
        assert_eq!(what, "flash");
        assert!(reason.contains("erase_all"), "{reason}");
        assert!(reason.contains("locked"), "{reason}");
        assert!(matches!(mem.access(), Some(Access::Refused(_))));
        assert!(!mem.access().unwrap().is_open());
        // Asking again does not attach again, and check_access reports the refusal as an answer.
        assert!(mem.read(&flash_4k(), &limits()).unwrap_err().is_refusal());
        assert!(matches!(
            mem.check_access(&limits()).unwrap(),
            Access::Refused(_)
        ));
        assert_eq!(events(&log), ["attach nRF52840_xxAA"]);
    }

    #[test]
    fn locked_fixture_text_is_what_probe_rs_renders() {
        // The fixture records the text probe-rs 0.32 gives for a locked nRF52; the fake builds the
        // same error value, so the two must agree.
        let text = std::fs::read_to_string(fixtures().join("bench.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let recorded = json["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["lock"] == "approtect")
            .and_then(|t| t["probe_rs_error"].as_str())
            .unwrap()
            .to_string();
        let e = probe_rs::Error::Arm(ArmError::MissingPermissions("erase_all".into()));
        assert_eq!(chain(&e), recorded);
        let MemoryError::Refused { reason, .. } = classify(&e, "x", "memory") else {
            panic!("not a refusal")
        };
        assert!(
            reason.ends_with(&format!("[probe-rs: {recorded}]")),
            "{reason}"
        );
    }

    #[test]
    fn read_fault_is_a_refusal_of_that_region() {
        let fake = bench();
        let mut mem = memory(fake, "0d28:0204:0240000034544e45", "STM32F411RE");
        let flash = Region {
            name: "flash".into(),
            start: 0x0800_0000,
            len: 0x1000,
        };
        let err = mem.read(&flash, &limits()).unwrap_err();
        assert!(err.is_refusal(), "{err}");
        assert!(err.to_string().contains("FAULT"), "{err}");
        // The debugger got in, though: debug access is open, flash is read-protected.
        assert_eq!(mem.access(), Some(&Access::Open));
    }

    #[test]
    fn no_matching_probe_is_unreachable() {
        let mut mem = memory(bench(), "1366:1015:999999999999", NRF);
        let err = mem.read(&flash_4k(), &limits()).unwrap_err();
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
        assert!(!err.is_refusal());
        let text = err.to_string();
        assert!(
            text.contains("no debug probe matches 1366:1015:999999999999"),
            "{text}"
        );
        assert!(
            text.contains("000683000001"),
            "lists what was found: {text}"
        );
        assert_eq!(mem.access(), None);

        let empty = FakeDebugger::new(vec![], vec![]);
        let err = memory(empty, OPEN, NRF)
            .read(&flash_4k(), &limits())
            .unwrap_err();
        assert!(err.to_string().contains("no debug probe found"), "{err}");
    }

    #[test]
    fn silent_target_is_unreachable_not_refused() {
        // A probe with nothing answering on SWD (e.g. board unpowered).
        let mut fake = bench();
        fake.targets.iter_mut().for_each(|t| {
            if t.probe.to_string() == OPEN {
                t.lock = fake::Lock::NoTargetResponse;
            }
        });
        let err = memory(fake, OPEN, NRF)
            .read(&flash_4k(), &limits())
            .unwrap_err();
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("No target responded"), "{err}");
    }

    #[test]
    fn inaccessible_probe_is_unreachable() {
        let mut fake = bench();
        fake.probes[0].accessible = false;
        let err = memory(fake, OPEN, NRF)
            .read(&flash_4k(), &limits())
            .unwrap_err();
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("udev"), "{err}");
    }

    #[test]
    fn unknown_chip_is_unreachable_naming_it_from_the_real_database() {
        let err = resolve_chip("nRF99999_xxZZ").unwrap_err();
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("\"nRF99999_xxZZ\""), "{err}");

        let fake = bench();
        let log = fake.log();
        let err = memory(fake, OPEN, "nRF99999_xxZZ")
            .read(&flash_4k(), &limits())
            .unwrap_err();
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("nRF99999_xxZZ"), "{err}");
        assert!(events(&log).is_empty(), "no attach for an unknown chip");
    }

    #[test]
    fn known_chip_resolves_and_lists_its_regions() {
        let target = resolve_chip(NRF).unwrap();
        assert_eq!(target.name, NRF);
        let regions = chip_regions(NRF).unwrap();
        let flash = regions.iter().find(|r| r.name == "flash").unwrap();
        assert_eq!((flash.start, flash.len), (0, 0x10_0000));
        let ram = regions.iter().find(|r| r.name == "ram").unwrap();
        assert_eq!(ram.len, 0x4_0000);
        assert!(
            regions
                .iter()
                .any(|r| r.start == 0x1000_1000 && r.len == 0x1000),
            "UICR: {regions:?}"
        );
        let mut names: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), regions.len(), "names are unique: {regions:?}");
        assert!(chip_regions("nRF99999_xxZZ").is_err());
        // The database calls the STM32F411's flash `bank_1` and its RAM `sram`: still flash and ram.
        let stm = chip_regions("STM32F411RE").unwrap();
        let names: Vec<&str> = stm.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["flash", "otp", "ram"], "{stm:?}");
        assert_eq!((stm[0].start, stm[0].len), (0x0800_0000, 0x8_0000));
    }

    #[test]
    fn deadline_is_honoured_between_chunks() {
        let reads = Arc::new(AtomicUsize::new(0));
        let counter = reads.clone();
        let fake = bench().on_read(move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(80));
        });
        let mut mem = memory(fake, OPEN, NRF).with_chunk(512);
        let limits = Limits::new(1 << 20, Duration::from_millis(200), Cancel::new());
        let err = mem.read(&flash_4k(), &limits).unwrap_err();
        assert!(matches!(err, MemoryError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("reading flash"), "{err}");
        let n = reads.load(Ordering::SeqCst);
        assert!(n < 8, "stopped between chunks, after {n} of 8 reads");
    }

    #[test]
    fn cancel_is_honoured_between_chunks() {
        let cancel = Cancel::new();
        let reads = Arc::new(AtomicUsize::new(0));
        let (c, counter) = (cancel.clone(), reads.clone());
        let fake = bench().on_read(move |_, _| {
            if counter.fetch_add(1, Ordering::SeqCst) == 1 {
                c.cancel(2);
            }
        });
        let log = fake.log();
        let mut mem = memory(fake, OPEN, NRF).with_chunk(512);
        let limits = Limits::new(1 << 20, Duration::from_secs(10), cancel);
        let err = mem.read(&flash_4k(), &limits).unwrap_err();
        assert!(matches!(err, MemoryError::Cancelled), "{err}");
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        drop(mem);
        assert_eq!(events(&log).last().unwrap(), "detach");
        assert!(events(&log).contains(&"resume".to_string()));
    }

    #[test]
    fn too_large_via_snapshot_before_any_attach() {
        let fake = bench();
        let log = fake.log();
        let mut mem = memory(fake, OPEN, NRF);
        let limits = Limits::new(1024, Duration::from_secs(10), Cancel::new());
        let err = snapshot(&mut mem, &[flash_4k()], &limits).unwrap_err();
        assert!(
            matches!(
                err,
                MemoryError::TooLarge {
                    len: 4096,
                    max: 1024,
                    ..
                }
            ),
            "{err}"
        );
        // And read() itself refuses too, for callers that skip snapshot().
        assert!(matches!(
            mem.read(&flash_4k(), &limits),
            Err(MemoryError::TooLarge { .. })
        ));
        assert!(events(&log).is_empty());

        let exact = Limits::new(4096, Duration::from_secs(10), Cancel::new());
        let snap = snapshot(&mut mem, &[flash_4k()], &exact).unwrap();
        assert_eq!(snap.source, format!("probe-rs {NRF} via {OPEN}"));
        assert_eq!(snap.regions[0].bytes.len(), 4096);
    }

    #[test]
    fn core_that_does_not_halt_is_open_running_and_not_resumed() {
        let mut fake = bench();
        fake.targets[0].halts = false;
        let log = fake.log();
        let mut mem = memory(fake, OPEN, NRF);
        mem.read(&flash_4k(), &limits()).unwrap();
        assert!(matches!(mem.access(), Some(Access::OpenRunning(_))));
        assert!(mem.access().unwrap().is_open());
        drop(mem);
        assert!(!events(&log).contains(&"resume".to_string()));
    }

    #[test]
    fn real_lister_without_usb_does_not_panic() {
        // On a build machine with no USB bus this is Ok(empty); with probes attached it lists them.
        match ProbeRs::new().list() {
            Ok(probes) => {
                for p in probes {
                    assert!(!p.to_string().is_empty());
                }
            }
            Err(e) => assert!(!e.is_refusal(), "{e}"),
        }
    }

    #[test]
    fn real_probe_rs_with_no_such_probe_is_unreachable() {
        // VID:PID 0000:0000 is no probe anywhere: the real open path fails as bench trouble.
        let sel: ProbeSelector = "0000:0000:hilt-none".parse().unwrap();
        let err = match ProbeRs::new().attach(&sel, NRF) {
            Ok(_) => panic!("a probe 0000:0000 opened"),
            Err(e) => e,
        };
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("0000:0000:hilt-none"), "{err}");

        let err = ProbeMemory::probe_rs(sel, NRF)
            .read(&flash_4k(), &limits())
            .unwrap_err();
        assert!(matches!(err, MemoryError::Unreachable { .. }), "{err}");
    }
}
