//! The board's BLE radio, simulated: a peripheral reached over a Unix stream socket (`--ble PATH`)
//! speaking `hilt_link::ble::wire` (JSON lines; each connection is one BLE connection from an
//! unpaired central, since this radio offers no pairing).
//!
//! It advertises the model name, the battery service and the provisioning service, and serves GAP,
//! GATT, Device Information, Battery and provisioning. What identifies the unit or its owner (the
//! serial number, the firmware revision, the owner's name, the Wi-Fi SSID) needs a paired central,
//! so every central is refused it. Named defects each break one of these properties:
//! `ble-leaks-serial`, `ble-advertises-owner` and `ble-extra-service`.

mod facts;
mod frame;
mod gatt;
mod server;

pub use facts::{DeviceFacts, SharedFacts};
pub use frame::{Frame, LineFramer};
pub use gatt::{
    BATTERY_LEVEL, FACTORY_TEST_CHAR, FACTORY_TEST_SERVICE, OWNER_NAME_CHAR, PROVISIONING_SERVICE,
    Peripheral, WIFI_SSID_CHAR,
};
pub use server::{BleRadio, MAX_CONNECTIONS, NOTIFY_EVERY, POLL};
