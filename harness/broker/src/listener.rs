//! Accept loops: outage faults, the connection limit and the TLS handshake happen here, before MQTT.

use crate::stats::bump;
use crate::{Link, Shared, connect};
use hilt_cloud::{FlowKind, OutageMode, ServerCert};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accept until `stop` turns true (or its sender is gone), then wait for every connection task.
pub async fn accept_loop(
    listener: TcpListener,
    tls: bool,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done {
                    tracing::error!("connection task failed: {e}");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(handle(tcp, peer, tls, shared.clone(), stop.clone()));
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    while let Some(done) = conns.join_next().await {
        if let Err(e) = done {
            tracing::error!("connection task failed: {e}");
        }
    }
}

fn refuse(shared: &Shared, link: &Link, detail: &str) {
    bump(&shared.counters.refused);
    let mut f = link.flow(FlowKind::ConnectRefused);
    f.detail = Some(detail.into());
    shared.log.record(f, &[]);
}

async fn handle(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    let faults = shared.faults.current();
    let untrusted = tls && faults.untrusted_cert;
    // No certificate has been presented yet: refusals before the handshake carry no certificate tag
    // (a refusal under the MITM fault is not the device accepting the untrusted certificate).
    let mut link = Link {
        peer,
        tls,
        server_cert: None,
        cert_cn: None,
    };
    let Ok(_permit) = shared.conn_limit.clone().try_acquire_owned() else {
        refuse(&shared, &link, "connection limit reached");
        return;
    };
    match faults.outage_now() {
        Some(OutageMode::Refuse) => {
            refuse(&shared, &link, "outage");
            return;
        }
        Some(OutageMode::Drop) => {
            refuse(&shared, &link, "outage (blackhole: held open unanswered)");
            hold_until_outage_ends(&shared, stop).await;
            drop(tcp);
            return;
        }
        None => {}
    }
    if !tls {
        connect::serve(tcp, link, shared, stop).await;
        return;
    }
    let Some(configs) = &shared.tls else { return };
    let (cfg, which) = if untrusted {
        (configs.untrusted.clone(), ServerCert::Untrusted)
    } else {
        (configs.trusted.clone(), ServerCert::Trusted)
    };
    link.server_cert = Some(which);
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, TlsAcceptor::from(cfg).accept(tcp)).await {
        Ok(Ok(stream)) => {
            link.cert_cn = hilt_cloud::pki::peer_identity(stream.get_ref().1.peer_certificates());
            connect::serve(stream, link, shared, stop).await;
        }
        Ok(Err(e)) => tls_failed(
            &shared,
            &link,
            format!("{e} (we presented the {which} server certificate)"),
        ),
        Err(_) => tls_failed(
            &shared,
            &link,
            format!("handshake timed out (we presented the {which} server certificate)"),
        ),
    }
}

fn tls_failed(shared: &Shared, link: &Link, detail: String) {
    tracing::info!(peer = %link.peer, "TLS handshake failed: {detail}");
    bump(&shared.counters.tls_failures);
    let mut f = link.flow(FlowKind::TlsFailed);
    f.detail = Some(detail);
    shared.log.record(f, &[]);
}

/// Blackhole: wait until the outage is over (expired or cleared) or the broker stops.
async fn hold_until_outage_ends(shared: &Shared, mut stop: watch::Receiver<bool>) {
    let mut faults = shared.faults.subscribe();
    loop {
        let until = match faults.borrow_and_update().outage {
            Some((OutageMode::Drop, until)) if Instant::now() < until => until,
            _ => return,
        };
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => return,
            changed = faults.changed() => if changed.is_err() { return },
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
        }
    }
}
