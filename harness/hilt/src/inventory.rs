//! What is attached to this bench, and which board profile each thing is: USB devices (with what each
//! interface is for), serial ports with their USB identity, and debug probes, matched against the
//! identities the suite's board profiles declare (a serial link's `usb`, a probe-rs link's
//! `probe`). A source that does not exist on this machine (no USB bus, as on CI machines) is said
//! plainly as such, never an error. BLE is not scanned: hilt has no BLE link yet.

use hilt_link::usb::{InterfaceKind, UsbBus, UsbDevice, UsbError, UsbIdentity};
use hilt_model::profile::{BoardProfile, Link, MemorySource};
use serde::Serialize;

/// Everything found, each source with what it found or why it found nothing.
#[derive(Debug, Serialize)]
pub struct Inventory {
    pub usb: Source<UsbEntry>,
    pub serial_ports: Source<PortEntry>,
    pub probes: Source<ProbeEntry>,
    /// Why BLE was not scanned.
    pub ble: String,
}

/// A source's findings, or why there are none.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source<T> {
    Found(Vec<T>),
    /// The machine has none of this (no USB bus): nothing can be attached.
    Absent(String),
    Failed(String),
}

#[derive(Debug, Serialize)]
pub struct UsbEntry {
    pub device: UsbDevice,
    /// What each interface is for, by interface number.
    pub interfaces: Vec<(u8, InterfaceKind)>,
    pub matches: Vec<Match>,
}

#[derive(Debug, Serialize)]
pub struct PortEntry {
    pub path: String,
    /// `vvvv:pppp[:serial]` when the port is on USB.
    pub usb: Option<String>,
    pub matches: Vec<Match>,
}

#[derive(Debug, Serialize)]
pub struct ProbeEntry {
    pub description: String,
    pub matches: Vec<Match>,
}

/// A board profile link whose declared identity this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Match {
    pub board: String,
    pub link: String,
}

/// The identities the profiles declare: (board, link, identity).
pub fn declared(profiles: &[BoardProfile]) -> Vec<(String, String, UsbIdentity)> {
    let mut out = Vec::new();
    for p in profiles {
        for (name, link) in &p.links {
            let id = match link {
                Link::Serial(s) => s.usb.as_ref().map(|u| UsbIdentity {
                    vid: u.vid,
                    pid: u.pid,
                    serial: u.serial.clone(),
                    interface: None,
                }),
                Link::Memory(m) => match &m.source {
                    MemorySource::ProbeRs { probe, .. } => parse_selector(probe),
                    _ => None,
                },
                Link::Cloud(_) => None,
            };
            if let Some(id) = id {
                out.push((p.name().to_string(), name.clone(), id));
            }
        }
    }
    out
}

/// `VID:PID[:SERIAL]` in hex, as probe selectors are written.
fn parse_selector(s: &str) -> Option<UsbIdentity> {
    let mut parts = s.splitn(3, ':');
    let vid = u16::from_str_radix(parts.next()?, 16).ok()?;
    let pid = u16::from_str_radix(parts.next()?, 16).ok()?;
    Some(UsbIdentity {
        vid,
        pid,
        serial: parts.next().map(str::to_string),
        interface: None,
    })
}

fn matches_of(
    declared: &[(String, String, UsbIdentity)],
    hit: impl Fn(&UsbIdentity) -> bool,
) -> Vec<Match> {
    declared
        .iter()
        .filter(|(_, _, id)| hit(id))
        .map(|(board, link, _)| Match {
            board: board.clone(),
            link: link.clone(),
        })
        .collect()
}

/// The USB part of the inventory, from `bus`.
pub fn usb(bus: &dyn UsbBus, declared: &[(String, String, UsbIdentity)]) -> Source<UsbEntry> {
    match bus.devices() {
        Ok(devices) => Source::Found(
            devices
                .into_iter()
                .map(|d| UsbEntry {
                    interfaces: d.kinds(),
                    matches: matches_of(declared, |id| id.matches(&d)),
                    device: d,
                })
                .collect(),
        ),
        Err(UsbError::NoBus(why)) => Source::Absent(format!("no USB bus on this machine ({why})")),
        Err(e) => Source::Failed(e.to_string()),
    }
}

/// Serial ports as the OS lists them (pseudo-terminals are never listed), with their USB identity.
pub fn serial_ports(declared: &[(String, String, UsbIdentity)]) -> Source<PortEntry> {
    match serialport::available_ports() {
        Ok(ports) => Source::Found(
            ports
                .into_iter()
                .map(|p| {
                    let usb = match &p.port_type {
                        serialport::SerialPortType::UsbPort(u) => {
                            Some((u.vid, u.pid, u.serial_number.clone()))
                        }
                        _ => None,
                    };
                    let matches = match &usb {
                        Some((vid, pid, serial)) => matches_of(declared, |id| {
                            id.vid == *vid
                                && id.pid == *pid
                                && id
                                    .serial
                                    .as_ref()
                                    .is_none_or(|s| serial.as_ref() == Some(s))
                        }),
                        None => Vec::new(),
                    };
                    PortEntry {
                        path: p.port_name,
                        usb: usb.map(|(vid, pid, serial)| match serial {
                            Some(s) => format!("{vid:04x}:{pid:04x}:{s}"),
                            None => format!("{vid:04x}:{pid:04x}"),
                        }),
                        matches,
                    }
                })
                .collect(),
        ),
        Err(e) => Source::Failed(format!("cannot list serial ports: {e}")),
    }
}

/// Debug probes through probe-rs's own listing.
pub fn probes(
    debugger: &dyn hilt_link::memory::probe::Debugger,
    declared: &[(String, String, UsbIdentity)],
) -> Source<ProbeEntry> {
    match debugger.list() {
        Ok(list) => Source::Found(
            list.into_iter()
                .map(|p| ProbeEntry {
                    matches: matches_of(declared, |id| {
                        id.vid == p.vendor_id
                            && id.pid == p.product_id
                            && id
                                .serial
                                .as_ref()
                                .is_none_or(|s| p.serial_number.as_ref() == Some(s))
                    }),
                    description: p.to_string(),
                })
                .collect(),
        ),
        Err(e) => Source::Failed(e.to_string()),
    }
}

/// The whole inventory of this machine, matched against `profiles`.
pub fn take(
    bus: &dyn UsbBus,
    debugger: &dyn hilt_link::memory::probe::Debugger,
    profiles: &[BoardProfile],
) -> Inventory {
    let declared = declared(profiles);
    let usb = usb(bus, &declared);
    let probes = match (&usb, probes(debugger, &declared)) {
        // probe-rs lists USB probes: without a bus, "none" would suggest one was looked for.
        (Source::Absent(why), Source::Found(p)) if p.is_empty() => Source::Absent(why.clone()),
        (_, p) => p,
    };
    Inventory {
        usb,
        serial_ports: serial_ports(&declared),
        probes,
        ble: "not scanned: hilt has no BLE link yet".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_link::usb::FakeBus;
    use std::path::Path;

    fn root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn examples() -> Vec<BoardProfile> {
        ["nrf52840-dk-probe-rs.toml", "openocd-gdb.toml"]
            .iter()
            .map(|f| BoardProfile::load(&root().join("boards/examples").join(f)).unwrap())
            .collect()
    }

    #[test]
    fn a_recorded_jlink_is_the_nrf52840_dk_profile_and_a_uart_bridge_is_no_board() {
        let fixtures = root().join("harness/link/tests/fixtures/usb");
        let bus = FakeBus::new(vec![
            FakeBus::recorded(&fixtures.join("nrf52840dk-jlink.json")).unwrap(),
            FakeBus::recorded(&fixtures.join("cp2102.json")).unwrap(),
        ]);
        let Source::Found(found) = usb(&bus, &declared(&examples())) else {
            panic!("the fake bus lists")
        };
        let jlink = found.iter().find(|e| e.device.vid == 0x1366).unwrap();
        let boards: Vec<&str> = jlink.matches.iter().map(|m| m.board.as_str()).collect();
        assert_eq!(
            boards,
            ["nrf52840-dk", "nrf52840-dk"],
            "{:?}",
            jlink.matches
        );
        assert!(
            jlink
                .interfaces
                .iter()
                .any(|(_, k)| *k == InterfaceKind::Debug)
        );
        let bridge = found.iter().find(|e| e.device.vid == 0x10c4).unwrap();
        assert!(bridge.matches.is_empty());
    }

    #[test]
    fn no_bus_is_said_plainly() {
        let s = usb(&FakeBus::without_bus(), &[]);
        let Source::Absent(why) = s else {
            panic!("{s:?}")
        };
        assert!(why.starts_with("no USB bus on this machine"), "{why}");
        assert_eq!(
            parse_selector("1366:1015:0006"),
            Some(UsbIdentity {
                vid: 0x1366,
                pid: 0x1015,
                serial: Some("0006".into()),
                interface: None,
            })
        );
        assert_eq!(parse_selector("jlink"), None);
    }
}
