//! The mock cloud as a running service: a per-run PKI, the MQTT broker and the HTTPS services on
//! loopback ports (TLS and plain HTTP), one flow log and one fault switch, credentials for each device, a
//! client certificate for the device under test, and the run's update-signing keys.

use hilt_broker::{Acl, Broker, BrokerConfig, User};
use hilt_cloud::{Faults, FlowLog, Pki};
use hilt_https::{CloudState, Https, HttpsConfig};
use hilt_report::keys::KeyPair;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("mock cloud: {0}")]
    Start(String),
    #[error("mock cloud: needs at least one client name (the first is the device under test)")]
    NoDevice,
    #[error("mock cloud: cannot issue the device's client certificate: {0}")]
    ClientCert(#[from] hilt_cloud::PkiError),
    #[error("mock cloud: cannot make an update-signing key: {0}")]
    Keys(#[from] hilt_report::keys::KeyError),
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
    /// The same HTTP services without TLS, for the insecure-channel variants.
    pub http: String,
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
    /// The device under test's client certificate and key files (the key file is 0600).
    client_cert: PathBuf,
    client_key: PathBuf,
    /// Where the vendor's update-verification public key was written.
    update_key: PathBuf,
    update_keys: UpdateKeys,
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

/// The run's update-signing keys: the manufacturer's, which the device is given the public half of,
/// and a foreign one it must not trust. Held in memory only; `KeyPair`'s `Debug` shows key ids only.
#[derive(Debug)]
struct UpdateKeys {
    vendor: KeyPair,
    foreign: KeyPair,
}

impl UpdateKeys {
    /// Fresh per run, so no device can have learnt either key before.
    fn generate() -> Result<UpdateKeys, CloudError> {
        let keys = UpdateKeys {
            vendor: hilt_report::keys::generate()?,
            foreign: hilt_report::keys::generate()?,
        };
        tracing::info!(
            vendor = %keys.vendor.key_id(),
            foreign = %keys.foreign.key_id(),
            "update-signing keys generated"
        );
        Ok(keys)
    }

    /// Write the vendor's public key (all a device needs to verify updates) as `update-vendor.pub.pem`.
    fn write_vendor_public(&self, state: &Path) -> Result<PathBuf, CloudError> {
        let path = state.join("update-vendor.pub.pem");
        let pem = hilt_report::keys::public_pem(&self.vendor.verifying_key());
        write_private(&path, &pem)?;
        Ok(path)
    }
}

/// Issue the device's client certificate (CN = `name`) and write `client-{name}.crt.pem` and
/// `client-{name}.key.pem` into `state`; returns (cert path, key path).
fn write_client_cert(
    pki: &Pki,
    name: &str,
    state: &Path,
) -> Result<(PathBuf, PathBuf), CloudError> {
    let cert = pki.issue_client(name)?;
    let cert_path = state.join(format!("client-{name}.crt.pem"));
    let key_path = state.join(format!("client-{name}.key.pem"));
    write_private(&cert_path, &cert.cert_pem)?;
    write_private(&key_path, &cert.key_pem)?;
    tracing::debug!(device = name, cert = %cert_path.display(), "device client certificate issued");
    Ok((cert_path, key_path))
}

impl CloudSession {
    /// Start the cloud on `bind` with one account per client name (the first is the device under test),
    /// recording into `log`, and write into `state` (which must exist) the CA certificate, each client's
    /// password file, the device under test's client certificate and key, and the vendor's
    /// update-verification public key.
    pub fn start(
        bind: IpAddr,
        client_names: &[String],
        state: &Path,
        log: FlowLog,
    ) -> Result<CloudSession, CloudError> {
        let start = |e: &dyn std::fmt::Display| CloudError::Start(e.to_string());
        let dut = client_names.first().cloned().ok_or(CloudError::NoDevice)?;
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
                    // The insecure-channel variants point the device at plain HTTP.
                    plain_port: Some(0),
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
        let (client_cert, client_key) = write_client_cert(&pki, &dut, state)?;
        // The other units of a fleet get theirs too, so their requests are attributed to them.
        for name in client_names.iter().skip(1) {
            write_client_cert(&pki, name, state)?;
        }
        let update_keys = UpdateKeys::generate()?;
        let update_key = update_keys.write_vendor_public(state)?;
        let port = |a: Option<std::net::SocketAddr>| a.map(|a| a.port()).unwrap_or(0);
        let endpoints = Endpoints {
            mqtt: format!("mqtt://{host}:{}", port(broker.plain_addr())),
            mqtts: format!("mqtts://{host}:{}", port(broker.tls_addr())),
            https: format!("https://{host}:{}", https.addr().port()),
            http: format!("http://{host}:{}", port(https.plain_addr())),
            ca_cert: ca_path.display().to_string(),
            clients,
        };
        tracing::info!(mqtts = %endpoints.mqtts, https = %endpoints.https, http = %endpoints.http, "mock cloud started");
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
            client_cert,
            client_key,
            update_key,
            update_keys,
            broker: Some(broker),
            https: Some(https),
            rt,
        })
    }

    /// Variables for profiles: `cloud.mqtt`, `cloud.mqtts`, `cloud.https`, `cloud.http` (plain base
    /// URL), `cloud.ca_cert`; of the device under test `cloud.username`, `cloud.password_file`,
    /// `cloud.client_cert` and `cloud.client_key` (paths); and `cloud.update_key` (the path of the
    /// vendor's update-verification public key).
    pub fn vars(&self, state: &Path) -> Vec<(String, String)> {
        let path = |p: &Path| p.display().to_string();
        self.vars_of(
            &self.dut_username,
            state,
            path(&self.client_cert),
            path(&self.client_key),
        )
    }

    /// [`CloudSession::vars`] for another unit of the fleet: its own account and client certificate
    /// (written into the same `state` directory the cloud was started with). `None` for a client
    /// name the cloud was not started with.
    pub fn vars_for(&self, name: &str, state: &Path) -> Option<Vec<(String, String)>> {
        if !self.endpoints.clients.iter().any(|c| c.username == name) {
            return None;
        }
        let file = |what: &str| {
            state
                .join(format!("client-{name}.{what}.pem"))
                .display()
                .to_string()
        };
        Some(self.vars_of(name, state, file("crt"), file("key")))
    }

    fn vars_of(
        &self,
        username: &str,
        state: &Path,
        client_cert: String,
        client_key: String,
    ) -> Vec<(String, String)> {
        let path = |p: &Path| p.display().to_string();
        vec![
            ("cloud.mqtt".into(), self.endpoints.mqtt.clone()),
            ("cloud.mqtts".into(), self.endpoints.mqtts.clone()),
            ("cloud.https".into(), self.endpoints.https.clone()),
            ("cloud.http".into(), self.endpoints.http.clone()),
            ("cloud.ca_cert".into(), self.endpoints.ca_cert.clone()),
            ("cloud.username".into(), username.to_string()),
            (
                "cloud.password_file".into(),
                state
                    .join(format!("cloud-{username}.password"))
                    .display()
                    .to_string(),
            ),
            ("cloud.client_cert".into(), client_cert),
            ("cloud.client_key".into(), client_key),
            ("cloud.update_key".into(), path(&self.update_key)),
        ]
    }

    /// The run's update-signing keys: (vendor, foreign). The device trusts the vendor's public key
    /// (`cloud.update_key`); the foreign key signs updates it must refuse. Neither private key is on disk.
    pub fn update_keys(&self) -> (&KeyPair, &KeyPair) {
        (&self.update_keys.vendor, &self.update_keys.foreign)
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
            http: "http://127.0.0.1:4".into(),
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
    fn device_credentials_and_update_key_are_written_and_offered_as_vars() {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        use std::os::unix::fs::PermissionsExt;
        let state = tempfile::tempdir().unwrap();
        let names = ["VRB-9".to_string(), "other".to_string()];
        let c = CloudSession::start(
            std::net::Ipv4Addr::LOCALHOST.into(),
            &names,
            state.path(),
            FlowLog::new(),
        )
        .unwrap();
        let vars: std::collections::BTreeMap<_, _> = c.vars(state.path()).into_iter().collect();
        let port = c
            .https
            .as_ref()
            .and_then(|h| h.plain_addr())
            .unwrap()
            .port();
        assert_eq!(vars["cloud.http"], format!("http://127.0.0.1:{port}"));
        assert_eq!(c.endpoints.http, vars["cloud.http"]);

        let cert = state.path().join("client-VRB-9.crt.pem");
        let key = state.path().join("client-VRB-9.key.pem");
        assert_eq!(vars["cloud.client_cert"], cert.display().to_string());
        assert_eq!(vars["cloud.client_key"], key.display().to_string());
        let der = CertificateDer::from_pem_file(&cert).unwrap();
        assert_eq!(
            hilt_cloud::pki::peer_identity(Some(&[der])).as_deref(),
            Some("VRB-9")
        );
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Every other unit of the fleet has its own account and certificate.
        let other: std::collections::BTreeMap<_, _> = c
            .vars_for("other", state.path())
            .unwrap()
            .into_iter()
            .collect();
        let other_key = state.path().join("client-other.key.pem");
        assert_eq!(other["cloud.username"], "other");
        assert_eq!(other["cloud.client_key"], other_key.display().to_string());
        let other_der =
            CertificateDer::from_pem_file(state.path().join("client-other.crt.pem")).unwrap();
        assert_eq!(
            hilt_cloud::pki::peer_identity(Some(&[other_der])).as_deref(),
            Some("other")
        );
        assert!(c.vars_for("stranger", state.path()).is_none());

        let public = state.path().join("update-vendor.pub.pem");
        assert_eq!(vars["cloud.update_key"], public.display().to_string());
        let loaded = hilt_report::keys::load_public(&public).unwrap();
        let (vendor, foreign) = c.update_keys();
        assert_eq!(loaded, vendor.verifying_key());
        assert_ne!(vendor.key_id(), foreign.key_id());

        // No update-signing private key reaches the disk: the only private keys are the units' TLS keys.
        let vendor_pem = vendor.private_pem().unwrap();
        for entry in std::fs::read_dir(state.path()).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(!text.contains(vendor_pem.as_str()), "{}", path.display());
            if text.contains("PRIVATE KEY") {
                assert!(path == key || path == other_key, "{}", path.display());
            }
        }
        let shown = format!("{:?}", c.update_keys);
        let secret_line = vendor_pem.lines().nth(1).unwrap();
        assert!(shown.contains(&vendor.key_id()) && !shown.contains(secret_line));
        c.shutdown();
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
