//! A usb link made ready to list: the bus to list (the machine's, through nusb, or a simulated one
//! published as a file) and the identity of the unit's device on it. What a listing found is kept for
//! the checks and written as evidence (`usb-STEP.json`).

use std::sync::Arc;

use hilt_link::usb::{FileBus, NusbBus, UsbBus, UsbDevice, UsbError, UsbIdentity};
use hilt_model::Verdict;
use hilt_model::profile::{UsbLink, UsbMatch};
use hilt_model::template::Template;
use serde::Serialize;

/// How to reach one device's descriptors.
#[derive(Clone)]
pub struct UsbPlan {
    pub link: String,
    pub identity: UsbIdentity,
    pub bus: Arc<dyn UsbBus + Send + Sync>,
}

impl std::fmt::Debug for UsbPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsbPlan")
            .field("link", &self.link)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A profile's USB match made concrete: its identity (the serial rendered by `render`) and the bus it
/// is on (a simulated bus's file, or the machine's).
pub fn target(
    m: &UsbMatch,
    bus: Option<&Template>,
    render: impl Fn(&Template) -> Result<String, String>,
) -> Result<(UsbIdentity, Arc<dyn UsbBus + Send + Sync>), String> {
    let identity = UsbIdentity {
        vid: m.vid,
        pid: m.pid,
        serial: m.serial.as_ref().map(&render).transpose()?,
        interface: m.interface,
    };
    let bus: Arc<dyn UsbBus + Send + Sync> = match bus.map(&render).transpose()? {
        Some(path) => Arc::new(FileBus::new(path.into())),
        None => Arc::new(NusbBus),
    };
    Ok((identity, bus))
}

/// How to list usb link `link`, declared as `decl`.
pub fn plan(
    link: &str,
    decl: &UsbLink,
    render: impl Fn(&Template) -> Result<String, String>,
) -> Result<UsbPlan, String> {
    let (identity, bus) = target(&decl.usb, decl.bus.as_ref(), render)?;
    Ok(UsbPlan {
        link: link.to_string(),
        identity,
        bus,
    })
}

impl UsbPlan {
    /// The one device on the bus that is this unit's. Trouble is the bench's, with the verdict it
    /// gives: no bus or no such device attached is NOT_TESTED, a bus that cannot be listed ERROR.
    pub fn find(&self) -> Result<UsbDevice, (Verdict, String)> {
        let devices = self.bus.devices().map_err(|e| match e {
            UsbError::NoBus(_) => (Verdict::NotTested, e.to_string()),
            UsbError::List(_) => (Verdict::Error, e.to_string()),
        })?;
        let hits = self.identity.find(&devices);
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => {
                let seen: Vec<String> = devices.iter().map(UsbDevice::id).collect();
                Err((
                    Verdict::NotTested,
                    format!(
                        "no USB device {} is attached (present: {})",
                        self.identity,
                        if seen.is_empty() {
                            "none".into()
                        } else {
                            seen.join(", ")
                        }
                    ),
                ))
            }
            many => Err((
                Verdict::NotTested,
                format!(
                    "{} matches {} devices ({}); declare the unit's serial number",
                    self.identity,
                    many.len(),
                    many.iter().map(|d| d.id()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
}

/// What a listing found, as evidence and for the checks.
#[derive(Debug, Clone, Serialize)]
pub struct UsbListing {
    pub link: String,
    pub device: UsbDevice,
    /// Each interface's number and kind, as hilt classifies it.
    pub kinds: Vec<(u8, hilt_link::usb::InterfaceKind)>,
}

impl UsbListing {
    pub fn new(link: &str, device: UsbDevice) -> Self {
        let kinds = device.kinds();
        UsbListing {
            link: link.to_string(),
            device,
            kinds,
        }
    }
}

/// An interface kind as profiles and the IXIT write it (`serial`, `debug`, `dfu`, `mass-storage`).
pub fn kind_name(k: hilt_link::usb::InterfaceKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{k:?}"))
}
