//! A scripted device for testing the executor without hardware: [`FakeBench`] is a board profile and a
//! unit whose serial links are [`FakeDevice`]s, each answering the lines typed at it through a
//! [`DeviceScript`]. Exported so tests in other crates can drive case logic the same way (probe-rs's
//! `FakeProbe` is the model).

use hilt_link::{Cancel, Console, ConsoleOptions, Port};
use hilt_model::profile::{BoardProfile, Unit};
use hilt_model::template::Value;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hilt_link::ble::BleCentral;
use hilt_link::usb::UsbBus;

use crate::cloud::CloudSession;
use crate::exec::Bench;

/// What the device does with one line typed at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Print these bytes.
    Say(Vec<u8>),
    /// Print nothing (a hung or deaf device).
    Silent,
    /// Drop the link (an unplugged or crashed device).
    Hangup,
}

impl Reply {
    pub fn say(text: &str) -> Reply {
        Reply::Say(text.as_bytes().to_vec())
    }
}

/// A device's behaviour on a line-oriented console.
pub trait DeviceScript: Send {
    /// The answer to one line (without its line ending; a bare `\r` gives an empty line).
    fn line(&mut self, line: &str) -> Reply;
}

impl<F: FnMut(&str) -> Reply + Send> DeviceScript for F {
    fn line(&mut self, line: &str) -> Reply {
        self(line)
    }
}

/// A [`Port`] backed by a [`DeviceScript`] (a script that wants to be asserted on records the lines
/// it is sent itself).
pub struct FakeDevice {
    script: Box<dyn DeviceScript>,
    pending: Vec<u8>,
    out: VecDeque<u8>,
    closed: bool,
}

impl FakeDevice {
    pub fn new(script: impl DeviceScript + 'static) -> Self {
        FakeDevice {
            script: Box::new(script),
            pending: Vec::new(),
            out: VecDeque::new(),
            closed: false,
        }
    }
}

impl DeviceScript for Box<dyn DeviceScript> {
    fn line(&mut self, line: &str) -> Reply {
        (**self).line(line)
    }
}

impl Port for FakeDevice {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if self.out.is_empty() {
            if self.closed {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            std::thread::sleep(timeout.min(Duration::from_millis(10)));
            return Ok(0);
        }
        let n = buf.len().min(self.out.len());
        for (slot, b) in buf.iter_mut().zip(self.out.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if self.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        for &b in data {
            if b != b'\r' && b != b'\n' {
                self.pending.push(b);
                continue;
            }
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
            match self.script.line(&line) {
                Reply::Say(bytes) => self.out.extend(bytes),
                Reply::Silent => {}
                Reply::Hangup => self.closed = true,
            }
        }
        Ok(())
    }
}

type Factory = Box<dyn Fn() -> Box<dyn DeviceScript> + Send + Sync>;

/// A bench with a profile, its first unit, known unit passwords and scripted devices on its links.
pub struct FakeBench {
    pub profile: BoardProfile,
    unit: Unit,
    passwords: BTreeMap<String, String>,
    devices: BTreeMap<String, Factory>,
    cloud: Option<CloudSession>,
    /// Variables the profile's memory links are rendered with (e.g. `state`).
    vars: BTreeMap<String, String>,
    usb_buses: BTreeMap<String, Arc<dyn UsbBus + Send + Sync>>,
    radios: BTreeMap<String, RadioFactory>,
    switches: BTreeMap<String, crate::power::FakeSwitch>,
}

type RadioFactory = Box<dyn Fn() -> Box<dyn BleCentral> + Send + Sync>;

impl FakeBench {
    pub fn new(profile: BoardProfile) -> Self {
        let unit = profile.units[0].clone();
        FakeBench {
            profile,
            unit,
            passwords: BTreeMap::new(),
            devices: BTreeMap::new(),
            cloud: None,
            vars: BTreeMap::new(),
            usb_buses: BTreeMap::new(),
            radios: BTreeMap::new(),
            switches: BTreeMap::new(),
        }
    }

    /// The switch power link `link` works (its `cycles` count what the executor did).
    pub fn power_switch(mut self, link: &str, switch: crate::power::FakeSwitch) -> Self {
        self.switches.insert(link.into(), switch);
        self
    }

    /// The USB bus usb link `link` lists (e.g. a [`hilt_link::usb::FakeBus`] of recorded devices).
    pub fn usb_bus(mut self, link: &str, bus: Arc<dyn UsbBus + Send + Sync>) -> Self {
        self.usb_buses.insert(link.into(), bus);
        self
    }

    /// The radio ble link `link` scans with (e.g. a [`hilt_link::ble::FakeCentral`] of recorded
    /// devices): `make` is called each time the link is surveyed.
    pub fn radio(
        mut self,
        link: &str,
        make: impl Fn() -> Box<dyn BleCentral> + Send + Sync + 'static,
    ) -> Self {
        self.radios.insert(link.into(), Box::new(make));
        self
    }

    /// `t` rendered with the bench's variables.
    fn text(&self, t: &hilt_model::template::Template) -> Result<String, String> {
        t.render(|name| {
            self.vars
                .get(name)
                .map(|v| Value::plain(v.clone()))
                .or_else(|| (name == "unit.serial").then(|| Value::plain(self.unit.serial.clone())))
                .ok_or_else(|| format!("unknown variable {{{name}}}"))
        })
        .map(|v| v.text)
    }

    /// A variable for rendering the profile's memory links (`{state}`, `{launch.debug}`, …).
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// The unit's password for credential surface `surface` (e.g. `console`).
    pub fn password(mut self, surface: &str, password: &str) -> Self {
        self.passwords.insert(surface.into(), password.into());
        self
    }

    /// A real mock cloud for the bench (started for the unit's serial), so cloud steps and checks run
    /// against a scripted device.
    pub fn with_cloud(mut self, cloud: CloudSession) -> Self {
        self.cloud = Some(cloud);
        self
    }

    /// The device behind `link`: `make` is called each time the link is opened.
    pub fn device<S: DeviceScript + 'static>(
        mut self,
        link: &str,
        make: impl Fn() -> S + Send + Sync + 'static,
    ) -> Self {
        self.devices
            .insert(link.into(), Box::new(move || Box::new(make())));
        self
    }
}

impl Bench for FakeBench {
    fn profile(&self) -> &BoardProfile {
        &self.profile
    }

    fn unit(&self) -> &Unit {
        &self.unit
    }

    fn credential(&self, unit: usize, surface: &str, field: &str) -> Result<Value, String> {
        if unit != 0 {
            return Err(format!(
                "this fake bench has one unit, not unit {}",
                unit + 1
            ));
        }
        let cred = self.unit.credentials.get(surface).ok_or_else(|| {
            format!(
                "unit {} declares no credentials for {surface:?}",
                self.unit.serial
            )
        })?;
        match field {
            "username" => Ok(Value::plain(cred.username.clone())),
            "password" => self
                .passwords
                .get(surface)
                .map(|p| Value::secret(p.clone()))
                .ok_or_else(|| format!("no password for {surface:?} on this bench")),
            other => Err(format!(
                "credential field {other:?} (known: username, password)"
            )),
        }
    }

    fn open_console(
        &self,
        link: &str,
        cancel: Cancel,
    ) -> Result<Console<Box<dyn Port>>, (hilt_model::Verdict, String)> {
        if self.radios.contains_key(link) {
            let plan = self
                .ble_plan(link)
                .map_err(|e| (hilt_model::Verdict::Error, e))?;
            return plan
                .open_console(cancel)
                .map_err(|e| (crate::ble::trouble(&e), e.to_string()));
        }
        let make = self.devices.get(link).ok_or_else(|| {
            (
                hilt_model::Verdict::Error,
                format!("no device on link {link:?}"),
            )
        })?;
        let port: Box<dyn Port> = Box::new(FakeDevice::new(make()));
        Ok(Console::new(
            port,
            ConsoleOptions {
                cancel: Some(cancel),
                ..ConsoleOptions::default()
            },
        ))
    }

    fn cloud(&self) -> Option<&CloudSession> {
        self.cloud.as_ref()
    }

    fn mask(&self, secret: &str, label: &str) {
        if let Some(c) = &self.cloud {
            c.mask_secret(secret, label);
        }
    }

    fn memory_plan(&self, link: &str, unit: usize) -> Result<crate::memory::MemoryPlan, String> {
        if unit != 0 {
            return Err(format!(
                "this fake bench has one unit, not unit {}",
                unit + 1
            ));
        }
        let Some(hilt_model::profile::Link::Memory(decl)) = self.profile.links.get(link) else {
            return Err(format!("no memory link {link:?} in this profile"));
        };
        crate::memory::MemoryPlan::new(link, decl, |t| self.text(t))
    }

    fn usb_plan(&self, link: &str) -> Result<crate::usb::UsbPlan, String> {
        let Some(hilt_model::profile::Link::Usb(decl)) = self.profile.links.get(link) else {
            return Err(format!("no usb link {link:?} in this profile"));
        };
        let bus = self
            .usb_buses
            .get(link)
            .ok_or_else(|| format!("no USB bus on this fake bench for link {link:?}"))?;
        let mut plan = crate::usb::plan(link, decl, |t| self.text(t))?;
        plan.bus = bus.clone();
        Ok(plan)
    }

    fn power_switch(&self, link: &str) -> Result<Box<dyn crate::power::PowerSwitch>, String> {
        let Some(hilt_model::profile::Link::Power(_)) = self.profile.links.get(link) else {
            return Err(format!("no power link {link:?} in this profile"));
        };
        self.switches
            .get(link)
            .map(|s| Box::new(s.clone()) as Box<dyn crate::power::PowerSwitch>)
            .ok_or_else(|| format!("no power switch on this fake bench for link {link:?}"))
    }

    fn ble_plan(&self, link: &str) -> Result<crate::ble::BlePlan, String> {
        let Some(hilt_model::profile::Link::Ble(decl)) = self.profile.links.get(link) else {
            return Err(format!("no ble link {link:?} in this profile"));
        };
        let make = self
            .radios
            .get(link)
            .ok_or_else(|| format!("no radio on this fake bench for link {link:?}"))?;
        crate::ble::plan(link, decl, |t| self.text(t), Some(make()))
    }
}
