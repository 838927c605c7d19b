//! A radio played back from recorded devices: `tests/fixtures/ble/*.json`, each one real device
//! model's advertisement and GATT table with example values. The fake peripheral answers as the
//! model would: properties are honoured (a read of a characteristic without `read` is
//! `read-not-permitted`), recorded refusals come back as the ATT errors the model gives an unpaired
//! central, and tests push notifications and read back what was written.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{
    Advert, BleCentral, BleError, BlePeripheral, BleUuid, CharProperty, GattCharacteristic,
};
use super::{GattService, att};
use crate::Cancel;

/// Notifications kept per connection and characteristic before the oldest are dropped, as a radio
/// stack's queue would: a test that never reads them cannot grow memory.
const NOTIFY_BACKLOG: usize = 1024;

/// One device model as recorded: what it advertises, its GATT table, example values of readable
/// characteristics (hex) and the ATT errors it answers an unpaired central with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedDevice {
    pub advert: Advert,
    #[serde(default)]
    pub services: Vec<GattService>,
    /// Characteristic values by UUID, in hex.
    #[serde(default)]
    pub values: BTreeMap<BleUuid, String>,
    /// ATT error names by characteristic UUID (e.g. `insufficient-authentication`).
    #[serde(default)]
    pub refusals: BTreeMap<BleUuid, String>,
}

impl RecordedDevice {
    /// The characteristic `uuid` (the first one, when several services declare it).
    pub fn characteristic(&self, uuid: &BleUuid) -> Option<&GattCharacteristic> {
        self.services
            .iter()
            .flat_map(|s| &s.characteristics)
            .find(|c| c.uuid == *uuid)
    }

    /// Whether values and refusals name characteristics of the table and values are hex.
    fn check(&self) -> Result<(), String> {
        for (uuid, value) in &self.values {
            if self.characteristic(uuid).is_none() {
                return Err(format!(
                    "values: {uuid} is not a characteristic of the table"
                ));
            }
            hex::decode(value)
                .map_err(|e| format!("values: {uuid}: {value:?} is not hex ({e})"))?;
        }
        for (uuid, att) in &self.refusals {
            if self.characteristic(uuid).is_none() {
                return Err(format!(
                    "refusals: {uuid} is not a characteristic of the table"
                ));
            }
            if att.is_empty() {
                return Err(format!("refusals: {uuid}: empty ATT error name"));
            }
        }
        Ok(())
    }
}

/// A value written to a fake device, as the device received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub char: BleUuid,
    pub value: Vec<u8>,
    pub with_response: bool,
}

/// A radio whose devices are recorded ones. Clones share the devices, so a test keeps one to push
/// notifications while the code under test holds another.
#[derive(Debug, Clone, Default)]
pub struct FakeCentral {
    devices: Arc<Vec<Arc<Device>>>,
    /// `Some(why)`: the machine has no Bluetooth at all.
    no_adapter: Option<String>,
}

#[derive(Debug)]
struct Device {
    recorded: RecordedDevice,
    state: Mutex<DeviceState>,
    /// Signalled whenever a notification is queued or a connection drops.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct DeviceState {
    in_range: bool,
    values: BTreeMap<BleUuid, Vec<u8>>,
    written: Vec<Written>,
    next_link: u64,
    links: BTreeMap<u64, Link>,
}

/// One connection's view: what it subscribed to and the notifications not yet taken.
#[derive(Debug, Default)]
struct Link {
    subscribed: BTreeSet<BleUuid>,
    pending: BTreeMap<BleUuid, VecDeque<Vec<u8>>>,
}

impl Device {
    fn lock(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl FakeCentral {
    pub fn new(devices: Vec<RecordedDevice>) -> Self {
        let devices = devices
            .into_iter()
            .map(|recorded| {
                let values = recorded
                    .values
                    .iter()
                    .filter_map(|(u, h)| Some((*u, hex::decode(h).ok()?)))
                    .collect();
                Arc::new(Device {
                    recorded,
                    state: Mutex::new(DeviceState {
                        in_range: true,
                        values,
                        ..DeviceState::default()
                    }),
                    changed: Condvar::new(),
                })
            })
            .collect();
        FakeCentral {
            devices: Arc::new(devices),
            no_adapter: None,
        }
    }

    /// A machine without Bluetooth, as btleplug reports it where there is no D-Bus system bus.
    pub fn without_adapter() -> Self {
        FakeCentral {
            no_adapter: Some(
                "D-Bus error: Failed to connect to socket /run/dbus/system_bus_socket: No such file or directory".into(),
            ),
            ..FakeCentral::default()
        }
    }

    /// Reads a recorded device (one JSON object) from `path`; the error names the file.
    pub fn recorded(path: &Path) -> Result<RecordedDevice, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let device: RecordedDevice =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        device
            .check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(device)
    }

    /// Sends a notification of `char` from the device at `address` to every connection subscribed
    /// to it; how many received it (0 when nobody subscribed, as on air).
    pub fn notify(&self, address: &str, char: &BleUuid, value: &[u8]) -> usize {
        let Some(device) = self.device(address) else {
            return 0;
        };
        let mut state = device.lock();
        let mut delivered = 0;
        for link in state.links.values_mut() {
            if link.subscribed.contains(char) {
                let queue = link.pending.entry(*char).or_default();
                if queue.len() >= NOTIFY_BACKLOG {
                    queue.pop_front();
                }
                queue.push_back(value.to_vec());
                delivered += 1;
            }
        }
        drop(state);
        device.changed.notify_all();
        delivered
    }

    /// Everything written to the device at `address`, oldest first.
    pub fn written(&self, address: &str) -> Vec<Written> {
        self.device(address)
            .map(|d| d.lock().written.clone())
            .unwrap_or_default()
    }

    /// The current value of `char` on the device at `address` (as recorded, or as last written).
    pub fn value(&self, address: &str, char: &BleUuid) -> Option<Vec<u8>> {
        self.device(address)?.lock().values.get(char).cloned()
    }

    /// Moves the device at `address` out of radio range (or back): out of range it is not heard in
    /// scans and its connections drop. False when there is no such device.
    pub fn set_in_range(&self, address: &str, in_range: bool) -> bool {
        let Some(device) = self.device(address) else {
            return false;
        };
        let mut state = device.lock();
        state.in_range = in_range;
        if !in_range {
            state.links.clear();
        }
        drop(state);
        device.changed.notify_all();
        true
    }

    /// How many connections to the device at `address` are open.
    pub fn connections(&self, address: &str) -> usize {
        self.device(address)
            .map(|d| d.lock().links.len())
            .unwrap_or(0)
    }

    fn device(&self, address: &str) -> Option<Arc<Device>> {
        self.devices
            .iter()
            .find(|d| d.recorded.advert.address.eq_ignore_ascii_case(address))
            .cloned()
    }

    fn adapter(&self) -> Result<(), BleError> {
        match &self.no_adapter {
            Some(why) => Err(BleError::NoAdapter(why.clone())),
            None => Ok(()),
        }
    }
}

impl BleCentral for FakeCentral {
    fn scan(&self, _within: Duration, cancel: &Cancel) -> Result<Vec<Advert>, BleError> {
        self.adapter()?;
        if cancel.is_cancelled() {
            return Err(BleError::Cancelled);
        }
        Ok(self
            .devices
            .iter()
            .filter(|d| d.lock().in_range)
            .map(|d| d.recorded.advert.clone())
            .collect())
    }

    fn connect(&self, address: &str, within: Duration) -> Result<Box<dyn BlePeripheral>, BleError> {
        self.adapter()?;
        let device = self
            .device(address)
            .filter(|d| d.lock().in_range)
            .ok_or_else(|| BleError::NotFound {
                wanted: format!("address {address}"),
                waited_ms: within.as_millis() as u64,
                seen: self
                    .devices
                    .iter()
                    .filter(|d| d.lock().in_range)
                    .map(|d| d.recorded.advert.address.clone())
                    .collect(),
            })?;
        let mut state = device.lock();
        let id = state.next_link;
        state.next_link += 1;
        state.links.insert(id, Link::default());
        drop(state);
        Ok(Box::new(FakePeripheral {
            device,
            link: Some(id),
        }))
    }
}

/// A connection to a recorded device.
#[derive(Debug)]
pub struct FakePeripheral {
    device: Arc<Device>,
    /// `None` once disconnected.
    link: Option<u64>,
}

impl FakePeripheral {
    /// The open link's id, or why there is none.
    fn live(&self) -> Result<u64, BleError> {
        let id = self
            .link
            .ok_or_else(|| BleError::Unreachable("disconnected".into()))?;
        if self.device.lock().links.contains_key(&id) {
            Ok(id)
        } else {
            Err(BleError::Unreachable("the device went out of range".into()))
        }
    }

    /// The characteristic, after checking the link, its property and recorded refusals.
    fn allowed(
        &self,
        op: &str,
        char: &BleUuid,
        needs: &[CharProperty],
        not_permitted: &str,
    ) -> Result<u64, BleError> {
        let id = self.live()?;
        let c = self
            .device
            .recorded
            .characteristic(char)
            .ok_or(BleError::NoSuchCharacteristic(*char))?;
        let refused = |att: &str| BleError::Refused {
            op: op.into(),
            char: *char,
            att: att.into(),
        };
        if !needs.iter().any(|p| c.can(*p)) {
            return Err(refused(not_permitted));
        }
        if let Some(att) = self.device.recorded.refusals.get(char) {
            return Err(refused(att));
        }
        Ok(id)
    }
}

impl BlePeripheral for FakePeripheral {
    fn services(&mut self) -> Result<Vec<GattService>, BleError> {
        self.live()?;
        Ok(self.device.recorded.services.clone())
    }

    fn read(&mut self, char: &BleUuid, _within: Duration) -> Result<Vec<u8>, BleError> {
        self.allowed("read", char, &[CharProperty::Read], att::READ_NOT_PERMITTED)?;
        Ok(self
            .device
            .lock()
            .values
            .get(char)
            .cloned()
            .unwrap_or_default())
    }

    fn write(
        &mut self,
        char: &BleUuid,
        value: &[u8],
        with_response: bool,
        _within: Duration,
    ) -> Result<(), BleError> {
        self.allowed(
            "write",
            char,
            &[CharProperty::Write, CharProperty::WriteWithoutResponse],
            att::WRITE_NOT_PERMITTED,
        )?;
        let mut state = self.device.lock();
        state.values.insert(*char, value.to_vec());
        state.written.push(Written {
            char: *char,
            value: value.to_vec(),
            with_response,
        });
        Ok(())
    }

    fn subscribe(&mut self, char: &BleUuid, _within: Duration) -> Result<(), BleError> {
        // Without notify or indicate there is no client configuration to write.
        let id = self.allowed(
            "subscribe",
            char,
            &[CharProperty::Notify, CharProperty::Indicate],
            att::REQUEST_NOT_SUPPORTED,
        )?;
        if let Some(link) = self.device.lock().links.get_mut(&id) {
            link.subscribed.insert(*char);
        }
        Ok(())
    }

    fn notification(
        &mut self,
        char: &BleUuid,
        within: Duration,
    ) -> Result<Option<Vec<u8>>, BleError> {
        let id = self.live()?;
        let until = Instant::now() + within;
        let mut state = self.device.lock();
        loop {
            let Some(link) = state.links.get_mut(&id) else {
                return Err(BleError::Unreachable("the device went out of range".into()));
            };
            if let Some(v) = link.pending.get_mut(char).and_then(VecDeque::pop_front) {
                return Ok(Some(v));
            }
            // Nothing will come for a characteristic this connection did not subscribe to.
            if !link.subscribed.contains(char) {
                return Ok(None);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            state = self
                .device
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn disconnect(&mut self) {
        if let Some(id) = self.link.take() {
            self.device.lock().links.remove(&id);
            self.device.changed.notify_all();
        }
    }
}

impl Drop for FakePeripheral {
    fn drop(&mut self) {
        self.disconnect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> RecordedDevice {
        serde_json::from_str(
            r#"{
              "advert": {"address": "C0:11:22:33:44:55", "local_name": "t"},
              "services": [{"uuid": "0x180f", "characteristics": [
                {"uuid": "0x2a19", "properties": ["read", "notify"], "descriptors": ["0x2902"]}
              ]}],
              "values": {"0x2a19": "64"}
            }"#,
        )
        .unwrap()
    }

    #[test]
    fn a_table_with_values_of_unknown_characteristics_or_bad_hex_is_refused() {
        assert_eq!(device().check(), Ok(()));
        let mut d = device();
        d.values.insert(BleUuid::from_u16(0x2a00), "00".into());
        assert!(
            d.check()
                .unwrap_err()
                .contains("0x2a00 is not a characteristic")
        );
        let mut d = device();
        d.values.insert(BleUuid::from_u16(0x2a19), "6".into());
        assert!(d.check().unwrap_err().contains("is not hex"));
        let typo = r#"{"advert": {"address": "x"}, "service": []}"#;
        assert!(serde_json::from_str::<RecordedDevice>(typo).is_err());
    }

    #[test]
    fn a_notification_waits_and_a_dropped_link_ends_the_wait() {
        let central = FakeCentral::new(vec![device()]);
        let mut p = central
            .connect("c0:11:22:33:44:55", Duration::from_secs(1))
            .unwrap();
        let battery = BleUuid::from_u16(0x2a19);
        p.subscribe(&battery, Duration::from_secs(1)).unwrap();
        let pusher = central.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(pusher.notify("C0:11:22:33:44:55", &battery, &[0x63]), 1);
            std::thread::sleep(Duration::from_millis(50));
            pusher.set_in_range("C0:11:22:33:44:55", false);
        });
        assert_eq!(
            p.notification(&battery, Duration::from_secs(30)).unwrap(),
            Some(vec![0x63])
        );
        let started = Instant::now();
        let gone = p
            .notification(&battery, Duration::from_secs(30))
            .unwrap_err();
        assert!(matches!(gone, BleError::Unreachable(_)), "{gone}");
        assert!(started.elapsed() < Duration::from_secs(10));
        t.join().unwrap();
    }
}
