//! The real radio: btleplug 0.13 on BlueZ over D-Bus (libdbus built from vendored source), behind
//! the synchronous [`BleCentral`] and [`BlePeripheral`]. The central owns a small tokio runtime and
//! every call is a bounded `block_on`, so none can hang past its deadline.
//!
//! BlueZ reports a device's ATT errors as D-Bus errors (`org.bluez.Error.NotPermitted: Read not
//! permitted`, `... Not paired`, `Operation failed with ATT error: 0x0e`); [`classify`] turns them
//! back into the ATT names [`BleError::Refused`] carries. BlueZ folds insufficient authentication,
//! encryption and key size into one "Not paired": that is reported as `insufficient-authentication`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use btleplug::api::{
    self, Central, CentralEvent, CharPropFlags, Characteristic, Manager as _, Peripheral as _,
    PeripheralProperties, ValueNotification, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral, PeripheralId};
use futures_util::{Stream, StreamExt};
use tokio::runtime::Runtime;
use tokio::time::{Instant, timeout, timeout_at};

use super::{Advert, BleCentral, BleError, BlePeripheral, BleUuid, CharProperty};
use super::{GattCharacteristic, GattService, att};
use crate::Cancel;

/// How long D-Bus and BlueZ get to answer a setup call (bus connection, adapter list, stopping a
/// scan, disconnecting).
const SETUP: Duration = Duration::from_secs(5);
/// Notifications of other characteristics kept while waiting for one.
const HELD_BACKLOG: usize = 4096;

type Notes = Pin<Box<dyn Stream<Item = ValueNotification> + Send>>;

/// The first Bluetooth adapter BlueZ lists.
pub struct BtleplugCentral {
    rt: Arc<Runtime>,
    adapter: Adapter,
    /// Peripherals heard by the last scans, by upper-case address: what `connect` connects to.
    heard: Mutex<BTreeMap<String, Peripheral>>,
}

impl std::fmt::Debug for BtleplugCentral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BtleplugCentral")
            .field("adapter", &self.adapter)
            .finish_non_exhaustive()
    }
}

impl BtleplugCentral {
    /// Connects to BlueZ and takes its first adapter. `NoAdapter` says why not: no D-Bus system bus,
    /// no bluetoothd on it, or no adapter.
    pub fn new() -> Result<Self, BleError> {
        outside_runtime()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hilt-ble")
            .enable_all()
            .build()
            .map_err(|e| BleError::Protocol(format!("cannot start the BLE runtime: {e}")))?;
        let adapter = rt.block_on(async {
            let no = |e: btleplug::Error| BleError::NoAdapter(describe(&e));
            let silent = |what: &str| {
                BleError::NoAdapter(format!(
                    "{what} did not answer within {} s",
                    SETUP.as_secs()
                ))
            };
            let manager = timeout(SETUP, Manager::new())
                .await
                .map_err(|_| silent("the D-Bus system bus"))?
                .map_err(no)?;
            let adapters = timeout(SETUP, manager.adapters())
                .await
                .map_err(|_| silent("BlueZ"))?
                .map_err(no)?;
            adapters
                .into_iter()
                .next()
                .ok_or_else(|| BleError::NoAdapter("BlueZ lists no Bluetooth adapter".into()))
        })?;
        Ok(BtleplugCentral {
            rt: Arc::new(rt),
            adapter,
            heard: Mutex::new(BTreeMap::new()),
        })
    }

    /// The adapter as BlueZ describes it (`hci0 (usb:v1D6Bp0246d0540)`), for reports.
    pub fn adapter_info(&self) -> Result<String, BleError> {
        outside_runtime()?;
        self.rt.block_on(async {
            match timeout(SETUP, self.adapter.adapter_info()).await {
                Ok(r) => r.map_err(|e| classify("adapter-info", None, &e)),
                Err(_) => Err(BleError::Timeout(SETUP.as_millis() as u64)),
            }
        })
    }

    /// The peripheral at `address`: heard in a scan, or known to BlueZ from before.
    fn peripheral(&self, address: &str, within: Duration) -> Result<Peripheral, BleError> {
        let key = address.to_ascii_uppercase();
        let heard = || self.heard.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = heard().get(&key) {
            return Ok(p.clone());
        }
        let known = self.rt.block_on(async {
            match timeout(SETUP, self.adapter.peripherals()).await {
                Ok(Ok(ps)) => ps,
                _ => Vec::new(),
            }
        });
        match known
            .into_iter()
            .find(|p| p.address().to_string().eq_ignore_ascii_case(address))
        {
            Some(p) => {
                heard().insert(key, p.clone());
                Ok(p)
            }
            None => Err(BleError::NotFound {
                wanted: format!("address {address}"),
                waited_ms: within.as_millis() as u64,
                seen: heard().keys().cloned().collect(),
            }),
        }
    }
}

impl BleCentral for BtleplugCentral {
    fn scan(&self, within: Duration, cancel: &Cancel) -> Result<Vec<Advert>, BleError> {
        outside_runtime()?;
        if cancel.is_cancelled() {
            return Err(BleError::Cancelled);
        }
        let adapter = &self.adapter;
        let found = self.rt.block_on(async {
            let mut events = adapter
                .events()
                .await
                .map_err(|e| classify("scan", None, &e))?;
            match timeout(SETUP, adapter.start_scan(api::ScanFilter::default())).await {
                Ok(r) => r.map_err(|e| classify("scan", None, &e))?,
                Err(_) => return Err(BleError::Timeout(SETUP.as_millis() as u64)),
            }
            // Only devices heard during this scan: BlueZ also keeps ones it heard long ago.
            let until = Instant::now() + within;
            let mut heard: BTreeSet<PeripheralId> = BTreeSet::new();
            let mut cancelled = false;
            loop {
                if cancel.is_cancelled() {
                    cancelled = true;
                    break;
                }
                let now = Instant::now();
                if now >= until {
                    break;
                }
                let step = (until - now).min(crate::cancel_poll());
                match timeout(step, events.next()).await {
                    Ok(Some(event)) => heard.extend(heard_from(event)),
                    // The event stream ended: BlueZ went away.
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
            let _ = timeout(SETUP, adapter.stop_scan()).await;
            if cancelled {
                return Err(BleError::Cancelled);
            }
            let mut found = BTreeMap::new();
            for id in heard {
                let Ok(Ok(p)) = timeout(SETUP, adapter.peripheral(&id)).await else {
                    continue;
                };
                let Ok(Ok(Some(props))) = timeout(SETUP, p.properties()).await else {
                    continue;
                };
                let a = advert(&props);
                found.insert(a.address.to_ascii_uppercase(), (a, p));
            }
            Ok(found)
        })?;
        let mut heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        let mut adverts = Vec::with_capacity(found.len());
        for (key, (a, p)) in found {
            heard.insert(key, p);
            adverts.push(a);
        }
        Ok(adverts)
    }

    fn connect(&self, address: &str, within: Duration) -> Result<Box<dyn BlePeripheral>, BleError> {
        outside_runtime()?;
        let p = self.peripheral(address, within)?;
        let until = Instant::now() + within;
        let late = BleError::Timeout(within.as_millis() as u64);
        let opened = self.rt.block_on(async {
            match timeout_at(until, p.connect()).await {
                Ok(r) => r.map_err(|e| classify("connect", None, &e))?,
                Err(_) => return Err(late.clone()),
            }
            let table = async {
                match timeout_at(until, p.discover_services()).await {
                    Ok(r) => r.map_err(|e| classify("discover", None, &e))?,
                    Err(_) => return Err(late.clone()),
                }
                match timeout_at(until, p.notifications()).await {
                    Ok(r) => r.map_err(|e| classify("discover", None, &e)),
                    Err(_) => Err(late.clone()),
                }
            }
            .await;
            if table.is_err() {
                // Half a connection is no use to anyone: leave the device free.
                let _ = timeout(SETUP, p.disconnect()).await;
            }
            table
        });
        let notes = opened?;
        let services = gatt_table(&p.services());
        let chars = p.characteristics().into_iter().collect();
        Ok(Box::new(BtleplugPeripheral {
            rt: self.rt.clone(),
            p,
            chars,
            services,
            notes: Some(notes),
            held: BTreeMap::new(),
            held_count: 0,
        }))
    }
}

/// The device a scan event is about, when it is about hearing one.
fn heard_from(event: CentralEvent) -> Option<PeripheralId> {
    match event {
        CentralEvent::DeviceDiscovered(id)
        | CentralEvent::DeviceUpdated(id)
        | CentralEvent::ManufacturerDataAdvertisement { id, .. }
        | CentralEvent::ServiceDataAdvertisement { id, .. }
        | CentralEvent::ServicesAdvertisement { id, .. }
        | CentralEvent::RssiUpdate { id, .. } => Some(id),
        _ => None,
    }
}

/// What a scan reports of a device.
fn advert(props: &PeripheralProperties) -> Advert {
    let address = props.address.to_string();
    // BlueZ's alias of a nameless device is its address with dashes: not a name it sent.
    let alias_of_address = |n: &String| n.replace('-', ":").eq_ignore_ascii_case(&address);
    let local_name = props
        .advertisement_name
        .clone()
        .or_else(|| props.local_name.clone().filter(|n| !alias_of_address(n)));
    Advert {
        address,
        local_name,
        rssi: props.rssi,
        tx_power: props.tx_power_level,
        services: props
            .services
            .iter()
            .map(|u| BleUuid(u.as_u128()))
            .collect(),
        manufacturer_data: props
            .manufacturer_data
            .iter()
            .map(|(id, d)| (*id, hex::encode(d)))
            .collect(),
        service_data: props
            .service_data
            .iter()
            .map(|(u, d)| (BleUuid(u.as_u128()), hex::encode(d)))
            .collect(),
    }
}

fn properties(flags: CharPropFlags) -> Vec<CharProperty> {
    use CharProperty as P;
    [
        (CharPropFlags::BROADCAST, P::Broadcast),
        (CharPropFlags::READ, P::Read),
        (
            CharPropFlags::WRITE_WITHOUT_RESPONSE,
            P::WriteWithoutResponse,
        ),
        (CharPropFlags::WRITE, P::Write),
        (CharPropFlags::NOTIFY, P::Notify),
        (CharPropFlags::INDICATE, P::Indicate),
        (
            CharPropFlags::AUTHENTICATED_SIGNED_WRITES,
            P::AuthenticatedSignedWrites,
        ),
        (CharPropFlags::EXTENDED_PROPERTIES, P::ExtendedProperties),
    ]
    .into_iter()
    .filter(|(f, _)| flags.contains(*f))
    .map(|(_, p)| p)
    .collect()
}

fn gatt_table(services: &BTreeSet<api::Service>) -> Vec<GattService> {
    services
        .iter()
        .map(|s| GattService {
            uuid: BleUuid(s.uuid.as_u128()),
            primary: s.primary,
            characteristics: s
                .characteristics
                .iter()
                .map(|c| GattCharacteristic {
                    uuid: BleUuid(c.uuid.as_u128()),
                    properties: properties(c.properties),
                    descriptors: c
                        .descriptors
                        .iter()
                        .map(|d| BleUuid(d.uuid.as_u128()))
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// A connection to a device through BlueZ.
pub struct BtleplugPeripheral {
    rt: Arc<Runtime>,
    p: Peripheral,
    chars: Vec<Characteristic>,
    services: Vec<GattService>,
    /// `None` once disconnected.
    notes: Option<Notes>,
    held: BTreeMap<BleUuid, VecDeque<Vec<u8>>>,
    held_count: usize,
}

impl BtleplugPeripheral {
    /// The characteristic `char`, once it allows one of `needs` (else refused as `refusal`, as the
    /// fake and simulated peripherals answer).
    fn characteristic(
        &self,
        op: &str,
        char: &BleUuid,
        needs: CharPropFlags,
        refusal: &str,
    ) -> Result<Characteristic, BleError> {
        outside_runtime()?;
        if self.notes.is_none() {
            return Err(BleError::Unreachable("disconnected".into()));
        }
        let c = self
            .chars
            .iter()
            .find(|c| c.uuid.as_u128() == char.0)
            .ok_or(BleError::NoSuchCharacteristic(*char))?;
        if !c.properties.intersects(needs) {
            return Err(BleError::Refused {
                op: op.into(),
                char: *char,
                att: refusal.into(),
            });
        }
        Ok(c.clone())
    }

    /// Runs one GATT operation with a deadline, its error classified.
    fn run<T>(
        &self,
        op: &str,
        char: &BleUuid,
        within: Duration,
        f: impl std::future::Future<Output = btleplug::Result<T>>,
    ) -> Result<T, BleError> {
        match self.rt.block_on(timeout(within, f)) {
            Ok(r) => r.map_err(|e| classify(op, Some(*char), &e)),
            Err(_) => Err(BleError::Timeout(within.as_millis() as u64)),
        }
    }
}

impl BlePeripheral for BtleplugPeripheral {
    fn services(&mut self) -> Result<Vec<GattService>, BleError> {
        if self.notes.is_none() {
            return Err(BleError::Unreachable("disconnected".into()));
        }
        Ok(self.services.clone())
    }

    fn read(&mut self, char: &BleUuid, within: Duration) -> Result<Vec<u8>, BleError> {
        let c = self.characteristic("read", char, CharPropFlags::READ, att::READ_NOT_PERMITTED)?;
        self.run("read", char, within, self.p.read(&c))
    }

    fn write(
        &mut self,
        char: &BleUuid,
        value: &[u8],
        with_response: bool,
        within: Duration,
    ) -> Result<(), BleError> {
        let c = self.characteristic(
            "write",
            char,
            CharPropFlags::WRITE | CharPropFlags::WRITE_WITHOUT_RESPONSE,
            att::WRITE_NOT_PERMITTED,
        )?;
        let kind = if with_response {
            WriteType::WithResponse
        } else {
            WriteType::WithoutResponse
        };
        self.run("write", char, within, self.p.write(&c, value, kind))
    }

    fn subscribe(&mut self, char: &BleUuid, within: Duration) -> Result<(), BleError> {
        let c = self.characteristic(
            "subscribe",
            char,
            CharPropFlags::NOTIFY | CharPropFlags::INDICATE,
            att::REQUEST_NOT_SUPPORTED,
        )?;
        self.run("subscribe", char, within, self.p.subscribe(&c))
    }

    fn notification(
        &mut self,
        char: &BleUuid,
        within: Duration,
    ) -> Result<Option<Vec<u8>>, BleError> {
        if let Some(v) = self.held.get_mut(char).and_then(VecDeque::pop_front) {
            self.held_count -= 1;
            return Ok(Some(v));
        }
        outside_runtime()?;
        let BtleplugPeripheral {
            rt,
            notes,
            held,
            held_count,
            ..
        } = self;
        let Some(stream) = notes.as_mut() else {
            return Err(BleError::Unreachable("disconnected".into()));
        };
        let until = Instant::now() + within;
        rt.block_on(async {
            loop {
                match timeout_at(until, stream.next()).await {
                    Err(_) => return Ok(None),
                    Ok(None) => {
                        return Err(BleError::Unreachable(
                            "the notification stream ended".into(),
                        ));
                    }
                    Ok(Some(n)) if n.uuid.as_u128() == char.0 => return Ok(Some(n.value)),
                    Ok(Some(n)) => {
                        if *held_count < HELD_BACKLOG {
                            held.entry(BleUuid(n.uuid.as_u128()))
                                .or_default()
                                .push_back(n.value);
                            *held_count += 1;
                        }
                    }
                }
            }
        })
    }

    fn disconnect(&mut self) {
        let Some(notes) = self.notes.take() else {
            return;
        };
        // The stream's D-Bus match is removed on drop, which wants the runtime's context.
        let _guard = self.rt.enter();
        drop(notes);
        if outside_runtime().is_ok() {
            let _ = self.rt.block_on(timeout(SETUP, self.p.disconnect()));
        } else {
            let p = self.p.clone();
            self.rt.spawn(async move {
                let _ = timeout(SETUP, p.disconnect()).await;
            });
        }
    }
}

impl Drop for BtleplugPeripheral {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// `block_on` panics inside an async runtime: say so as an error instead.
fn outside_runtime() -> Result<(), BleError> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Err(BleError::Protocol(
            "the BLE central is synchronous and was called from inside an async runtime".into(),
        )),
        Err(_) => Ok(()),
    }
}

/// An error's message, with the D-Bus error name when there is one: BlueZ's name (`org.bluez.Error.
/// NotPermitted`) is only in the debug form (`D-Bus error: Not paired (org.bluez.Error.NotPermitted)`).
fn describe(e: &btleplug::Error) -> String {
    let shown = e.to_string();
    let debug = format!("{e:?}");
    let name = debug.find("(org.").and_then(|i| {
        let rest = &debug[i + 1..];
        rest.find(')').map(|j| &rest[..j])
    });
    match name {
        Some(n) if !shown.contains(n) => format!("{shown} ({n})"),
        _ if shown.is_empty() => debug,
        _ => shown,
    }
}

/// The [`BleError`] of a btleplug error during `op` (on `char`, for GATT operations).
pub fn classify(op: &str, char: Option<BleUuid>, e: &btleplug::Error) -> BleError {
    use btleplug::Error as E;
    match e {
        E::TimedOut(d) => return BleError::Timeout(d.as_millis() as u64),
        E::NotConnected | E::DeviceNotFound => return BleError::Unreachable(e.to_string()),
        E::NoAdapterAvailable => return BleError::NoAdapter(e.to_string()),
        E::NoSuchCharacteristic | E::UnexpectedCharacteristic => {
            if let Some(c) = char {
                return BleError::NoSuchCharacteristic(c);
            }
        }
        _ => {}
    }
    let text = describe(e);
    if let Some(c) = char
        && let Some(att) = att_from_text(op, &text)
    {
        return BleError::Refused {
            op: op.into(),
            char: c,
            att,
        };
    }
    let lower = text.to_ascii_lowercase();
    let link_lost = [
        "notconnected",
        "not connected",
        "connection abort",
        "disconnected",
        "unknownobject",
        "does not exist",
    ];
    if op == "connect" || link_lost.iter().any(|t| lower.contains(t)) {
        return BleError::Unreachable(text);
    }
    BleError::Protocol(format!("{op}: {text}"))
}

/// The ATT error named in a BlueZ (or other stack's) error text, if any.
fn att_from_text(op: &str, text: &str) -> Option<String> {
    let t = text.to_ascii_lowercase();
    if let Some(i) = t.find("att error: 0x") {
        let digits = t.get(i + 13..i + 15)?;
        return u8::from_str_radix(digits, 16).ok().map(att::name);
    }
    let has = |s: &str| t.contains(s);
    let name = if has("read not permitted") {
        att::READ_NOT_PERMITTED
    } else if has("write not permitted") {
        att::WRITE_NOT_PERMITTED
    } else if has("not paired") || has("notpaired") {
        att::INSUFFICIENT_AUTHENTICATION
    } else if has("notauthorized") || has("not authorized") || has("authorization") {
        att::INSUFFICIENT_AUTHORIZATION
    } else if has("key size") {
        "encryption-key-size-too-short"
    } else if has("encryption") {
        att::INSUFFICIENT_ENCRYPTION
    } else if has("insufficient resources") {
        "insufficient-resources"
    } else if has("authentication") || has("insufficient") {
        att::INSUFFICIENT_AUTHENTICATION
    } else if has("notpermitted") || has("not permitted") {
        if op == "read" {
            att::READ_NOT_PERMITTED
        } else {
            att::WRITE_NOT_PERMITTED
        }
    } else if has("invalid offset") {
        "invalid-offset"
    } else if has("invalid length") {
        "invalid-attribute-value-length"
    } else if has("org.bluez.error.notsupported") {
        att::REQUEST_NOT_SUPPORTED
    } else {
        return None;
    };
    Some(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other(text: &str) -> btleplug::Error {
        btleplug::Error::Other(Box::new(std::io::Error::other(text.to_string())))
    }

    #[test]
    fn bluez_error_texts_become_att_names() {
        let c = BleUuid::from_u16(0x2a19);
        let refused = |op: &str, text: &str| match classify(op, Some(c), &other(text)) {
            BleError::Refused { att, op: o, char } => {
                assert_eq!((o.as_str(), char), (op, c));
                att
            }
            e => panic!("{text}: {e:?}"),
        };
        assert_eq!(refused("read", "Read not permitted"), "read-not-permitted");
        assert_eq!(
            refused("write", "Write not permitted"),
            "write-not-permitted"
        );
        assert_eq!(
            refused(
                "read",
                "D-Bus error: Not paired (org.bluez.Error.NotPermitted)"
            ),
            "insufficient-authentication"
        );
        assert_eq!(
            refused("write", "org.bluez.Error.NotAuthorized"),
            "insufficient-authorization"
        );
        assert_eq!(
            refused("read", "Insufficient Encryption"),
            "insufficient-encryption"
        );
        assert_eq!(
            refused("read", "Insufficient Authentication"),
            "insufficient-authentication"
        );
        assert_eq!(
            refused("read", "Operation failed with ATT error: 0x0e"),
            "unlikely-error"
        );
        assert_eq!(
            refused("write", "Operation failed with ATT error: 0x80"),
            "att-error-0x80"
        );
        assert_eq!(
            refused("write", "org.bluez.Error.NotPermitted"),
            "write-not-permitted"
        );
    }

    #[test]
    fn link_and_timing_errors_are_not_refusals() {
        let c = Some(BleUuid::from_u16(0x2a19));
        assert!(matches!(
            classify("read", c, &btleplug::Error::NotConnected),
            BleError::Unreachable(_)
        ));
        assert!(matches!(
            classify("read", c, &btleplug::Error::DeviceNotFound),
            BleError::Unreachable(_)
        ));
        assert_eq!(
            classify(
                "read",
                c,
                &btleplug::Error::TimedOut(Duration::from_millis(1500))
            ),
            BleError::Timeout(1500)
        );
        assert_eq!(
            classify("read", c, &btleplug::Error::NoSuchCharacteristic),
            BleError::NoSuchCharacteristic(BleUuid::from_u16(0x2a19))
        );
        assert!(matches!(
            classify("connect", None, &other("le-connection-abort-by-local")),
            BleError::Unreachable(_)
        ));
        assert!(matches!(
            classify("read", c, &other("Software caused connection abort")),
            BleError::Unreachable(_)
        ));
        let e = classify("read", c, &other("something odd"));
        assert_eq!(e, BleError::Protocol("read: something odd".into()));
    }

    #[test]
    fn the_dbus_error_name_is_kept_from_the_debug_form() {
        // As dbus::Error shows itself: the message, and the name only in Debug.
        struct DbusLike;
        impl std::fmt::Debug for DbusLike {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("D-Bus error: Not paired (org.bluez.Error.NotPermitted)")
            }
        }
        impl std::fmt::Display for DbusLike {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("Not paired")
            }
        }
        impl std::error::Error for DbusLike {}
        let e = btleplug::Error::Other(Box::new(DbusLike));
        assert_eq!(describe(&e), "Not paired (org.bluez.Error.NotPermitted)");
        let c = BleUuid::from_u16(0x2a19);
        assert!(matches!(
            classify("write", Some(c), &e),
            BleError::Refused { att, .. } if att == "insufficient-authentication"
        ));
        let plain = btleplug::Error::Other(Box::new(std::io::Error::other("odd")));
        assert_eq!(describe(&plain), "odd");
    }

    #[test]
    fn flags_map_to_properties() {
        let f = CharPropFlags::READ | CharPropFlags::NOTIFY | CharPropFlags::EXTENDED_PROPERTIES;
        assert_eq!(
            properties(f),
            [
                CharProperty::Read,
                CharProperty::Notify,
                CharProperty::ExtendedProperties
            ]
        );
        assert!(properties(CharPropFlags::empty()).is_empty());
    }

    #[test]
    fn a_nameless_device_has_no_name_rather_than_its_bluez_alias() {
        let mut props = PeripheralProperties {
            address: [0xc4, 0x7c, 0x8d, 0x6a, 0x3e, 0x12].into(),
            local_name: Some("C4-7C-8D-6A-3E-12".into()),
            rssi: Some(-60),
            ..PeripheralProperties::default()
        };
        props.manufacturer_data.insert(0x0059, vec![0x01, 0x02]);
        let a = advert(&props);
        assert_eq!(a.address, "C4:7C:8D:6A:3E:12");
        assert_eq!(a.local_name, None);
        assert_eq!(
            a.manufacturer_data.get(&0x0059).map(String::as_str),
            Some("0102")
        );
        props.advertisement_name = Some("Flower care".into());
        assert_eq!(advert(&props).local_name.as_deref(), Some("Flower care"));
    }
}
