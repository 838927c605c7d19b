//! Publish/subscribe through the broker with rumqttc clients: both protocol levels, plain and TLS, all
//! QoS levels, wildcards, retained messages, persistent sessions, wills, and the flow log's attribution.

mod common;

use common::*;
use hilt_cloud::{FlowKind, ServerCert};
use rumqttc::QoS;
use rumqttc::v5::mqttbytes::QoS as QoS5;
use std::time::Duration;

async fn recv4(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<rumqttc::Publish>,
) -> rumqttc::Publish {
    tokio::time::timeout(T, rx.recv())
        .await
        .expect("delivery in time")
        .expect("client alive")
}

#[tokio::test]
async fn plain_v4_all_qos_levels_and_wildcards() {
    let env = start(config()).await;
    let (sub, mut rx) = v4_connect(v4_opts(
        "sub-1",
        env.plain(),
        None,
        Some(("ops", "opspass")),
    ))
    .await
    .unwrap();
    sub.subscribe("devices/+/tele/#", QoS::ExactlyOnce)
        .await
        .unwrap();
    sub.subscribe("#", QoS::AtMostOnce).await.unwrap();
    subscribed(&env, "#").await;
    let (publ, _prx) = v4_connect(v4_opts(
        "pub-1",
        env.plain(),
        None,
        Some(("ops", "opspass")),
    ))
    .await
    .unwrap();
    publ.publish("$SYS/hidden", QoS::AtLeastOnce, false, "not for #")
        .await
        .unwrap();
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        publ.publish(format!("devices/d1/tele/{i}"), qos, false, format!("m{i}"))
            .await
            .unwrap();
    }
    publ.publish("other/x", QoS::AtLeastOnce, false, "last")
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        let p = recv4(&mut rx).await;
        got.push((p.topic.clone(), p.qos, p.payload.to_vec()));
    }
    // One delivery per message per session, at the highest QoS of the matching subscriptions.
    assert_eq!(
        got,
        vec![
            (
                "devices/d1/tele/0".to_string(),
                QoS::AtMostOnce,
                b"m0".to_vec()
            ),
            (
                "devices/d1/tele/1".to_string(),
                QoS::AtLeastOnce,
                b"m1".to_vec()
            ),
            (
                "devices/d1/tele/2".to_string(),
                QoS::ExactlyOnce,
                b"m2".to_vec()
            ),
            ("other/x".to_string(), QoS::AtMostOnce, b"last".to_vec()),
        ]
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "$SYS/hidden must not match #"
    );
    let s = env.broker.stats();
    assert_eq!(s.messages_in, 5);
    assert_eq!(s.messages_out, 4);
    env.broker.shutdown().await;
}

#[tokio::test]
async fn tls_v5_qos2_and_flow_attribution() {
    let env = start(config()).await;
    let tls = client_tls(env.pki.ca_pem(), None);
    let (sub, mut rx) = v5_connect(v5_opts(
        "sub-5",
        env.tls(),
        Some(tls.clone()),
        Some(("ops", "opspass")),
    ))
    .await
    .unwrap();
    sub.subscribe("devices/dev/#", QoS5::ExactlyOnce)
        .await
        .unwrap();
    subscribed(&env, "devices/dev/#").await;
    let (dev, _drx) = v5_connect(v5_opts(
        "dev-client",
        env.tls(),
        Some(tls),
        Some(("dev", "devpass")),
    ))
    .await
    .unwrap();
    for (i, qos) in [QoS5::AtMostOnce, QoS5::AtLeastOnce, QoS5::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        dev.publish(
            format!("devices/dev/tele/{i}"),
            qos,
            false,
            format!("reading {i}"),
        )
        .await
        .unwrap();
    }
    for i in 0..3u8 {
        let p = next_v5_publish(&mut rx, T).await.expect("delivery");
        assert_eq!(&p.topic[..], format!("devices/dev/tele/{i}").as_bytes());
        assert_eq!(p.qos as u8, i);
    }
    let flows: Vec<_> = env
        .log
        .snapshot()
        .into_iter()
        .filter(|f| f.kind == FlowKind::Publish)
        .collect();
    assert_eq!(flows.len(), 3);
    for f in &flows {
        assert_eq!(f.client_id.as_deref(), Some("dev-client"));
        assert_eq!(f.identity.as_deref(), Some("dev"));
        assert!(f.tls);
        assert_eq!(f.server_cert, Some(ServerCert::Trusted));
        assert!(
            f.peer
                .as_deref()
                .is_some_and(|p| p.starts_with("127.0.0.1:"))
        );
    }
    assert_eq!(
        env.log.payload(&flows[2].payload_sha256).as_deref(),
        Some(&b"reading 2"[..])
    );
    let connect = env
        .log
        .snapshot()
        .into_iter()
        .find(|f| f.kind == FlowKind::Connect && f.client_id.as_deref() == Some("dev-client"))
        .unwrap();
    assert!(
        connect
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("mqtt=5") && d.contains("auth=password")),
        "{connect:?}"
    );
    // No password anywhere in the evidence.
    let all = serde_json_free_dump(&env.log.snapshot());
    assert!(!all.contains("devpass") && !all.contains("opspass"));
    env.broker.shutdown().await;
}

fn serde_json_free_dump(flows: &[hilt_cloud::Flow]) -> String {
    flows
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn retained_messages_reach_late_subscribers_of_both_versions() {
    let env = start(config()).await;
    let (publ, _rx) = v4_connect(v4_opts("pub", env.plain(), None, Some(("ops", "opspass"))))
        .await
        .unwrap();
    publ.publish("status/lamp", QoS::AtLeastOnce, true, "on")
        .await
        .unwrap();
    env.wait_flow(|f| f.kind == FlowKind::Publish && f.topic.as_deref() == Some("status/lamp"))
        .await
        .unwrap();
    let (s4, mut rx4) = v4_connect(v4_opts(
        "late4",
        env.plain(),
        None,
        Some(("ops", "opspass")),
    ))
    .await
    .unwrap();
    s4.subscribe("status/+", QoS::AtLeastOnce).await.unwrap();
    let p = recv4(&mut rx4).await;
    assert!(p.retain);
    assert_eq!(&p.payload[..], b"on");
    let (s5, mut rx5) = v5_connect(v5_opts(
        "late5",
        env.plain(),
        None,
        Some(("ops", "opspass")),
    ))
    .await
    .unwrap();
    s5.subscribe("status/#", QoS5::AtMostOnce).await.unwrap();
    let p = next_v5_publish(&mut rx5, T)
        .await
        .expect("retained delivery");
    assert!(p.retain);
    assert_eq!(
        p.qos,
        QoS5::AtMostOnce,
        "downgraded to the subscription's QoS"
    );
    env.broker.shutdown().await;
}

#[tokio::test]
async fn persistent_session_gets_messages_published_while_offline() {
    let env = start(config()).await;
    let mut o = v4_opts("persist", env.plain(), None, Some(("ops", "opspass")));
    o.set_clean_session(false);
    let (sub, _rx) = v4_connect(o.clone()).await.unwrap();
    sub.subscribe("q/#", QoS::AtLeastOnce).await.unwrap();
    subscribed(&env, "q/#").await;
    sub.disconnect().await.unwrap();
    env.wait_flow(|f| f.kind == FlowKind::Disconnect && f.client_id.as_deref() == Some("persist"))
        .await
        .unwrap();
    let (publ, _prx) = v4_connect(v4_opts("pub", env.plain(), None, Some(("ops", "opspass"))))
        .await
        .unwrap();
    publ.publish("q/1", QoS::AtLeastOnce, false, "while away")
        .await
        .unwrap();
    publ.publish("q/2", QoS::AtMostOnce, false, "qos0 is not kept")
        .await
        .unwrap();
    env.wait_flow(|f| f.kind == FlowKind::Publish && f.topic.as_deref() == Some("q/2"))
        .await
        .unwrap();
    let (_sub, mut rx) = v4_connect(o).await.unwrap();
    let p = recv4(&mut rx).await;
    assert_eq!(p.topic, "q/1");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    );
    let connects: Vec<_> = env
        .log
        .snapshot()
        .into_iter()
        .filter(|f| f.kind == FlowKind::Connect && f.client_id.as_deref() == Some("persist"))
        .collect();
    assert!(
        connects[1]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("session_present=true"))
    );
    env.broker.shutdown().await;
}

#[tokio::test]
async fn will_is_published_when_a_client_vanishes() {
    let env = start(config()).await;
    let (sub, mut rx) = v4_connect(v4_opts(
        "watcher",
        env.plain(),
        None,
        Some(("ops", "opspass")),
    ))
    .await
    .unwrap();
    sub.subscribe("devices/dev/status", QoS::AtLeastOnce)
        .await
        .unwrap();
    subscribed(&env, "devices/dev/status").await;
    let mut c = rumqttc::mqttbytes::v4::Connect::new("mortal");
    c.set_login("dev", "devpass");
    c.last_will = Some(rumqttc::mqttbytes::v4::LastWill::new(
        "devices/dev/status",
        "offline",
        QoS::AtLeastOnce,
        false,
    ));
    let mut raw = raw::Raw::connect(env.plain()).await;
    raw.send4(rumqttc::mqttbytes::v4::Packet::Connect(c)).await;
    assert!(matches!(
        raw.recv4(T).await,
        raw::Read::Packet(rumqttc::mqttbytes::v4::Packet::ConnAck(_))
    ));
    drop(raw);
    let p = recv4(&mut rx).await;
    assert_eq!(&p.payload[..], b"offline");
    env.broker.shutdown().await;
}
