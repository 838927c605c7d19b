//! What the board says to the cloud and understands from it: topics, payloads and commands.
//!
//! Telemetry is device health only; presence is personal data (the occupancy of a home, tagged
//! with the owner's name as entered on the device, which a scenario can plant as a canary and look for
//! in captured traffic; before a name is entered, the sample name below).

use serde_json::{Value, json};

/// The name presence reports carry before one is entered on the device: never a real person.
pub const OWNER_NAME: &str = "Alice Example";

/// The board's topics, all under `vrb/<serial>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub cmd: String,
    pub notice: String,
    pub ack: String,
    pub telemetry: String,
    pub presence: String,
    /// Only used by the `undeclared-flow` defect.
    pub wifi_scan: String,
}

impl Topics {
    pub fn new(serial: &str) -> Self {
        let t = |leaf: &str| format!("vrb/{serial}/{leaf}");
        Self {
            cmd: t("cmd"),
            notice: t("notice"),
            ack: t("ack"),
            telemetry: t("telemetry"),
            presence: t("presence"),
            wifi_scan: t("diag/wifi-scan"),
        }
    }
}

/// Device health: `{"serial","uptime_s","temp_c","rssi_dbm"}`. Readings are simulated from the
/// uptime so they vary plausibly without randomness.
pub fn telemetry(serial: &str, uptime_s: u64) -> Vec<u8> {
    let phase = (uptime_s % 600) as f64 / 600.0 * std::f64::consts::TAU;
    let temp_c = ((21.0 + 1.5 * phase.sin()) * 10.0).round() / 10.0;
    let rssi_dbm = -57 + ((uptime_s / 7) % 5) as i64;
    to_bytes(&json!({
        "serial": serial,
        "uptime_s": uptime_s,
        "temp_c": temp_c,
        "rssi_dbm": rssi_dbm,
    }))
}

/// Occupancy of the home (personal data): occupied for 30 s, empty for 30 s, and so on, with the
/// owner's name (the sample name when none was entered).
pub fn presence(uptime_s: u64, at_unix_s: u64, owner: Option<&str>) -> Vec<u8> {
    to_bytes(&json!({
        "occupied": (uptime_s / 30).is_multiple_of(2),
        "user": owner.unwrap_or(OWNER_NAME),
        "at": at_unix_s,
    }))
}

/// Nearby Wi-Fi networks (location-revealing): the `undeclared-flow` defect's payload.
/// BSSIDs are locally administered addresses, so they name no real access point.
pub fn wifi_scan() -> Vec<u8> {
    to_bytes(&json!([
        {"ssid": "HomeNet-5G", "bssid": "02:1a:2b:3c:4d:5e", "rssi": -41},
        {"ssid": "Neighbour-2.4", "bssid": "02:6f:7a:8b:9c:0d", "rssi": -67},
        {"ssid": "CoffeeShop Guest", "bssid": "06:11:22:33:44:55", "rssi": -79},
    ]))
}

/// A command received on `vrb/<serial>/cmd`.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Ping {
        id: Value,
    },
    /// Well-formed but not understood; answered with `ok:false`.
    Unknown {
        id: Value,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("command is not a JSON object: {0}")]
    NotJson(String),
    #[error("command has no string \"cmd\" field")]
    NoName,
    #[error("command has no numeric \"id\" field")]
    NoId,
}

/// Parses `{"cmd":"ping","id":N}` and its kin.
pub fn parse_command(payload: &[u8]) -> Result<Command, CommandError> {
    let v: Value =
        serde_json::from_slice(payload).map_err(|e| CommandError::NotJson(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| CommandError::NotJson("not an object".into()))?;
    let name = obj
        .get("cmd")
        .and_then(Value::as_str)
        .ok_or(CommandError::NoName)?;
    let id = obj
        .get("id")
        .filter(|id| id.is_number())
        .cloned()
        .ok_or(CommandError::NoId)?;
    Ok(match name {
        "ping" => Command::Ping { id },
        other => Command::Unknown {
            id,
            name: other.chars().take(32).collect(),
        },
    })
}

/// The answer published on `vrb/<serial>/ack`.
pub fn ack(cmd: &Command) -> Vec<u8> {
    match cmd {
        Command::Ping { id } => to_bytes(&json!({"id": id, "ok": true})),
        Command::Unknown { id, .. } => {
            to_bytes(&json!({"id": id, "ok": false, "error": "unknown command"}))
        }
    }
}

fn to_bytes(v: &Value) -> Vec<u8> {
    // Serialising a `Value` cannot fail (all keys are strings).
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn topics_are_under_the_serial() {
        let t = Topics::new("VRB-1234");
        assert_eq!(t.cmd, "vrb/VRB-1234/cmd");
        assert_eq!(t.notice, "vrb/VRB-1234/notice");
        assert_eq!(t.ack, "vrb/VRB-1234/ack");
        assert_eq!(t.telemetry, "vrb/VRB-1234/telemetry");
        assert_eq!(t.presence, "vrb/VRB-1234/presence");
        assert_eq!(t.wifi_scan, "vrb/VRB-1234/diag/wifi-scan");
    }

    #[test]
    fn telemetry_has_exactly_the_health_fields() {
        let v = parse(&telemetry("SN1", 125));
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 4, "{v}");
        assert_eq!(v["serial"], "SN1");
        assert_eq!(v["uptime_s"], 125);
        let t = v["temp_c"].as_f64().unwrap();
        assert!((19.0..=23.0).contains(&t), "{t}");
        let r = v["rssi_dbm"].as_i64().unwrap();
        assert!((-60..=-50).contains(&r), "{r}");
        assert!(
            !String::from_utf8(telemetry("SN1", 0))
                .unwrap()
                .contains(OWNER_NAME)
        );
    }

    #[test]
    fn presence_carries_the_owners_name_and_alternates() {
        let a = parse(&presence(0, 1_700_000_000, None));
        assert_eq!(a["user"], "Alice Example");
        assert_eq!(
            parse(&presence(0, 1, Some("Q7x Canary")))["user"],
            "Q7x Canary"
        );
        assert_eq!(a["at"], 1_700_000_000u64);
        assert_eq!(a["occupied"], true);
        assert_eq!(parse(&presence(31, 1, None))["occupied"], false);
        assert_eq!(a.as_object().unwrap().len(), 3);
    }

    #[test]
    fn wifi_scan_lists_ssid_bssid_rssi() {
        let v = parse(&wifi_scan());
        let list = v.as_array().unwrap();
        assert!(!list.is_empty());
        for n in list {
            assert!(n["ssid"].is_string() && n["bssid"].is_string() && n["rssi"].is_i64());
        }
    }

    #[test]
    fn commands_and_acks() {
        let ping = parse_command(br#"{"cmd":"ping","id":7}"#).unwrap();
        assert_eq!(ping, Command::Ping { id: json!(7) });
        assert_eq!(parse(&ack(&ping)), json!({"id": 7, "ok": true}));
        let other = parse_command(br#"{"cmd":"reboot","id":8}"#).unwrap();
        assert_eq!(parse(&ack(&other))["ok"], false);
        assert_eq!(parse(&ack(&other))["id"], 8);
        assert!(matches!(
            parse_command(b"ping"),
            Err(CommandError::NotJson(_))
        ));
        assert!(matches!(
            parse_command(b"[1]"),
            Err(CommandError::NotJson(_))
        ));
        assert_eq!(parse_command(br#"{"id":1}"#), Err(CommandError::NoName));
        assert_eq!(
            parse_command(br#"{"cmd":"ping","id":"x"}"#),
            Err(CommandError::NoId)
        );
    }
}
