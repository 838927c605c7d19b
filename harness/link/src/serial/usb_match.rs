//! Finding a device's USB serial port by VID/PID and serial number.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serialport::{SerialPortInfo, SerialPortType};

use crate::LinkError;

/// Which USB serial adapter or device to use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsbMatch {
    pub vid: u16,
    pub pid: u16,
    /// USB serial number, compared exactly; `None` accepts any (but must then be unique).
    #[serde(default)]
    pub serial: Option<String>,
}

impl fmt::Display for UsbMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vid, self.pid)?;
        match &self.serial {
            Some(s) => write!(f, " serial {s:?}"),
            None => Ok(()),
        }
    }
}

/// One USB serial port as enumerated (our own type: serialport's has feature-dependent fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub path: PathBuf,
    pub vid: u16,
    pub pid: u16,
    pub serial: Option<String>,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:04x}:{:04x}",
            self.path.display(),
            self.vid,
            self.pid
        )?;
        if let Some(s) = &self.serial {
            write!(f, " serial {s:?}")?;
        }
        f.write_str(")")
    }
}

/// The path of the one USB serial port matching `m`. Pseudo-terminals are never listed:
/// open those by path.
pub fn find_usb_serial(m: &UsbMatch) -> Result<PathBuf, LinkError> {
    let candidates: Vec<Candidate> = match serialport::available_ports() {
        Ok(ports) => ports.into_iter().filter_map(candidate).collect(),
        Err(e) => {
            return Err(LinkError::UsbNotFound {
                wanted: m.to_string(),
                seen: format!("serial ports could not be listed: {e}"),
            });
        }
    };
    select(&candidates, m)
}

fn candidate(info: SerialPortInfo) -> Option<Candidate> {
    match info.port_type {
        SerialPortType::UsbPort(usb) => Some(Candidate {
            path: PathBuf::from(info.port_name),
            vid: usb.vid,
            pid: usb.pid,
            serial: usb.serial_number,
        }),
        _ => None,
    }
}

pub(crate) fn select(candidates: &[Candidate], m: &UsbMatch) -> Result<PathBuf, LinkError> {
    let hits: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.vid == m.vid && c.pid == m.pid)
        .filter(|c| m.serial.is_none() || c.serial.as_deref().map(str::trim) == m.serial.as_deref())
        .collect();
    match hits.as_slice() {
        [one] => {
            tracing::debug!(wanted = %m, path = %one.path.display(), "found USB serial port");
            Ok(one.path.clone())
        }
        [] => {
            let seen = if candidates.is_empty() {
                "no USB serial ports are present".to_string()
            } else {
                let list: Vec<String> = candidates.iter().map(Candidate::to_string).collect();
                format!("present: {}", list.join(", "))
            };
            Err(LinkError::UsbNotFound {
                wanted: m.to_string(),
                seen,
            })
        }
        many => Err(LinkError::UsbAmbiguous {
            wanted: m.to_string(),
            matches: many.iter().map(|c| c.path.display().to_string()).collect(),
            add: "serial number",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(path: &str, vid: u16, pid: u16, serial: Option<&str>) -> Candidate {
        Candidate {
            path: path.into(),
            vid,
            pid,
            serial: serial.map(String::from),
        }
    }

    fn want(serial: Option<&str>) -> UsbMatch {
        UsbMatch {
            vid: 0x0403,
            pid: 0x6001,
            serial: serial.map(String::from),
        }
    }

    #[test]
    fn selects_by_vid_pid_and_serial() {
        let ports = [
            cand("/dev/ttyUSB0", 0x0403, 0x6001, Some("A1")),
            cand("/dev/ttyUSB1", 0x0403, 0x6001, Some("B2")),
            cand("/dev/ttyACM0", 0x2e8a, 0x000a, None),
        ];
        assert_eq!(
            select(&ports, &want(Some("B2"))).unwrap(),
            PathBuf::from("/dev/ttyUSB1")
        );
        let err = select(&ports, &want(None)).unwrap_err().to_string();
        assert!(
            err.contains("ambiguous") && err.contains("/dev/ttyUSB0"),
            "{err}"
        );
        let err = select(&ports, &want(Some("C3"))).unwrap_err().to_string();
        assert!(err.contains("0403:6001 serial \"C3\""), "{err}");
        assert!(err.contains("/dev/ttyACM0 (2e8a:000a)"), "{err}");
    }

    #[test]
    fn nothing_present_says_so() {
        let err = select(&[], &want(None)).unwrap_err();
        assert!(matches!(err, LinkError::UsbNotFound { .. }));
        assert!(err.to_string().contains("no USB serial ports are present"));
    }
}
