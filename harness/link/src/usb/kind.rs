//! What an interface is for, from its class triple and the device's identity: a console (CDC ACM, a
//! vendor UART bridge), a debug port (CMSIS-DAP, J-Link, ESP USB-JTAG), a firmware loader (DFU), a
//! shell (ADB), storage, input (HID). The class triples are the USB-IF's; the vendor ones are what
//! those vendors' devices report.

use serde::Serialize;

use super::{UsbDevice, UsbInterface};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InterfaceKind {
    /// CDC ACM control or data, or a vendor USB-UART bridge (FTDI, Silicon Labs, WCH, Prolific).
    Serial,
    /// A debug port: CMSIS-DAP, SEGGER J-Link, ST-Link, Espressif's USB Serial/JTAG.
    Debug,
    /// Device Firmware Upgrade.
    Dfu,
    /// Android Debug Bridge.
    Adb,
    MassStorage,
    Hid,
    Audio,
    Video,
    Network,
    /// Vendor-specific, not otherwise known.
    Vendor,
    Other,
}

impl InterfaceKind {
    pub fn of(device: &UsbDevice, i: &UsbInterface) -> InterfaceKind {
        let name = i
            .name
            .as_deref()
            .or(device.product.as_deref())
            .unwrap_or("")
            .to_ascii_lowercase();
        match (i.class, i.subclass, i.protocol) {
            (0x02, 0x02, _) | (0x0a, _, _) => InterfaceKind::Serial,
            (0xfe, 0x01, _) => InterfaceKind::Dfu,
            (0xff, 0x42, 0x01) => InterfaceKind::Adb,
            (0x08, _, _) => InterfaceKind::MassStorage,
            (0x03, _, _) if name.contains("cmsis-dap") => InterfaceKind::Debug,
            (0x03, _, _) => InterfaceKind::Hid,
            (0x01, _, _) => InterfaceKind::Audio,
            (0x0e, _, _) => InterfaceKind::Video,
            (0x02, 0x06 | 0x0d, _) | (0xe0, _, _) => InterfaceKind::Network,
            (0xff, _, _) => vendor(device, i, &name),
            _ => InterfaceKind::Other,
        }
    }

    /// Whether this kind gives access to the device's internals (memory, firmware, a shell).
    pub fn is_debug_or_loader(self) -> bool {
        matches!(
            self,
            InterfaceKind::Debug | InterfaceKind::Dfu | InterfaceKind::Adb
        )
    }
}

/// Vendor USB-UART bridges whose vendor interface is their serial port.
const UART_BRIDGES: &[u16] = &[0x0403, 0x10c4, 0x1a86, 0x067b];

fn vendor(device: &UsbDevice, i: &UsbInterface, name: &str) -> InterfaceKind {
    if name.contains("cmsis-dap") || name.contains("j-link") || name.contains("st-link") {
        return InterfaceKind::Debug;
    }
    match (device.vid, i.subclass, i.protocol) {
        // Espressif's USB Serial/JTAG: the JTAG bridge is vendor class 0xFF/0xFF/0x01.
        (0x303a, 0xff, 0x01) => InterfaceKind::Debug,
        // SEGGER J-Link's own interface.
        (0x1366, 0xff, 0xff) => InterfaceKind::Debug,
        (vid, _, _) if UART_BRIDGES.contains(&vid) => InterfaceKind::Serial,
        _ => InterfaceKind::Vendor,
    }
}
