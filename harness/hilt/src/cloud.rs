//! The mock cloud as a running service: a per-run PKI, the MQTT broker and the HTTPS services on
//! loopback ports, one flow log and one fault switch, and credentials for each device.

use hilt_broker::{Acl, Broker, BrokerConfig, User};
use hilt_cloud::{Faults, FlowLog, Pki};
use hilt_https::{CloudState, Https, HttpsConfig};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("mock cloud: {0}")]
    Start(String),
    #[error("mock cloud: cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A device account on the mock cloud. Serialized in full (that is what `endpoints.json` is for);
/// its `Debug` never shows the password.
#[derive(Clone, serde::Serialize)]
pub struct Client {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("username", &self.username)
            .field("password", &"‹secret›")
            .finish()
    }
}

/// Where the cloud listens, as written to `endpoints.json`. Its `Debug` shows each client through
/// `Client`'s, so no password.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Endpoints {
    pub mqtt: String,
    pub mqtts: String,
    pub https: String,
    pub ca_cert: String,
    pub clients: Vec<Client>,
}

pub struct CloudSession {
    pub log: FlowLog,
    pub faults: Faults,
    pub state: CloudState,
    pub endpoints: Endpoints,
    /// The device under test's cloud identity and client id (for attributing flows).
    pub dut_username: String,
    pub dut_client_id: String,
    /// Secrets masked in the evidence taken from this cloud (see [`CloudSession::mask`]).
    masked: Mutex<hilt_link::Secrets>,
    broker: Option<Broker>,
    https: Option<Https>,
    rt: tokio::runtime::Runtime,
}

fn random_password() -> Result<String, CloudError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| CloudError::Start(format!("no randomness: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

fn write_private(path: &Path, text: &str) -> Result<(), CloudError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| CloudError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

impl CloudSession {
    /// Start the cloud on `bind` with one account per client name (the first is the device under test),
    /// recording into `log`, and write the CA certificate and each client's password file into `state`
    /// (which must exist).
    pub fn start(
        bind: IpAddr,
        client_names: &[String],
        state: &Path,
        log: FlowLog,
    ) -> Result<CloudSession, CloudError> {
        let start = |e: &dyn std::fmt::Display| CloudError::Start(e.to_string());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hilt-cloud")
            .enable_all()
            .build()
            .map_err(|e| start(&e))?;
        let host = bind.to_string();
        let names = vec![host.clone(), "localhost".to_string()];
        let pki = Arc::new(Pki::generate(&names).map_err(|e| start(&e))?);
        let faults = Faults::new();
        let mut clients = Vec::new();
        for name in client_names {
            clients.push(Client {
                username: name.clone(),
                password: random_password()?,
            });
        }
        let users = clients
            .iter()
            .map(|c| User {
                username: c.username.clone(),
                password: c.password.clone(),
                // The mock cloud observes rather than polices: a device may use any topic, and the
                // flow log shows which ones it did.
                acl: Acl {
                    publish: vec!["#".into()],
                    subscribe: vec!["#".into()],
                },
            })
            .collect();
        let cfg = BrokerConfig {
            bind,
            plain_port: Some(0),
            tls_port: Some(0),
            users,
            ..BrokerConfig::default()
        };
        let broker = rt
            .block_on(Broker::start(cfg, pki.clone(), log.clone(), faults.clone()))
            .map_err(|e| start(&e))?;
        let state_https = CloudState::default();
        let https = rt
            .block_on(Https::start(
                HttpsConfig {
                    bind,
                    port: 0,
                    plain_port: None,
                },
                pki.clone(),
                log.clone(),
                faults.clone(),
                state_https.clone(),
            ))
            .map_err(|e| start(&e))?;
        let ca_path = state.join("cloud-ca.pem");
        write_private(&ca_path, pki.ca_pem())?;
        for c in &clients {
            write_private(
                &state.join(format!("cloud-{}.password", c.username)),
                &c.password,
            )?;
        }
        let port = |a: Option<std::net::SocketAddr>| a.map(|a| a.port()).unwrap_or(0);
        let endpoints = Endpoints {
            mqtt: format!("mqtt://{host}:{}", port(broker.plain_addr())),
            mqtts: format!("mqtts://{host}:{}", port(broker.tls_addr())),
            https: format!("https://{host}:{}", https.addr().port()),
            ca_cert: ca_path.display().to_string(),
            clients,
        };
        tracing::info!(mqtts = %endpoints.mqtts, https = %endpoints.https, "mock cloud started");
        let dut = client_names.first().cloned().unwrap_or_default();
        let mut masked = hilt_link::Secrets::default();
        for c in &endpoints.clients {
            masked.add(
                c.password.as_bytes(),
                &format!("cloud-password-{}", c.username),
            );
        }
        Ok(CloudSession {
            log,
            faults,
            state: state_https,
            endpoints,
            dut_username: dut.clone(),
            dut_client_id: dut,
            masked: Mutex::new(masked),
            broker: Some(broker),
            https: Some(https),
            rt,
        })
    }

    /// Variables for profiles: `cloud.mqtt`, `cloud.mqtts`, `cloud.https`, `cloud.ca_cert`,
    /// `cloud.username` and `cloud.password_file` (of the device under test).
    pub fn vars(&self, state: &Path) -> Vec<(String, String)> {
        vec![
            ("cloud.mqtt".into(), self.endpoints.mqtt.clone()),
            ("cloud.mqtts".into(), self.endpoints.mqtts.clone()),
            ("cloud.https".into(), self.endpoints.https.clone()),
            ("cloud.ca_cert".into(), self.endpoints.ca_cert.clone()),
            ("cloud.username".into(), self.dut_username.clone()),
            (
                "cloud.password_file".into(),
                state
                    .join(format!("cloud-{}.password", self.dut_username))
                    .display()
                    .to_string(),
            ),
        ]
    }

    /// Also mask `secret` (e.g. a unit's password, or a value that gives it away) in the evidence
    /// taken from this cloud from now on. Each client's password is masked from the start.
    pub fn mask_secret(&self, secret: &str, label: &str) {
        let mut masked = self.masked.lock().unwrap_or_else(|p| p.into_inner());
        masked.add(secret.as_bytes(), label);
    }

    /// `data` (a payload, a flow's topic or path) with every secret of [`CloudSession::mask_secret`]
    /// and every client password replaced by `‹secret:LABEL›`, in any ASCII case, as transcripts
    /// mask them.
    pub fn mask(&self, data: &[u8]) -> Vec<u8> {
        let masked = self.masked.lock().unwrap_or_else(|p| p.into_inner());
        masked.mask_bytes(data)
    }

    /// [`CloudSession::mask`] for text.
    pub fn mask_str(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.mask(text.as_bytes())).into_owned()
    }

    /// Stop every listener and session, then the runtime.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(b) = self.broker.take() {
            self.rt.block_on(b.shutdown());
        }
        if let Some(h) = self.https.take() {
            self.rt.block_on(h.shutdown());
        }
    }
}

impl Drop for CloudSession {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_client_password() {
        let client = Client {
            username: "VRB-1".into(),
            password: "Zq8hunter2Xy".into(),
        };
        let endpoints = Endpoints {
            mqtt: "mqtt://127.0.0.1:1".into(),
            mqtts: "mqtts://127.0.0.1:2".into(),
            https: "https://127.0.0.1:3".into(),
            ca_cert: "ca.pem".into(),
            clients: vec![client.clone()],
        };
        for shown in [format!("{client:?}"), format!("{endpoints:#?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(
                shown.contains("VRB-1") && shown.contains("‹secret›"),
                "{shown}"
            );
        }
        // endpoints.json still carries it: that file is how a lab hands the password to a device.
        let json = serde_json::to_string(&endpoints).unwrap();
        assert!(json.contains("Zq8hunter2Xy"));
    }

    #[test]
    fn evidence_is_masked_with_client_passwords_and_registered_secrets() {
        let state = tempfile::tempdir().unwrap();
        let c = CloudSession::start(
            std::net::Ipv4Addr::LOCALHOST.into(),
            &["VRB-1".to_string()],
            state.path(),
            FlowLog::new(),
        )
        .unwrap();
        let cloud_pw = c.endpoints.clients[0].password.clone();
        c.mask_secret("2a7438eda0cd", "unit-secret-1");
        c.mask_secret("2A7438EDA0CD", "again");
        let text = format!(
            "{{\"a\":\"{}\",\"b\":\"2A7438EDA0CD\"}}",
            cloud_pw.to_lowercase()
        );
        assert_eq!(
            c.mask_str(&text),
            "{\"a\":\"‹secret:cloud-password-VRB-1›\",\"b\":\"‹secret:unit-secret-1›\"}"
        );
        c.shutdown();
    }
}
