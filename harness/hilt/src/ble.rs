//! A ble link made ready to survey: the radio (the machine's adapter through btleplug, or a
//! simulated device's radio socket), how to find the device, and the survey itself — what anyone in
//! radio range gets without pairing: the advertisement, the GATT table and every readable value. The
//! survey is kept for the checks and written as evidence (`ble-STEP.json`, secrets masked).

use std::time::Duration;

use hilt_link::ble::{
    Advert, BleCentral, BleError, BleUuid, BtleplugCentral, CharProperty, GattPort, GattService,
    ScanFilter, SocketCentral,
};
use hilt_link::{Cancel, Console, ConsoleOptions, Port};
use hilt_model::Verdict;
use hilt_model::profile::BleLink;
use hilt_model::template::Template;
use serde::Serialize;

/// How to reach one device over BLE.
pub struct BlePlan {
    pub link: String,
    pub central: Box<dyn BleCentral>,
    pub filter: ScanFilter,
    pub scan: Duration,
    /// Per GATT operation.
    pub timeout: Duration,
}

/// The radio a profile names: a simulated radio's socket, or the machine's adapter.
pub fn central(radio: Option<String>) -> Result<Box<dyn BleCentral>, BleError> {
    match radio {
        Some(path) => Ok(Box::new(SocketCentral::new(path))),
        None => Ok(Box::new(BtleplugCentral::new()?)),
    }
}

/// A GATT read or write is answered within a connection interval or a few; seconds is generous.
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// How to survey ble link `link`, declared as `decl`, over `central` (`None`: the radio the
/// declaration names).
pub fn plan(
    link: &str,
    decl: &BleLink,
    render: impl Fn(&Template) -> Result<String, String>,
    central: Option<Box<dyn BleCentral>>,
) -> Result<BlePlan, String> {
    let text = |t: &Option<Template>| t.as_ref().map(&render).transpose();
    let service = decl
        .service
        .as_deref()
        .map(str::parse::<BleUuid>)
        .transpose()?;
    let filter = ScanFilter {
        name: text(&decl.name)?,
        address: text(&decl.address)?,
        service,
    };
    let central = match central {
        Some(c) => c,
        None => self::central(text(&decl.radio)?).map_err(|e| e.to_string())?,
    };
    Ok(BlePlan {
        link: link.to_string(),
        central,
        filter,
        scan: Duration::from_millis(decl.scan_ms),
        timeout: OP_TIMEOUT,
    })
}

/// What reading one characteristic gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadResult {
    /// The value, raw (shown as hex and, when printable, as text in the evidence).
    Value(Vec<u8>),
    /// The device refused: the ATT error.
    Refused(String),
    /// No answer or a broken exchange: not evidence either way.
    Failed(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct CharRead {
    pub service: BleUuid,
    pub char: BleUuid,
    pub result: ReadResult,
}

/// Everything an unpaired central learnt.
#[derive(Debug, Clone, Serialize)]
pub struct BleSurvey {
    pub link: String,
    pub advert: Advert,
    pub services: Vec<GattService>,
    pub reads: Vec<CharRead>,
}

impl BleSurvey {
    /// The number of characteristics that gave a value.
    pub fn readable(&self) -> usize {
        self.reads
            .iter()
            .filter(|r| matches!(r.result, ReadResult::Value(_)))
            .count()
    }
}

/// Trouble on the way, with the verdict it gives: a machine without Bluetooth or a device not in
/// range is NOT_TESTED; a connection that breaks is ERROR; neither is the device's FAIL.
pub fn trouble(e: &BleError) -> Verdict {
    match e {
        BleError::NoAdapter(_) | BleError::NotFound { .. } | BleError::Ambiguous { .. } => {
            Verdict::NotTested
        }
        _ => Verdict::Error,
    }
}

impl BlePlan {
    /// A console over a connection to the device, for binding scripts over BLE (see
    /// [`hilt_link::ble::GattPort`]).
    pub fn open_console(&self, cancel: Cancel) -> Result<Console<Box<dyn Port>>, BleError> {
        let advert = self.central.find(&self.filter, self.scan, &cancel)?;
        let conn = self.central.connect(&advert.address, self.timeout)?;
        let port = GattPort::new(conn, self.timeout);
        Ok(Console::new(
            Box::new(port) as Box<dyn Port>,
            ConsoleOptions {
                cancel: Some(cancel),
                ..ConsoleOptions::default()
            },
        ))
    }

    /// Scan, connect unpaired, list the GATT table and read every readable characteristic.
    pub fn survey(&self, cancel: &Cancel) -> Result<BleSurvey, BleError> {
        let advert = self.central.find(&self.filter, self.scan, cancel)?;
        let mut conn = self.central.connect(&advert.address, self.timeout)?;
        let services = conn.services()?;
        let mut reads = Vec::new();
        for s in &services {
            for c in s
                .characteristics
                .iter()
                .filter(|c| c.can(CharProperty::Read))
            {
                if cancel.is_cancelled() {
                    conn.disconnect();
                    return Err(BleError::Cancelled);
                }
                let result = match conn.read(&c.uuid, self.timeout) {
                    Ok(v) => ReadResult::Value(v),
                    Err(BleError::Refused { att, .. }) => ReadResult::Refused(att),
                    // A dropped connection ends the survey: what is left unread cannot be judged.
                    Err(e @ (BleError::Unreachable(_) | BleError::Cancelled)) => {
                        conn.disconnect();
                        return Err(e);
                    }
                    Err(e) => ReadResult::Failed(e.to_string()),
                };
                reads.push(CharRead {
                    service: s.uuid,
                    char: c.uuid,
                    result,
                });
            }
        }
        conn.disconnect();
        Ok(BleSurvey {
            link: self.link.clone(),
            advert,
            services,
            reads,
        })
    }
}
