//! hilt's mock-cloud MQTT broker: MQTT 3.1.1 and 5 over plain TCP and TLS, built on tokio, tokio-rustls
//! and rumqttc's packet codecs. Every connect, subscribe, publish, denial and disconnect is recorded in
//! the run's [`FlowLog`] as evidence; the run's [`Faults`] make it refuse, blackhole, present an
//! untrusted certificate or answer slowly. The broker's clients are devices: flows of an authenticated
//! client carry [`Actor::Device`](hilt_cloud::Actor), anonymous and refused ones no actor.
//!
//! ```no_run
//! # async fn demo(pki: std::sync::Arc<hilt_cloud::Pki>) -> Result<(), hilt_broker::BrokerError> {
//! use hilt_broker::{Acl, Broker, BrokerConfig, User};
//! let cfg = BrokerConfig {
//!     users: vec![User { username: "dev".into(), password: "pw".into(), acl: Acl::allow_all() }],
//!     ..BrokerConfig::default()
//! };
//! let broker = Broker::start(cfg, pki, hilt_cloud::FlowLog::new(), hilt_cloud::Faults::new()).await?;
//! println!("mqtts://{}", broker.tls_addr().expect("TLS listener"));
//! broker.shutdown().await;
//! # Ok(()) }
//! ```

mod acl;
mod auth;
mod config;
mod connect;
mod listener;
mod router;
mod session;
mod stats;
pub mod topic;
mod v4;
mod v5;
mod wire;

pub use config::{Acl, BrokerConfig, CertIdentity, User};
pub use router::MAX_QUEUED;
pub use stats::Stats;
pub use wire::MAX_PACKET;

use hilt_cloud::flowlog::{Actor, FlowKind, NewFlow, Protocol, ServerCert};
use hilt_cloud::{Faults, FlowLog, Pki, PkiError};
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// Most simultaneous connections; more are accepted and closed at once (and recorded).
pub const MAX_CONNECTIONS: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS setup failed: {0}")]
    Tls(#[from] PkiError),
}

/// The two server configurations the TLS listener switches between (the untrusted one is the MITM fault).
pub(crate) struct TlsConfigs {
    pub trusted: Arc<ServerConfig>,
    pub untrusted: Arc<ServerConfig>,
}

/// State every listener and connection shares.
pub(crate) struct Shared {
    pub cfg: BrokerConfig,
    pub log: FlowLog,
    pub faults: Faults,
    pub router: router::Router,
    pub counters: Arc<stats::Counters>,
    pub next_conn: AtomicU64,
    pub conn_limit: Arc<Semaphore>,
    pub tls: Option<TlsConfigs>,
}

/// What is known about a network connection before MQTT starts.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The server certificate presented on a TLS link; `None` until the handshake is attempted, so a
    /// refusal made before it carries no certificate tag.
    pub server_cert: Option<ServerCert>,
    /// The client certificate's CN, if one was presented.
    pub cert_cn: Option<String>,
}

impl Link {
    /// A flow pre-filled with this link's facts.
    pub fn flow(&self, kind: FlowKind) -> NewFlow {
        NewFlow {
            tls: self.tls,
            server_cert: self.server_cert,
            peer: Some(self.peer.to_string()),
            ..NewFlow::new(Protocol::Mqtt, kind)
        }
    }
}

/// Who made a flow of a client with this authenticated identity: only a login (username or client
/// certificate) says it is a device; an anonymous client could be anyone.
pub(crate) fn actor_of(identity: Option<&str>) -> Option<Actor> {
    identity.map(|_| Actor::Device)
}

/// A running broker. Dropping it stops the listeners and sessions without waiting; prefer
/// [`Broker::shutdown`], which waits for every task to end.
pub struct Broker {
    plain_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind(ip: std::net::IpAddr, port: u16) -> Result<(TcpListener, SocketAddr), BrokerError> {
    let addr = SocketAddr::new(ip, port);
    let l = TcpListener::bind(addr)
        .await
        .map_err(|source| BrokerError::Bind { addr, source })?;
    let local = l
        .local_addr()
        .map_err(|source| BrokerError::Bind { addr, source })?;
    Ok((l, local))
}

impl Broker {
    /// Binds every listener (port 0 = ephemeral) and returns once they accept; errors if a bind fails.
    pub async fn start(
        cfg: BrokerConfig,
        pki: Arc<Pki>,
        log: FlowLog,
        faults: Faults,
    ) -> Result<Broker, BrokerError> {
        let tls = match cfg.tls_port {
            Some(_) => Some(TlsConfigs {
                trusted: pki.server_config(false, &[])?,
                untrusted: pki.server_config(true, &[])?,
            }),
            None => None,
        };
        let plain = match cfg.plain_port {
            Some(p) => Some(bind(cfg.bind, p).await?),
            None => None,
        };
        let secure = match cfg.tls_port {
            Some(p) => Some(bind(cfg.bind, p).await?),
            None => None,
        };
        let counters = Arc::new(stats::Counters::default());
        let shared = Arc::new(Shared {
            cfg,
            log,
            faults,
            router: router::Router::new(counters.clone()),
            counters,
            next_conn: AtomicU64::new(1),
            conn_limit: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            tls,
        });
        let (stop, _) = watch::channel(false);
        let mut tasks = Vec::new();
        let (mut plain_addr, mut tls_addr) = (None, None);
        if let Some((l, addr)) = plain {
            plain_addr = Some(addr);
            tasks.push(tokio::spawn(listener::accept_loop(
                l,
                false,
                shared.clone(),
                stop.subscribe(),
            )));
        }
        if let Some((l, addr)) = secure {
            tls_addr = Some(addr);
            tasks.push(tokio::spawn(listener::accept_loop(
                l,
                true,
                shared.clone(),
                stop.subscribe(),
            )));
        }
        tracing::info!(?plain_addr, ?tls_addr, "MQTT broker listening");
        Ok(Broker {
            plain_addr,
            tls_addr,
            shared,
            stop,
            tasks,
        })
    }

    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain_addr
    }

    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Stops accepting, closes every session (MQTT 5 clients get DISCONNECT 0x8B "server shutting
    /// down"), and returns when all listener and session tasks have ended.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            if let Err(e) = t.await {
                tracing::error!("broker listener task failed: {e}");
            }
        }
        tracing::info!("MQTT broker stopped");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
