//! What is attached to this bench, and which board profile each thing is: USB devices (with what each
//! interface is for), serial ports with their USB identity, and debug probes, matched against the
//! identities the suite's board profiles declare (a serial link's `usb`, a probe-rs link's
//! `probe`). A source that does not exist on this machine (no USB bus, as on CI machines) is said
//! plainly as such, never an error. BLE devices come from a bounded scan, matched against the
//! profiles' ble links (by name, address or advertised service).

use std::time::Duration;

use hilt_link::Cancel;
use hilt_link::ble::{Advert, BleCentral, BleError, ScanFilter};
use hilt_link::usb::{InterfaceKind, UsbBus, UsbDevice, UsbError, UsbIdentity};
use hilt_model::profile::{BoardProfile, Link, MemorySource};
use serde::Serialize;

/// Everything found, each source with what it found or why it found nothing.
#[derive(Debug, Serialize)]
pub struct Inventory {
    pub usb: Source<UsbEntry>,
    pub serial_ports: Source<PortEntry>,
    pub probes: Source<ProbeEntry>,
    pub ble: Source<BleEntry>,
}

#[derive(Debug, Serialize)]
pub struct BleEntry {
    pub advert: Advert,
    pub matches: Vec<Match>,
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

/// The identities the profiles declare: (board, link, identity), one per unit when the identity
/// names the unit (`serial = "{unit.serial}"`), with the unit's serial in the link name's place.
pub fn declared(profiles: &[BoardProfile]) -> Vec<(String, String, UsbIdentity)> {
    let mut out = Vec::new();
    for p in profiles {
        for (name, link) in &p.links {
            let usb = match link {
                Link::Serial(s) => s.usb.as_ref(),
                Link::Usb(u) => Some(&u.usb),
                Link::Memory(m) => {
                    if let MemorySource::ProbeRs { probe, .. } = &m.source
                        && let Some(id) = parse_selector(probe)
                    {
                        out.push((p.name().to_string(), name.clone(), id));
                    }
                    None
                }
                Link::Cloud(_) | Link::Ble(_) | Link::Power(_) => None,
            };
            let Some(u) = usb else { continue };
            for (unit, serial) in unit_serials(p, u.serial.as_ref()) {
                let id = UsbIdentity {
                    vid: u.vid,
                    pid: u.pid,
                    serial,
                    interface: u.interface,
                };
                let link = match unit {
                    Some(unit) => format!("{name} (unit {unit})"),
                    None => name.clone(),
                };
                out.push((p.name().to_string(), link, id));
            }
        }
    }
    out
}

/// The serial numbers a templated USB serial stands for: one per unit when it names the unit, as
/// written when it is plain; one that needs a run's variables (a launched board's) matches nothing.
fn unit_serials(
    p: &BoardProfile,
    serial: Option<&hilt_model::template::Template>,
) -> Vec<(Option<String>, Option<String>)> {
    let Some(t) = serial else {
        return vec![(None, None)];
    };
    if let Ok(v) = t.render(|_| Err::<hilt_model::template::Value, String>(String::new())) {
        return vec![(None, Some(v.text))];
    }
    p.units
        .iter()
        .filter_map(|u| {
            let v = t
                .render(|name: &String| match name.as_str() {
                    "unit.serial" => Ok(hilt_model::template::Value::plain(u.serial.clone())),
                    other => Err(other.to_string()),
                })
                .ok()?;
            Some((Some(u.serial.clone()), Some(v.text)))
        })
        .collect()
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

/// The ble links the profiles declare on a real radio (a simulated radio is no device on this bench):
/// (board, link, what to scan for), one per unit when the link names the unit.
pub fn declared_ble(profiles: &[BoardProfile]) -> Vec<(String, String, ScanFilter)> {
    let mut out = Vec::new();
    for p in profiles {
        for (name, link) in &p.links {
            let Link::Ble(b) = link else { continue };
            if b.radio.is_some() {
                continue;
            }
            let service = b.service.as_deref().and_then(|s| s.parse().ok());
            let names = unit_serials(p, b.name.as_ref());
            let addresses = unit_serials(p, b.address.as_ref());
            for ((unit, name_), (_, address)) in names.into_iter().zip(addresses) {
                let link = match unit {
                    Some(unit) => format!("{name} (unit {unit})"),
                    None => name.clone(),
                };
                let filter = ScanFilter {
                    name: name_,
                    address,
                    service,
                };
                out.push((p.name().to_string(), link, filter));
            }
        }
    }
    out
}

/// BLE devices heard in a scan of `within` on `central`; no adapter is said plainly.
pub fn ble(
    central: Result<Box<dyn BleCentral>, BleError>,
    within: Duration,
    declared: &[(String, String, ScanFilter)],
) -> Source<BleEntry> {
    let scanned = central.and_then(|c| c.scan(within, &Cancel::new()));
    match scanned {
        Ok(adverts) => Source::Found(
            adverts
                .into_iter()
                .map(|a| BleEntry {
                    matches: declared
                        .iter()
                        .filter(|(_, _, f)| f.matches(&a))
                        .map(|(board, link, _)| Match {
                            board: board.clone(),
                            link: link.clone(),
                        })
                        .collect(),
                    advert: a,
                })
                .collect(),
        ),
        Err(e @ BleError::NoAdapter(_)) => Source::Absent(e.to_string()),
        Err(e) => Source::Failed(e.to_string()),
    }
}

/// The whole inventory of this machine, matched against `profiles`; BLE scanned for `ble_scan`.
pub fn take(
    bus: &dyn UsbBus,
    debugger: &dyn hilt_link::memory::probe::Debugger,
    central: Result<Box<dyn BleCentral>, BleError>,
    ble_scan: Duration,
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
        ble: ble(central, ble_scan, &declared_ble(profiles)),
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
    fn no_radio_is_said_plainly_and_a_heard_device_is_matched_to_its_profile() {
        let s = ble(
            Err(BleError::NoAdapter("no system bus".into())),
            Duration::from_millis(10),
            &[],
        );
        let Source::Absent(why) = s else {
            panic!("{s:?}")
        };
        assert!(
            why.starts_with("no Bluetooth adapter on this machine"),
            "{why}"
        );
        let heard = Advert {
            address: "C0:FF:EE:00:00:07".into(),
            local_name: Some("Thermo-7".into()),
            rssi: Some(-60),
            tx_power: None,
            services: vec![],
            manufacturer_data: Default::default(),
            service_data: Default::default(),
        };
        let central = hilt_link::ble::FakeCentral::new(vec![hilt_link::ble::RecordedDevice {
            advert: heard,
            services: vec![],
            values: Default::default(),
            refusals: Default::default(),
        }]);
        let declared = vec![(
            "thermo".to_string(),
            "ble".to_string(),
            ScanFilter {
                name: Some("Thermo-7".into()),
                ..ScanFilter::default()
            },
        )];
        let s = ble(Ok(Box::new(central)), Duration::from_millis(10), &declared);
        let Source::Found(found) = s else {
            panic!("{s:?}")
        };
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].matches[0].board, "thermo");
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
