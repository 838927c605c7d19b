//! Listening and connection handling: TLS with the certificate the faults call for, outages (refuse or
//! hold silently), dropping live connections when a fault begins, and HTTP/1.1 served by the router.

use crate::api::{ConnInfo, Ctx};
use crate::state::CloudState;
use crate::{HttpsError, app, device, device_privacy, record, thirdparty, update};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use hilt_cloud::flowlog::NewFlow;
use hilt_cloud::{Faults, FlowKind, FlowLog, OutageMode, Pki, Protocol, ServerCert};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// A device that stalls mid-handshake must not pin a task for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct HttpsConfig {
    pub bind: IpAddr,
    /// TLS port; 0 picks an ephemeral one (see [`Https::addr`]).
    pub port: u16,
    /// Also serve the same routes over plain HTTP on this port (0 = ephemeral), for devices that skip TLS.
    pub plain_port: Option<u16>,
}

impl Default for HttpsConfig {
    fn default() -> Self {
        HttpsConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            plain_port: None,
        }
    }
}

/// The running services. Dropping it stops them too; [`Https::shutdown`] also waits for that.
pub struct Https {
    addr: SocketAddr,
    plain_addr: Option<SocketAddr>,
    tasks: JoinSet<()>,
}

struct TlsConfigs {
    trusted: Arc<ServerConfig>,
    untrusted: Arc<ServerConfig>,
}

struct Shared {
    tls: Option<TlsConfigs>,
    router: Router,
    log: FlowLog,
    faults: Faults,
}

impl Https {
    pub async fn start(
        cfg: HttpsConfig,
        pki: Arc<Pki>,
        log: FlowLog,
        faults: Faults,
        state: CloudState,
    ) -> Result<Https, HttpsError> {
        let alpn: &[&[u8]] = &[b"http/1.1"];
        let tls = TlsConfigs {
            trusted: pki.server_config(false, alpn)?,
            untrusted: pki.server_config(true, alpn)?,
        };
        let router = router(Ctx {
            state,
            log: log.clone(),
            faults: faults.clone(),
        });
        let mut tasks = JoinSet::new();
        let (listener, addr) = bind(SocketAddr::new(cfg.bind, cfg.port)).await?;
        let shared = Shared {
            tls: Some(tls),
            router: router.clone(),
            log: log.clone(),
            faults: faults.clone(),
        };
        tasks.spawn(accept_loop(listener, Arc::new(shared)));
        let mut plain_addr = None;
        if let Some(port) = cfg.plain_port {
            let (listener, bound) = bind(SocketAddr::new(cfg.bind, port)).await?;
            plain_addr = Some(bound);
            tasks.spawn(accept_loop(
                listener,
                Arc::new(Shared {
                    tls: None,
                    router,
                    log,
                    faults,
                }),
            ));
        }
        tracing::info!(%addr, ?plain_addr, "mock-cloud HTTPS services listening");
        Ok(Https {
            addr,
            plain_addr,
            tasks,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain_addr
    }

    /// Stop listening and close every connection.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

fn router(ctx: Ctx) -> Router {
    Router::new()
        .merge(update::routes())
        .merge(device::routes())
        .merge(device_privacy::routes())
        .merge(app::routes())
        .merge(thirdparty::routes())
        // The recording layer enforces crate::MAX_BODY before any extractor sees the body.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            record::record,
        ))
        .with_state(ctx)
}

/// Bind, and learn the port when 0 asked for an ephemeral one.
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), HttpsError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| HttpsError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| HttpsError::Bind { addr, source })?;
    Ok((listener, bound))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Dropping this set (when the loop's task is aborted) aborts every connection with it.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    conns.spawn(connection(stream, peer, shared.clone()));
                }
                Err(e) => {
                    // Usually out of file descriptors: back off rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn flow(
    kind: FlowKind,
    tls: bool,
    peer: SocketAddr,
    server_cert: Option<ServerCert>,
    detail: String,
) -> NewFlow {
    NewFlow {
        tls,
        server_cert,
        peer: Some(peer.to_string()),
        detail: Some(detail),
        ..NewFlow::new(Protocol::Http, kind)
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, sh: Arc<Shared>) {
    let fault = sh.faults.current();
    let is_tls = sh.tls.is_some();
    if let Some(mode) = fault.outage_now() {
        let detail = match mode {
            OutageMode::Refuse => "outage: refused",
            OutageMode::Drop => "outage: held silently",
        };
        sh.log.record(
            // Before any handshake: no certificate was presented, so none is tagged.
            flow(FlowKind::ConnectRefused, is_tls, peer, None, detail.into()),
            b"",
        );
        if mode == OutageMode::Drop {
            hold(stream, &sh.faults).await;
        }
        return;
    }
    let _ = stream.set_nodelay(true);
    let Some(tls) = &sh.tls else {
        let info = ConnInfo {
            tls: false,
            server_cert: None,
            peer,
            cert_identity: None,
        };
        return serve(stream, info, false, &sh).await;
    };
    let untrusted = fault.untrusted_cert;
    let (config, label) = if untrusted {
        (tls.untrusted.clone(), ServerCert::Untrusted)
    } else {
        (tls.trusted.clone(), ServerCert::Trusted)
    };
    let failure = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_rustls::TlsAcceptor::from(config).accept(stream),
    )
    .await
    {
        Ok(Ok(stream)) => {
            let cert_identity =
                hilt_cloud::pki::peer_identity(stream.get_ref().1.peer_certificates());
            let info = ConnInfo {
                tls: true,
                server_cert: Some(label),
                peer,
                cert_identity,
            };
            return serve(stream, info, untrusted, &sh).await;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "handshake timed out".to_string(),
    };
    tracing::info!(%peer, server_cert = %label, "TLS handshake failed: {failure}");
    sh.log.record(
        flow(FlowKind::TlsFailed, true, peer, Some(label), failure),
        b"",
    );
}

/// The blackhole outage: keep the socket open and answer nothing until the outage ends, then close.
async fn hold(stream: TcpStream, faults: &Faults) {
    let mut rx = faults.subscribe();
    loop {
        let until = match rx.borrow_and_update().outage {
            Some((OutageMode::Drop, until)) if Instant::now() < until => until,
            _ => break,
        };
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            changed = rx.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    drop(stream);
}

async fn serve<I>(io: I, info: ConnInfo, untrusted: bool, sh: &Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let router = sh.router.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(info.clone());
        router.clone().oneshot(req)
    });
    let mut rx = sh.faults.subscribe();
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            changed = rx.changed() => {
                if changed.is_err() {
                    let _ = conn.as_mut().await;
                    return;
                }
                // A fault that begins must not be bypassed by a kept-alive connection: close it.
                let now = rx.borrow_and_update().clone();
                if now.outage_now().is_some() || (sh.tls.is_some() && now.untrusted_cert != untrusted) {
                    tracing::debug!("closing a live connection: a fault began");
                    return;
                }
            }
        }
    }
}
