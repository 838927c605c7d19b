//! Fault injection: the untrusted (MITM) certificate, outages (refuse and blackhole), slow answers.

mod common;

use common::raw::{Raw, Read, connect5};
use common::*;
use hilt_cloud::{FlowKind, OutageMode, ServerCert};
use rumqttc::v5::mqttbytes::v5::Packet as P5;
use std::time::{Duration, Instant};

#[tokio::test]
async fn untrusted_certificate_fault_fails_tls_then_recovers() {
    let env = start(config()).await;
    let tls = client_tls(env.pki.ca_pem(), None);
    let opts = || {
        v5_opts(
            "dev-tls",
            env.tls(),
            Some(tls.clone()),
            Some(("dev", "devpass")),
        )
    };
    let (_live, mut live_rx) = v5_connect(opts()).await.expect("connects normally");
    env.faults.present_untrusted_cert(true);
    // The live session is closed so the device reconnects and meets the fault.
    let drop_seen = env
        .wait_flow(|f| {
            f.kind == FlowKind::Disconnect
                && f.detail
                    .as_deref()
                    .is_some_and(|d| d.contains("certificate switched"))
        })
        .await;
    assert!(drop_seen.is_some());
    while tokio::time::timeout(T, live_rx.recv())
        .await
        .expect("client notices")
        .is_some()
    {}
    let e = v5_connect(opts())
        .await
        .expect_err("a client trusting only the run CA must refuse the MITM certificate");
    assert!(
        matches!(
            e,
            rumqttc::v5::ConnectionError::Tls(_) | rumqttc::v5::ConnectionError::Io(_)
        ),
        "{e:?}"
    );
    let failed = env
        .wait_flow(|f| f.kind == FlowKind::TlsFailed)
        .await
        .expect("tls-failed recorded");
    assert_eq!(failed.server_cert, Some(ServerCert::Untrusted));
    assert!(
        failed
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("untrusted server certificate") && d.contains("alert")),
        "{failed:?}"
    );
    assert!(env.broker.stats().tls_failures >= 1);
    env.faults.present_untrusted_cert(false);
    let (c, _rx) = v5_connect(opts())
        .await
        .expect("connects again once the fault is cleared");
    c.publish(
        "devices/dev/x",
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        false,
        "ok",
    )
    .await
    .unwrap();
    let p = env
        .wait_flow(|f| f.kind == FlowKind::Publish)
        .await
        .unwrap();
    assert_eq!(p.server_cert, Some(ServerCert::Trusted));
    env.broker.shutdown().await;
}

/// Issue 7: a refusal made before the TLS handshake presented no certificate, so it must not carry the
/// untrusted-certificate tag (the check would read it as the device accepting the MITM).
#[tokio::test]
async fn refusals_before_the_handshake_carry_no_certificate_tag() {
    let env = start(config()).await;
    env.faults.present_untrusted_cert(true);
    env.faults
        .outage(OutageMode::Refuse, Duration::from_secs(30));
    let mut raw = Raw::connect(env.tls()).await;
    assert!(raw.closed_within(T).await, "refused during the outage");
    let refused = env
        .wait_flow(|f| f.kind == FlowKind::ConnectRefused)
        .await
        .expect("refusal recorded");
    assert!(refused.tls, "{refused:?}");
    assert_eq!(refused.server_cert, None, "{refused:?}");
    // The handshake itself, once the outage is over, is tagged with the certificate it presented.
    env.faults.clear();
    env.faults.present_untrusted_cert(true);
    let mut raw = Raw::connect(env.tls()).await;
    raw.send_bytes(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        .await
        .unwrap();
    assert!(raw.closed_within(T).await);
    let failed = env
        .wait_flow(|f| f.kind == FlowKind::TlsFailed)
        .await
        .expect("tls-failed recorded");
    assert_eq!(failed.server_cert, Some(ServerCert::Untrusted));
    env.broker.shutdown().await;
}

#[tokio::test]
async fn outage_refuses_and_closes_live_sessions_then_recovers() {
    let env = start(config()).await;
    let opts = || v4_opts("dev-out", env.plain(), None, Some(("dev", "devpass")));
    let (_c, _rx) = v4_connect(opts()).await.expect("connects");
    env.faults
        .outage(OutageMode::Refuse, Duration::from_millis(1500));
    env.wait_flow(|f| {
        f.kind == FlowKind::Disconnect && f.detail.as_deref() == Some("fault: outage")
    })
    .await
    .expect("live session closed");
    let e = v4_connect(opts())
        .await
        .expect_err("refused during the outage");
    assert!(
        matches!(
            e,
            rumqttc::ConnectionError::Io(_) | rumqttc::ConnectionError::MqttState(_)
        ),
        "{e:?}"
    );
    env.wait_flow(|f| f.kind == FlowKind::ConnectRefused && f.detail.as_deref() == Some("outage"))
        .await
        .expect("recorded");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    v4_connect(opts()).await.expect("connects after the outage");
    env.broker.shutdown().await;
}

#[tokio::test]
async fn blackhole_outage_holds_connections_unanswered_until_it_ends() {
    let env = start(config()).await;
    env.faults
        .outage(OutageMode::Drop, Duration::from_millis(1200));
    let started = Instant::now();
    let mut raw = Raw::connect(env.plain()).await;
    raw.send5(connect5("bh", "dev", "devpass", None, 60)).await;
    assert!(
        matches!(raw.recv5(Duration::from_millis(600)).await, Read::Timeout),
        "no answer during a blackhole"
    );
    assert!(raw.closed_within(T).await, "closed once the outage ends");
    let held = started.elapsed();
    assert!(held >= Duration::from_millis(1000), "held {held:?}");
    assert!(
        env.log
            .snapshot()
            .iter()
            .any(|f| f.kind == FlowKind::ConnectRefused
                && f.detail.as_deref().is_some_and(|d| d.contains("blackhole")))
    );
    // Clearing the fault early releases held connections at once.
    env.faults.outage(OutageMode::Drop, Duration::from_secs(60));
    let mut raw = Raw::connect(env.plain()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cleared = Instant::now();
    env.faults.clear();
    assert!(raw.closed_within(T).await);
    assert!(cleared.elapsed() < Duration::from_secs(5));
    connected_after(&env).await;
    env.broker.shutdown().await;
}

async fn connected_after(env: &Env) {
    let mut raw = Raw::connect(env.plain()).await;
    raw.send5(connect5("after", "dev", "devpass", None, 60))
        .await;
    assert!(matches!(raw.recv5(T).await, Read::Packet(P5::ConnAck(_))));
}

#[tokio::test]
async fn delay_fault_slows_connack_and_puback() {
    let env = start(config()).await;
    env.faults.delay_responses(Duration::from_millis(400));
    let started = Instant::now();
    let mut raw = Raw::connect(env.plain()).await;
    raw.send5(connect5("slow", "dev", "devpass", None, 60))
        .await;
    assert!(matches!(raw.recv5(T).await, Read::Packet(P5::ConnAck(_))));
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "CONNACK after {:?}",
        started.elapsed()
    );
    let mut p = rumqttc::v5::mqttbytes::v5::Publish::new(
        "devices/dev/t",
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        "x",
        None,
    );
    p.pkid = 7;
    let sent = Instant::now();
    raw.send5(P5::Publish(p)).await;
    match raw.recv5(T).await {
        Read::Packet(P5::PubAck(a)) => assert_eq!(a.pkid, 7),
        _ => panic!("no PUBACK"),
    }
    assert!(
        sent.elapsed() >= Duration::from_millis(400),
        "PUBACK after {:?}",
        sent.elapsed()
    );
    env.broker.shutdown().await;
}
