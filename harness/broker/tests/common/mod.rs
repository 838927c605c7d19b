//! Shared helpers for the broker's integration tests: a broker with a standard set of logins, rumqttc
//! clients (3.1.1 and 5, plain and TLS with a ring-only rustls config) and a raw codec-level client.
#![allow(dead_code)]

pub mod raw;

use hilt_broker::{Acl, Broker, BrokerConfig, CertIdentity, User};
use hilt_cloud::pki::ClientCert;
use hilt_cloud::{Faults, Flow, FlowKind, FlowLog, Pki};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub const T: Duration = Duration::from_secs(20);

pub struct Env {
    pub broker: Broker,
    pub pki: Arc<Pki>,
    pub log: FlowLog,
    pub faults: Faults,
}

impl Env {
    pub fn plain(&self) -> SocketAddr {
        self.broker.plain_addr().expect("plain listener")
    }
    pub fn tls(&self) -> SocketAddr {
        self.broker.tls_addr().expect("TLS listener")
    }
    /// Wait (without blocking the runtime) for a flow matching `pred`.
    pub async fn wait_flow(&self, pred: impl Fn(&Flow) -> bool + Send + 'static) -> Option<Flow> {
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || log.wait_for(0, T, pred))
            .await
            .expect("wait task")
    }
}

fn acl(p: &[&str], s: &[&str]) -> Acl {
    Acl {
        publish: p.iter().map(|x| x.to_string()).collect(),
        subscribe: s.iter().map(|x| x.to_string()).collect(),
    }
}

/// `dev`/`devpass`: devices/{identity}/#; `ops`/`opspass`: everything; cert CN `VRB-00000001`:
/// devices/{identity}/#.
pub fn config() -> BrokerConfig {
    BrokerConfig {
        users: vec![
            User {
                username: "dev".into(),
                password: "devpass".into(),
                acl: acl(&["devices/{identity}/#"], &["devices/{identity}/#"]),
            },
            User {
                username: "ops".into(),
                password: "opspass".into(),
                acl: Acl::allow_all(),
            },
        ],
        cert_identities: vec![CertIdentity {
            cn: "VRB-00000001".into(),
            acl: acl(&["devices/{identity}/#"], &["devices/{identity}/#"]),
        }],
        ..BrokerConfig::default()
    }
}

pub async fn start(cfg: BrokerConfig) -> Env {
    let pki = Arc::new(Pki::generate(&["localhost".into(), "127.0.0.1".into()]).expect("pki"));
    let log = FlowLog::new();
    let faults = Faults::new();
    let broker = Broker::start(cfg, pki.clone(), log.clone(), faults.clone())
        .await
        .expect("broker starts");
    Env {
        broker,
        pki,
        log,
        faults,
    }
}

/// A ring-only client config trusting only `ca_pem`, optionally with a client certificate.
pub fn client_tls(ca_pem: &str, cert: Option<&ClientCert>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("CA PEM")).expect("CA");
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let cfg = match cert {
        Some(c) => {
            let chain = CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("cert");
            let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).expect("key");
            b.with_client_auth_cert(chain, key).expect("client auth")
        }
        None => b.with_no_client_auth(),
    };
    Arc::new(cfg)
}

pub fn v4_opts(
    id: &str,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    creds: Option<(&str, &str)>,
) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    if let Some(t) = tls {
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(t),
        ));
    }
    if let Some((u, p)) = creds {
        o.set_credentials(u, p);
    }
    o
}

pub fn v5_opts(
    id: &str,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    creds: Option<(&str, &str)>,
) -> rumqttc::v5::MqttOptions {
    let mut o = rumqttc::v5::MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    if let Some(t) = tls {
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(t),
        ));
    }
    if let Some((u, p)) = creds {
        o.set_credentials(u, p);
    }
    o
}

/// Connect a 3.1.1 client; Ok once CONNACK arrived, with a task driving the event loop and forwarding
/// incoming publishes.
pub async fn v4_connect(
    o: rumqttc::MqttOptions,
) -> Result<
    (
        rumqttc::AsyncClient,
        mpsc::UnboundedReceiver<rumqttc::Publish>,
    ),
    rumqttc::ConnectionError,
> {
    let (client, mut el) = rumqttc::AsyncClient::new(o, 1000);
    loop {
        match tokio::time::timeout(T, el.poll())
            .await
            .expect("CONNACK in time")?
        {
            rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)) => break,
            _ => continue,
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = el.poll().await {
            if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) = ev {
                let _ = tx.send(p);
            }
        }
    });
    Ok((client, rx))
}

pub type V5Incoming = rumqttc::v5::mqttbytes::v5::Packet;

/// Connect an MQTT 5 client; incoming packets (all of them) are forwarded.
pub async fn v5_connect(
    o: rumqttc::v5::MqttOptions,
) -> Result<
    (
        rumqttc::v5::AsyncClient,
        mpsc::UnboundedReceiver<V5Incoming>,
    ),
    rumqttc::v5::ConnectionError,
> {
    let (client, mut el) = rumqttc::v5::AsyncClient::new(o, 1000);
    loop {
        match tokio::time::timeout(T, el.poll())
            .await
            .expect("CONNACK in time")?
        {
            rumqttc::v5::Event::Incoming(V5Incoming::ConnAck(_)) => break,
            _ => continue,
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = el.poll().await {
            if let rumqttc::v5::Event::Incoming(p) = ev {
                let _ = tx.send(p);
            }
        }
    });
    Ok((client, rx))
}

/// The next MQTT 5 PUBLISH (skipping acks), or None on timeout.
pub async fn next_v5_publish(
    rx: &mut mpsc::UnboundedReceiver<V5Incoming>,
    wait: Duration,
) -> Option<rumqttc::v5::mqttbytes::v5::Publish> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(V5Incoming::Publish(p))) => return Some(p),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

/// Wait for the broker to record a `subscribe` of `filter` (so a following publish is routed to it).
pub async fn subscribed(env: &Env, filter: &str) {
    let f = filter.to_string();
    env.wait_flow(move |fl| fl.kind == FlowKind::Subscribe && fl.topic.as_deref() == Some(&f))
        .await
        .expect("subscribe recorded");
}
