//! A serial link exported over the network (ser2net, labgrid's `NetworkSerialPort`) opened as a
//! console's port: RFC 2217, with the profile's baud rate, line settings and flow control set by
//! hilt, or raw TCP, with the line as the exporter set it.

use std::time::Duration;

use hilt_link::serial::{FlowControl, LineSettings, NetPort, Parity, StopBits};
use hilt_link::{LinkError, Port};
use hilt_model::profile::{self, NetProtocol, SerialLink};

/// Connecting and, over RFC 2217, setting the line: a loaded exporter answers within seconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens `address` as `protocol` says, with the line `s` declares.
pub fn open(
    protocol: NetProtocol,
    address: &str,
    s: &SerialLink,
) -> Result<Box<dyn Port>, LinkError> {
    let port = match protocol {
        NetProtocol::RawTcp => NetPort::raw(address, CONNECT_TIMEOUT)?,
        NetProtocol::Rfc2217 => NetPort::rfc2217(address, settings(s), CONNECT_TIMEOUT)?,
    };
    Ok(Box::new(port))
}

/// The profile's line, as RFC 2217 sets it.
fn settings(s: &SerialLink) -> LineSettings {
    LineSettings {
        baud: s.baud,
        data_bits: s.line.data_bits,
        parity: match s.line.parity {
            profile::Parity::None => Parity::None,
            profile::Parity::Even => Parity::Even,
            profile::Parity::Odd => Parity::Odd,
            profile::Parity::Mark => Parity::Mark,
            profile::Parity::Space => Parity::Space,
        },
        stop_bits: match s.line.stop_bits {
            2 => StopBits::Two,
            _ => StopBits::One,
        },
        flow: match s.flow {
            profile::Flow::None => FlowControl::None,
            profile::Flow::XonXoff => FlowControl::XonXoff,
            profile::Flow::RtsCts => FlowControl::RtsCts,
        },
    }
}
