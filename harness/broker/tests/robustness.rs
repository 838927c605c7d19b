//! Hostile and demanding clients: garbage, oversized packets, CONNECT floods, Receive Maximum,
//! keepalive, session takeover, and shutdown with clients connected.

mod common;

use common::raw::{Raw, Read, connect4, connect5, connected5};
use common::*;
use hilt_cloud::FlowKind;
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::{self, Packet as P5};
use std::time::{Duration, Instant};

/// The broker still serves a well-behaved client.
async fn still_serving(env: &Env) {
    let (c, _rx) = v4_connect(v4_opts(
        "healthy",
        env.plain(),
        None,
        Some(("ops", "opspass")),
    ))
    .await
    .expect("broker still serves");
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn garbage_and_oversized_packets_close_only_that_connection() {
    let env = start(config()).await;
    let mut g = Raw::connect(env.plain()).await;
    g.send_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(g.closed_within(T).await);
    let mut g = Raw::connect(env.plain()).await;
    g.send_bytes(&[0x10, 0xff, 0xff, 0xff, 0xff, 0x01])
        .await
        .unwrap();
    assert!(g.closed_within(T).await, "malformed remaining length");
    let mut g = Raw::connect(env.plain()).await;
    g.send_bytes(&[0x10, 0x80, 0x80, 0x80, 0x01]).await.unwrap();
    assert!(
        g.closed_within(T).await,
        "a 2 MiB CONNECT is refused from its header"
    );
    // After CONNECT: an oversized PUBLISH gets DISCONNECT 0x95 (MQTT 5) and the connection closes.
    let mut c = connected5(env.plain(), "big", "ops", "opspass", None).await;
    c.send_bytes(&[0x30, 0x80, 0x80, 0x80, 0x01, 0, 1, b'a'])
        .await
        .unwrap();
    match c.recv5(T).await {
        Read::Packet(P5::Disconnect(d)) => {
            assert_eq!(d.reason_code, v5::DisconnectReasonCode::PacketTooLarge)
        }
        _ => panic!("expected DISCONNECT"),
    }
    assert!(c.closed_within(T).await);
    // A malformed packet mid-session (PUBLISH with packet id 0 at QoS 1).
    let mut c = connected5(env.plain(), "bad", "ops", "opspass", None).await;
    c.send_bytes(&[0x32, 0x06, 0, 1, b'a', 0, 0, 0])
        .await
        .unwrap();
    assert!(c.closed_within(T).await);
    // A second CONNECT on a live connection is a protocol error.
    let mut c = connected5(env.plain(), "twice", "ops", "opspass", None).await;
    c.send5(connect5("twice", "ops", "opspass", None, 60)).await;
    match c.recv5(T).await {
        Read::Packet(P5::Disconnect(d)) => {
            assert_eq!(d.reason_code, v5::DisconnectReasonCode::ProtocolError)
        }
        _ => panic!("expected DISCONNECT protocol error"),
    }
    assert!(c.closed_within(T).await);
    // TLS listener: plaintext bytes fail the handshake.
    let mut t = Raw::connect(env.tls()).await;
    t.send_bytes(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        .await
        .unwrap();
    assert!(t.closed_within(T).await);
    still_serving(&env).await;
    let log = env.log.snapshot();
    assert_eq!(
        log.iter()
            .filter(|f| f.kind == FlowKind::ConnectRefused)
            .count(),
        3,
        "{log:#?}"
    );
    assert!(log.iter().any(|f| f.kind == FlowKind::Disconnect
        && f.detail.as_deref().is_some_and(|d| d.contains("exceeds"))));
    assert!(log.iter().any(|f| f.kind == FlowKind::TlsFailed));
    env.broker.shutdown().await;
}

#[tokio::test]
async fn connect_flood_is_survived() {
    let env = start(config()).await;
    let addr = env.plain();
    let mut tasks = Vec::new();
    for i in 0..300 {
        tasks.push(tokio::spawn(async move {
            let mut r = Raw::connect(addr).await;
            match i % 3 {
                0 => {
                    r.send4(connect4(&format!("flood-{i}"), "dev", "devpass", 60))
                        .await
                }
                1 => {
                    r.send4(connect4(&format!("flood-{i}"), "dev", "wrong", 60))
                        .await
                }
                _ => {
                    let _ = r.send_bytes(&[0x10, 0x7f, 0x00]).await;
                    return; // a truncated CONNECT, abandoned
                }
            }
            let _ = r.recv4(T).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    still_serving(&env).await;
    let s = env.broker.stats();
    assert!(s.connections >= 100, "{s:?}");
    assert!(s.refused >= 100, "{s:?}");
    env.broker.shutdown().await;
}

#[tokio::test]
async fn receive_maximum_bounds_unacknowledged_deliveries() {
    let env = start(config()).await;
    let mut sub = connected5(env.plain(), "slow-sub", "ops", "opspass", Some(5)).await;
    sub.send5(P5::Subscribe(v5::Subscribe::new(
        v5::Filter::new("rm/#", QoS5::AtLeastOnce),
        None,
    )))
    .await;
    assert!(matches!(sub.recv5(T).await, Read::Packet(P5::SubAck(_))));
    let (publ, _rx) = v5_connect(v5_opts(
        "fast-pub",
        env.plain(),
        None,
        Some(("ops", "opspass")),
    ))
    .await
    .unwrap();
    for i in 0..20 {
        publ.publish(format!("rm/{i}"), QoS5::AtLeastOnce, false, vec![i as u8])
            .await
            .unwrap();
    }
    let mut unacked = Vec::new();
    for _ in 0..5 {
        match sub.recv5(T).await {
            Read::Packet(P5::Publish(p)) => unacked.push(p.pkid),
            _ => panic!("expected 5 deliveries"),
        }
    }
    env.wait_flow(|f| f.kind == FlowKind::Publish && f.topic.as_deref() == Some("rm/19"))
        .await
        .unwrap();
    assert!(
        matches!(sub.recv5(Duration::from_millis(500)).await, Read::Timeout),
        "a 6th delivery before any PUBACK"
    );
    // Each PUBACK opens the window by exactly one.
    let mut received = 5;
    while received < 20 {
        let pkid = unacked.remove(0);
        sub.send5(P5::PubAck(v5::PubAck::new(pkid, None))).await;
        match sub.recv5(T).await {
            Read::Packet(P5::Publish(p)) => {
                assert_eq!(p.payload[0] as usize, received, "in order");
                unacked.push(p.pkid);
                received += 1;
            }
            _ => panic!("expected the next delivery"),
        }
        assert!(unacked.len() <= 5);
    }
    assert_eq!(env.broker.stats().dropped, 0);
    env.broker.shutdown().await;
}

#[tokio::test]
async fn keepalive_silence_ends_the_session() {
    let env = start(config()).await;
    let mut r = Raw::connect(env.plain()).await;
    r.send5(connect5("quiet", "ops", "opspass", None, 1)).await;
    assert!(matches!(r.recv5(T).await, Read::Packet(P5::ConnAck(_))));
    let t0 = Instant::now();
    match r.recv5(Duration::from_secs(10)).await {
        Read::Packet(P5::Disconnect(d)) => {
            assert_eq!(d.reason_code, v5::DisconnectReasonCode::KeepAliveTimeout)
        }
        _ => panic!("expected DISCONNECT keepalive timeout"),
    }
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(1300) && waited < Duration::from_secs(8),
        "closed after {waited:?}"
    );
    // A client that pings stays connected past 1.5 x keepalive.
    let mut r = Raw::connect(env.plain()).await;
    r.send5(connect5("pinger", "ops", "opspass", None, 1)).await;
    assert!(matches!(r.recv5(T).await, Read::Packet(P5::ConnAck(_))));
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        r.send5(P5::PingReq(v5::PingReq)).await;
        assert!(matches!(r.recv5(T).await, Read::Packet(P5::PingResp(_))));
    }
    env.broker.shutdown().await;
}

#[tokio::test]
async fn a_second_connection_takes_the_session_over() {
    let env = start(config()).await;
    let mut first = connected5(env.plain(), "twin", "ops", "opspass", None).await;
    let _second = connected5(env.plain(), "twin", "ops", "opspass", None).await;
    match first.recv5(T).await {
        Read::Packet(P5::Disconnect(d)) => {
            assert_eq!(d.reason_code, v5::DisconnectReasonCode::SessionTakenOver)
        }
        _ => panic!("expected DISCONNECT session taken over"),
    }
    assert!(first.closed_within(T).await);
    env.broker.shutdown().await;
}

#[tokio::test]
async fn shutdown_with_clients_connected_is_clean_and_bounded() {
    let env = start(config()).await;
    let mut v5c = connected5(env.plain(), "s5", "ops", "opspass", None).await;
    let (_c4, mut rx4) = v4_connect(v4_opts(
        "s4",
        env.tls(),
        Some(client_tls(env.pki.ca_pem(), None)),
        Some(("ops", "opspass")),
    ))
    .await
    .unwrap();
    let mut idle = Raw::connect(env.plain()).await; // never sends CONNECT
    let (plain, tls) = (env.plain(), env.tls());
    let t0 = Instant::now();
    env.broker.shutdown().await;
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        t0.elapsed()
    );
    match v5c.recv5(T).await {
        Read::Packet(P5::Disconnect(d)) => {
            assert_eq!(d.reason_code, v5::DisconnectReasonCode::ServerShuttingDown)
        }
        _ => panic!("expected DISCONNECT server shutting down"),
    }
    assert!(idle.closed_within(T).await);
    assert!(
        tokio::time::timeout(T, rx4.recv())
            .await
            .expect("v4 client notices")
            .is_none()
    );
    assert!(
        tokio::net::TcpStream::connect(plain).await.is_err(),
        "plain listener closed"
    );
    assert!(
        tokio::net::TcpStream::connect(tls).await.is_err(),
        "TLS listener closed"
    );
    let log = env.log.snapshot();
    assert_eq!(
        log.iter()
            .filter(|f| f.kind == FlowKind::Disconnect
                && f.detail.as_deref() == Some("broker shutdown"))
            .count(),
        2
    );
}
