//! Serial links over the network, as ser2net and labgrid's `NetworkSerialPort` export a board's
//! UART: `net = "rfc2217://HOST:PORT"` (telnet with COM-port control, so hilt sets the line) or
//! `net = "tcp://HOST:PORT"` (raw bytes, the line set at the exporter). The line settings are
//! parsed once: `line = "8N1"` (data bits, parity N/E/O/M/S, stop bits) and `flow = "none" |
//! "xonxoff" | "rtscts"`.

use crate::template::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetProtocol {
    Rfc2217,
    RawTcp,
}

/// Where a network serial port is.
#[derive(Debug, Clone)]
pub struct NetSerial {
    pub protocol: NetProtocol,
    /// `HOST:PORT`, may use variables.
    pub address: Template,
}

impl NetSerial {
    /// `rfc2217://…` or `tcp://…`.
    pub fn parse(url: &Template) -> Result<NetSerial, String> {
        let src = url.source();
        let (protocol, rest) = if let Some(r) = src.strip_prefix("rfc2217://") {
            (NetProtocol::Rfc2217, r)
        } else if let Some(r) = src.strip_prefix("tcp://") {
            (NetProtocol::RawTcp, r)
        } else {
            return Err(format!(
                "net {src:?}: give rfc2217://HOST:PORT (telnet COM-port control) or tcp://HOST:PORT (raw)"
            ));
        };
        // `{labgrid.serial}` and the like give HOST:PORT whole; only a literal address is checked here.
        if !rest.contains(':') && !rest.contains('{') {
            return Err(format!("net {src:?}: the address needs a port (HOST:PORT)"));
        }
        Ok(NetSerial {
            protocol,
            address: Template::parse(rest)?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    None,
    Even,
    Odd,
    Mark,
    Space,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSettings {
    pub data_bits: u8,
    pub parity: Parity,
    pub stop_bits: u8,
}

impl Default for LineSettings {
    fn default() -> Self {
        LineSettings {
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
        }
    }
}

impl LineSettings {
    /// `8N1`, `7E1`, `8N2`.
    pub fn parse(s: &str) -> Result<LineSettings, String> {
        let bad = || {
            format!("line {s:?}: write data bits, parity and stop bits, e.g. \"8N1\" or \"7E1\"")
        };
        let b = s.as_bytes();
        if b.len() != 3 {
            return Err(bad());
        }
        let data_bits = match b[0] {
            d @ b'5'..=b'8' => d - b'0',
            _ => return Err(bad()),
        };
        let parity = match b[1].to_ascii_uppercase() {
            b'N' => Parity::None,
            b'E' => Parity::Even,
            b'O' => Parity::Odd,
            b'M' => Parity::Mark,
            b'S' => Parity::Space,
            _ => return Err(bad()),
        };
        let stop_bits = match b[2] {
            b'1' => 1,
            b'2' => 2,
            _ => return Err(bad()),
        };
        Ok(LineSettings {
            data_bits,
            parity,
            stop_bits,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flow {
    #[default]
    None,
    XonXoff,
    RtsCts,
}

impl Flow {
    pub fn parse(s: &str) -> Result<Flow, String> {
        match s {
            "none" => Ok(Flow::None),
            "xonxoff" => Ok(Flow::XonXoff),
            "rtscts" => Ok(Flow::RtsCts),
            other => Err(format!("flow {other:?}: none, xonxoff or rtscts")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lines_and_flows_parse_once_with_clear_errors() {
        let n =
            NetSerial::parse(&Template::parse("rfc2217://{launch.host}:2000").unwrap()).unwrap();
        assert_eq!(n.protocol, NetProtocol::Rfc2217);
        assert_eq!(n.address.source(), "{launch.host}:2000");
        let raw = NetSerial::parse(&Template::parse("tcp://10.0.0.5:3001").unwrap()).unwrap();
        assert_eq!(raw.protocol, NetProtocol::RawTcp);
        for bad in ["telnet://h:1", "rfc2217://host", "h:1"] {
            assert!(
                NetSerial::parse(&Template::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
        assert_eq!(LineSettings::parse("8N1").unwrap(), LineSettings::default());
        let l = LineSettings::parse("7e2").unwrap();
        assert_eq!((l.data_bits, l.parity, l.stop_bits), (7, Parity::Even, 2));
        for bad in ["8N", "9N1", "8X1", "8N3", "8N1 "] {
            assert!(
                LineSettings::parse(bad)
                    .unwrap_err()
                    .contains("e.g. \"8N1\""),
                "{bad}"
            );
        }
        assert_eq!(Flow::parse("rtscts"), Ok(Flow::RtsCts));
        assert!(Flow::parse("hw").is_err());
    }
}
