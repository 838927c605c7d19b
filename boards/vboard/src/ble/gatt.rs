//! The peripheral's advertisement and GATT table, and its answer to each request: a pure function
//! of the request, the unit's live facts and the defects, with no I/O of its own.

use std::collections::BTreeMap;

use hilt_link::ble::wire::{Reply, Request};
use hilt_link::ble::{Advert, BleUuid, CharProperty, GattCharacteristic, GattService};

use super::facts::{DeviceFacts, SharedFacts};
use crate::MODEL;
use crate::defects::{Defect, DefectSet};

const GAP: BleUuid = BleUuid::from_u16(0x1800);
const GATT: BleUuid = BleUuid::from_u16(0x1801);
const DEVICE_INFORMATION: BleUuid = BleUuid::from_u16(0x180a);
const BATTERY: BleUuid = BleUuid::from_u16(0x180f);
pub const BATTERY_LEVEL: BleUuid = BleUuid::from_u16(0x2a19);
/// The client characteristic configuration descriptor of a notifying characteristic.
const CCCD: BleUuid = BleUuid::from_u16(0x2902);
pub const PROVISIONING_SERVICE: BleUuid = BleUuid(0x7b5e0001_1d3c_4a6e_9b39_2f6c8e0f0a11);
pub const WIFI_SSID_CHAR: BleUuid = BleUuid(0x7b5e0002_1d3c_4a6e_9b39_2f6c8e0f0a11);
pub const OWNER_NAME_CHAR: BleUuid = BleUuid(0x7b5e0003_1d3c_4a6e_9b39_2f6c8e0f0a11);
/// The `ble-extra-service` defect's leftover factory-test service and its one characteristic.
pub const FACTORY_TEST_SERVICE: BleUuid = BleUuid(0x7b5e00f0_1d3c_4a6e_9b39_2f6c8e0f0a11);
pub const FACTORY_TEST_CHAR: BleUuid = BleUuid(0x7b5e00f1_1d3c_4a6e_9b39_2f6c8e0f0a11);
const MANUFACTURER: &str = "hilt project";
/// Bluetooth SIG's company id reserved for tests, and the one byte the board puts under it.
const TEST_COMPANY: u16 = 0xffff;
const MANUFACTURER_DATA: &str = "01";
/// The simulated battery, in percent.
const BATTERY_PERCENT: u8 = 100;
/// The longest attribute value ATT allows.
const MAX_VALUE: usize = 512;

const INSUFFICIENT_AUTHENTICATION: &str = "insufficient-authentication";
const READ_NOT_PERMITTED: &str = "read-not-permitted";
const WRITE_NOT_PERMITTED: &str = "write-not-permitted";
const ATTRIBUTE_NOT_FOUND: &str = "attribute-not-found";
const REQUEST_NOT_SUPPORTED: &str = "request-not-supported";
pub(crate) const INVALID_PDU: &str = "invalid-pdu";
const INVALID_LENGTH: &str = "invalid-attribute-value-length";

/// What a read of a characteristic returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Text(&'static str),
    Appearance,
    Serial,
    Firmware,
    Battery,
    OwnerName,
}

/// One characteristic and who may use it.
#[derive(Debug, Clone)]
struct Char {
    uuid: BleUuid,
    properties: &'static [CharProperty],
    /// `None`: not readable.
    read: Option<Source>,
    /// Reads and writes need a paired (authenticated) central, which this radio never has.
    paired_only: bool,
}

impl Char {
    fn new(uuid: BleUuid, properties: &'static [CharProperty], read: Option<Source>) -> Self {
        Self {
            uuid,
            properties,
            read,
            paired_only: false,
        }
    }

    fn paired_only(self) -> Self {
        Self {
            paired_only: true,
            ..self
        }
    }

    fn can(&self, p: CharProperty) -> bool {
        self.properties.contains(&p)
    }

    fn notifies(&self) -> bool {
        self.can(CharProperty::Notify) || self.can(CharProperty::Indicate)
    }

    fn declaration(&self) -> GattCharacteristic {
        GattCharacteristic {
            uuid: self.uuid,
            properties: self.properties.to_vec(),
            descriptors: if self.notifies() { vec![CCCD] } else { vec![] },
        }
    }
}

/// The simulated peripheral: its GATT table (fixed at start, from the defects), its address and
/// the unit's live facts.
#[derive(Debug, Clone)]
pub struct Peripheral {
    address: String,
    services: Vec<(BleUuid, Vec<Char>)>,
    facts: SharedFacts,
    /// The `ble-advertises-owner` defect.
    advertises_owner: bool,
}

impl Peripheral {
    /// The peripheral of the unit `factory_seq` made (its address), showing `facts`.
    pub fn new(facts: SharedFacts, defects: &DefectSet, factory_seq: u32) -> Self {
        Self {
            address: address(factory_seq),
            services: table(defects),
            facts,
            advertises_owner: defects.has(Defect::BleAdvertisesOwner),
        }
    }

    /// The answer to one request.
    pub fn answer(&self, request: &Request) -> Reply {
        match request {
            Request::Advertise => Reply::Advert(self.advert()),
            Request::Services => Reply::Services(self.declarations()),
            Request::Read { char } => self.read(char),
            Request::Write { char, value, .. } => self.write(char, value),
            Request::Subscribe { char } => self.subscribe(char),
        }
    }

    /// The value a notification of `char` carries now, in hex; `None` for one that never notifies a
    /// value (the service-changed indication: the table never changes).
    pub fn notification(&self, char: &BleUuid) -> Option<String> {
        match self.read(char) {
            Reply::Value(v) => Some(v),
            _ => None,
        }
    }

    fn advert(&self) -> Advert {
        let owner = self
            .facts
            .get()
            .owner_name
            .filter(|_| self.advertises_owner);
        let local_name = match owner {
            Some(name) => format!("{name}'s VRB"),
            None => MODEL.to_string(),
        };
        Advert {
            address: self.address.clone(),
            local_name: Some(local_name),
            rssi: None,
            tx_power: None,
            services: vec![BATTERY, PROVISIONING_SERVICE],
            manufacturer_data: BTreeMap::from([(TEST_COMPANY, MANUFACTURER_DATA.to_string())]),
            service_data: BTreeMap::new(),
        }
    }

    fn declarations(&self) -> Vec<GattService> {
        let service = |(uuid, chars): &(BleUuid, Vec<Char>)| GattService {
            uuid: *uuid,
            primary: true,
            characteristics: chars.iter().map(Char::declaration).collect(),
        };
        self.services.iter().map(service).collect()
    }

    fn find(&self, uuid: &BleUuid) -> Option<&Char> {
        let mut chars = self.services.iter().flat_map(|(_, chars)| chars);
        chars.find(|c| c.uuid == *uuid)
    }

    fn read(&self, uuid: &BleUuid) -> Reply {
        let Some(c) = self.find(uuid) else {
            return att(ATTRIBUTE_NOT_FOUND);
        };
        match c.read {
            None => att(READ_NOT_PERMITTED),
            Some(_) if c.paired_only => att(INSUFFICIENT_AUTHENTICATION),
            Some(source) => Reply::Value(hex::encode(value(source, &self.facts.get()))),
        }
    }

    /// Nothing an unpaired central may write has an effect (the factory-test characteristic only
    /// acknowledges), so an accepted write changes nothing.
    fn write(&self, uuid: &BleUuid, value: &str) -> Reply {
        let Some(bytes) = hex::decode(value).ok() else {
            return att(INVALID_PDU);
        };
        let Some(c) = self.find(uuid) else {
            return att(ATTRIBUTE_NOT_FOUND);
        };
        if !(c.can(CharProperty::Write) || c.can(CharProperty::WriteWithoutResponse)) {
            att(WRITE_NOT_PERMITTED)
        } else if c.paired_only {
            att(INSUFFICIENT_AUTHENTICATION)
        } else if bytes.len() > MAX_VALUE {
            att(INVALID_LENGTH)
        } else {
            Reply::Done
        }
    }

    fn subscribe(&self, uuid: &BleUuid) -> Reply {
        match self.find(uuid) {
            None => att(ATTRIBUTE_NOT_FOUND),
            Some(c) if !c.notifies() => att(REQUEST_NOT_SUPPORTED),
            Some(c) if c.paired_only => att(INSUFFICIENT_AUTHENTICATION),
            Some(_) => Reply::Done,
        }
    }
}

fn att(name: &str) -> Reply {
    Reply::Att(name.to_string())
}

/// `C0:FF:EE:xx:xx:xx` with the unit's place in the factory's sequence: units differ.
fn address(factory_seq: u32) -> String {
    let [_, a, b, c] = factory_seq.to_be_bytes();
    format!("C0:FF:EE:{a:02X}:{b:02X}:{c:02X}")
}

fn value(source: Source, facts: &DeviceFacts) -> Vec<u8> {
    match source {
        Source::Text(text) => text.as_bytes().to_vec(),
        Source::Appearance => vec![0, 0],
        Source::Serial => facts.serial.as_bytes().to_vec(),
        Source::Firmware => facts.firmware.as_bytes().to_vec(),
        Source::Battery => vec![BATTERY_PERCENT],
        Source::OwnerName => facts.owner_name.clone().unwrap_or_default().into_bytes(),
    }
}

/// The GATT table, services in handle order.
fn table(defects: &DefectSet) -> Vec<(BleUuid, Vec<Char>)> {
    use CharProperty::{Indicate, Notify, Read, Write};
    let u = BleUuid::from_u16;
    let serial = Char::new(u(0x2a25), &[Read], Some(Source::Serial));
    let mut services = vec![
        (
            GAP,
            vec![
                Char::new(u(0x2a00), &[Read], Some(Source::Text(MODEL))),
                Char::new(u(0x2a01), &[Read], Some(Source::Appearance)),
            ],
        ),
        (GATT, vec![Char::new(u(0x2a05), &[Indicate], None)]),
        (
            DEVICE_INFORMATION,
            vec![
                Char::new(u(0x2a29), &[Read], Some(Source::Text(MANUFACTURER))),
                Char::new(u(0x2a24), &[Read], Some(Source::Text(MODEL))),
                if defects.has(Defect::BleLeaksSerial) {
                    serial
                } else {
                    serial.paired_only()
                },
                Char::new(u(0x2a26), &[Read], Some(Source::Firmware)).paired_only(),
            ],
        ),
        (
            BATTERY,
            vec![Char::new(
                BATTERY_LEVEL,
                &[Read, Notify],
                Some(Source::Battery),
            )],
        ),
        (
            PROVISIONING_SERVICE,
            vec![
                Char::new(WIFI_SSID_CHAR, &[Write], None).paired_only(),
                Char::new(OWNER_NAME_CHAR, &[Read], Some(Source::OwnerName)).paired_only(),
            ],
        ),
    ];
    if defects.has(Defect::BleExtraService) {
        let test = Char::new(FACTORY_TEST_CHAR, &[Write], None);
        services.push((FACTORY_TEST_SERVICE, vec![test]));
    }
    services
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peripheral(defects: &[&str]) -> Peripheral {
        let facts = SharedFacts::new(DeviceFacts {
            serial: "VRB-00000001".into(),
            firmware: "1.0.0".into(),
            owner_name: Some("Alice".into()),
        });
        Peripheral::new(facts, &DefectSet::parse(defects).unwrap(), 1)
    }

    fn read(p: &Peripheral, uuid: BleUuid) -> Reply {
        p.answer(&Request::Read { char: uuid })
    }

    #[test]
    fn addresses_differ_by_factory_sequence() {
        assert_eq!(address(1), "C0:FF:EE:00:00:01");
        assert_eq!(address(0x1_02_03), "C0:FF:EE:01:02:03");
    }

    #[test]
    fn nothing_identifying_is_readable_or_advertised() {
        let p = peripheral(&[]);
        let u = BleUuid::from_u16;
        assert_eq!(read(&p, u(0x2a00)), Reply::Value(hex::encode("VRB-1")));
        assert_eq!(read(&p, u(0x2a01)), Reply::Value("0000".into()));
        for refused in [u(0x2a25), u(0x2a26), OWNER_NAME_CHAR] {
            assert_eq!(read(&p, refused), att(INSUFFICIENT_AUTHENTICATION));
        }
        let Reply::Advert(advert) = p.answer(&Request::Advertise) else {
            panic!("no advert")
        };
        assert_eq!(advert.local_name.as_deref(), Some("VRB-1"));
        for payload in advert.payloads() {
            let text = String::from_utf8_lossy(&payload);
            assert!(
                !text.contains("Alice") && !text.contains("VRB-0000"),
                "{text}"
            );
        }
    }

    #[test]
    fn each_defect_changes_one_thing() {
        let good = peripheral(&[]);
        let leaky = peripheral(&["ble-leaks-serial"]);
        let serial = BleUuid::from_u16(0x2a25);
        assert_eq!(
            read(&leaky, serial),
            Reply::Value(hex::encode("VRB-00000001"))
        );
        assert_eq!(leaky.declarations(), good.declarations());
        let loud = peripheral(&["ble-advertises-owner"]);
        let Reply::Advert(advert) = loud.answer(&Request::Advertise) else {
            panic!("no advert")
        };
        assert_eq!(advert.local_name.as_deref(), Some("Alice's VRB"));
        assert_eq!(
            read(&loud, BleUuid::from_u16(0x2a00)),
            read(&good, BleUuid::from_u16(0x2a00))
        );
        let extra = peripheral(&["ble-extra-service"]);
        let mut services = extra.declarations();
        let test = services.pop().unwrap();
        assert_eq!(services, good.declarations());
        assert_eq!(test.uuid, FACTORY_TEST_SERVICE);
        assert_eq!(read(&extra, FACTORY_TEST_CHAR), att(READ_NOT_PERMITTED));
        let write = Request::Write {
            char: FACTORY_TEST_CHAR,
            value: "00".into(),
            with_response: true,
        };
        assert_eq!(extra.answer(&write), Reply::Done);
        assert_eq!(good.answer(&write), att(ATTRIBUTE_NOT_FOUND));
    }

    #[test]
    fn writes_and_subscriptions_are_checked() {
        let p = peripheral(&[]);
        let write = |char, value: &str| Request::Write {
            char,
            value: value.into(),
            with_response: true,
        };
        assert_eq!(
            p.answer(&write(WIFI_SSID_CHAR, "6869")),
            att(INSUFFICIENT_AUTHENTICATION)
        );
        assert_eq!(p.answer(&write(WIFI_SSID_CHAR, "zz")), att(INVALID_PDU));
        assert_eq!(
            p.answer(&write(BATTERY_LEVEL, "00")),
            att(WRITE_NOT_PERMITTED)
        );
        assert_eq!(read(&p, WIFI_SSID_CHAR), att(READ_NOT_PERMITTED));
        let sub = |char| Request::Subscribe { char };
        assert_eq!(p.answer(&sub(BATTERY_LEVEL)), Reply::Done);
        assert_eq!(p.answer(&sub(BleUuid::from_u16(0x2a05))), Reply::Done);
        assert_eq!(
            p.answer(&sub(BleUuid::from_u16(0x2a00))),
            att(REQUEST_NOT_SUPPORTED)
        );
        assert_eq!(
            p.answer(&sub(BleUuid::from_u16(0x2a37))),
            att(ATTRIBUTE_NOT_FOUND)
        );
        assert_eq!(p.notification(&BATTERY_LEVEL), Some("64".into()));
    }
}
