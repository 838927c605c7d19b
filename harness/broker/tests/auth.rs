//! Logins (password, client certificate), refusals with the proper CONNACK codes, topic ACLs, and the
//! actor flows are attributed to.

mod common;

use common::*;
use hilt_broker::BrokerConfig;
use hilt_cloud::{Actor, FlowKind};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::{PubAckReason, SubscribeReasonCode as Sub5};
use rumqttc::{ConnectReturnCode, QoS, SubscribeReasonCode};

#[tokio::test]
async fn bad_credentials_get_the_right_connack_in_both_versions() {
    let env = start(config()).await;
    let e = v4_connect(v4_opts("x4", env.plain(), None, Some(("dev", "wrong"))))
        .await
        .expect_err("refused");
    assert!(
        matches!(
            e,
            rumqttc::ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword)
        ),
        "{e:?}"
    );
    let e = v4_connect(v4_opts("anon4", env.plain(), None, None))
        .await
        .expect_err("refused");
    assert!(
        matches!(
            e,
            rumqttc::ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized)
        ),
        "{e:?}"
    );
    let tls = client_tls(env.pki.ca_pem(), None);
    let e = v5_connect(v5_opts(
        "x5",
        env.tls(),
        Some(tls.clone()),
        Some(("nobody", "devpass")),
    ))
    .await
    .expect_err("refused");
    assert!(
        matches!(
            e,
            rumqttc::v5::ConnectionError::ConnectionRefused(
                rumqttc::v5::mqttbytes::v5::ConnectReturnCode::BadUserNamePassword
            )
        ),
        "{e:?}"
    );
    let e = v5_connect(v5_opts("anon5", env.tls(), Some(tls), None))
        .await
        .expect_err("refused");
    assert!(
        matches!(
            e,
            rumqttc::v5::ConnectionError::ConnectionRefused(
                rumqttc::v5::mqttbytes::v5::ConnectReturnCode::NotAuthorized
            )
        ),
        "{e:?}"
    );
    let refused: Vec<_> = env
        .log
        .snapshot()
        .into_iter()
        .filter(|f| f.kind == FlowKind::ConnectRefused)
        .collect();
    assert_eq!(refused.len(), 4);
    assert!(
        refused[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("bad username or password") && !d.contains("wrong"))
    );
    assert_eq!(refused[2].client_id.as_deref(), Some("x5"));
    assert!(refused[2].tls);
    assert_eq!(env.broker.stats().refused, 4);
    env.broker.shutdown().await;
}

#[tokio::test]
async fn acl_denies_publish_and_subscribe_and_records_it() {
    let env = start(config()).await;
    let (watch, mut wrx) = v4_connect(v4_opts(
        "watch",
        env.plain(),
        None,
        Some(("ops", "opspass")),
    ))
    .await
    .unwrap();
    watch
        .subscribe("devices/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    subscribed(&env, "devices/#").await;
    let (dev, mut drx) = v5_connect(v5_opts(
        "dev-5",
        env.plain(),
        None,
        Some(("dev", "devpass")),
    ))
    .await
    .unwrap();
    dev.publish("devices/other/tele", QoS5::AtLeastOnce, false, "spoof")
        .await
        .unwrap();
    let ack = loop {
        match tokio::time::timeout(T, drx.recv()).await.unwrap().unwrap() {
            V5Incoming::PubAck(a) => break a,
            _ => continue,
        }
    };
    assert_eq!(ack.reason, PubAckReason::NotAuthorized);
    dev.subscribe("devices/#", QoS5::AtLeastOnce).await.unwrap();
    let suback = loop {
        match tokio::time::timeout(T, drx.recv()).await.unwrap().unwrap() {
            V5Incoming::SubAck(s) => break s,
            _ => continue,
        }
    };
    assert_eq!(suback.return_codes, vec![Sub5::NotAuthorized]);
    // Allowed traffic still flows; the spoofed message never reached the watcher.
    dev.publish("devices/dev/tele", QoS5::AtLeastOnce, false, "real")
        .await
        .unwrap();
    let p = tokio::time::timeout(T, wrx.recv()).await.unwrap().unwrap();
    assert_eq!(&p.payload[..], b"real");
    let denied: Vec<_> = env
        .log
        .snapshot()
        .into_iter()
        .filter(|f| f.kind == FlowKind::Denied)
        .collect();
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert_eq!(denied[0].topic.as_deref(), Some("devices/other/tele"));
    assert_eq!(denied[0].identity.as_deref(), Some("dev"));
    assert_eq!(
        env.log.payload(&denied[0].payload_sha256).as_deref(),
        Some(&b"spoof"[..])
    );
    assert_eq!(denied[1].topic.as_deref(), Some("devices/#"));
    // 3.1.1: a denied subscription gets SUBACK failure 0x80.
    let mut raw = raw::Raw::connect(env.plain()).await;
    raw.send4(raw::connect4("dev-4", "dev", "devpass", 60))
        .await;
    assert!(matches!(
        raw.recv4(T).await,
        raw::Read::Packet(rumqttc::Packet::ConnAck(_))
    ));
    raw.send4(rumqttc::Packet::Subscribe(rumqttc::Subscribe::new(
        "devices/other/#",
        QoS::AtLeastOnce,
    )))
    .await;
    match raw.recv4(T).await {
        raw::Read::Packet(rumqttc::Packet::SubAck(s)) => {
            assert_eq!(s.return_codes, vec![SubscribeReasonCode::Failure])
        }
        _ => panic!("no SUBACK"),
    }
    assert_eq!(env.broker.stats().denied, 3);
    env.broker.shutdown().await;
}

#[tokio::test]
async fn client_certificate_login_over_tls() {
    let env = start(config()).await;
    let good = env.pki.issue_client("VRB-00000001").unwrap();
    let tls = client_tls(env.pki.ca_pem(), Some(&good));
    let (c, _rx) = v4_connect(v4_opts("vrb-1", env.tls(), Some(tls), None))
        .await
        .expect("certificate login");
    c.publish(
        "devices/VRB-00000001/tele",
        QoS::AtLeastOnce,
        false,
        "hello",
    )
    .await
    .unwrap();
    let f = env
        .wait_flow(|f| f.kind == FlowKind::Publish)
        .await
        .unwrap();
    assert_eq!(f.identity.as_deref(), Some("VRB-00000001"));
    assert_eq!(f.client_id.as_deref(), Some("vrb-1"));
    let connect = env
        .log
        .snapshot()
        .into_iter()
        .find(|f| f.kind == FlowKind::Connect)
        .unwrap();
    assert!(
        connect
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("auth=certificate"))
    );
    // A valid certificate for an identity the broker does not know is not authorised.
    let other = env.pki.issue_client("VRB-99999999").unwrap();
    let tls = client_tls(env.pki.ca_pem(), Some(&other));
    let e = v5_connect(v5_opts("vrb-9", env.tls(), Some(tls), None))
        .await
        .expect_err("refused");
    assert!(
        matches!(
            e,
            rumqttc::v5::ConnectionError::ConnectionRefused(
                rumqttc::v5::mqttbytes::v5::ConnectReturnCode::NotAuthorized
            )
        ),
        "{e:?}"
    );
    env.broker.shutdown().await;
}

#[tokio::test]
async fn flows_say_an_authenticated_client_is_the_device_and_anyone_else_nobody() {
    let env = start(BrokerConfig {
        allow_anonymous: true,
        ..config()
    })
    .await;
    // Username/password and client certificate: the device.
    let (pw, _rx) = v4_connect(v4_opts("pw", env.plain(), None, Some(("dev", "devpass"))))
        .await
        .expect("password login");
    pw.publish("devices/dev/tele", QoS::AtLeastOnce, false, "a")
        .await
        .unwrap();
    let cert = env.pki.issue_client("VRB-00000001").unwrap();
    let tls = client_tls(env.pki.ca_pem(), Some(&cert));
    let (c, _rx) = v4_connect(v4_opts("crt", env.tls(), Some(tls), None))
        .await
        .expect("certificate login");
    c.publish("devices/VRB-00000001/tele", QoS::AtLeastOnce, false, "b")
        .await
        .unwrap();
    // Anonymous, and refused: nobody.
    let (anon, _rx) = v4_connect(v4_opts("anon", env.plain(), None, None))
        .await
        .expect("anonymous login");
    anon.publish("open/tele", QoS::AtLeastOnce, false, "c")
        .await
        .unwrap();
    v4_connect(v4_opts("bad", env.plain(), None, Some(("dev", "wrong"))))
        .await
        .expect_err("refused");
    for id in ["pw", "crt", "anon"] {
        let id = id.to_string();
        env.wait_flow(move |f| f.kind == FlowKind::Publish && f.client_id.as_deref() == Some(&id))
            .await
            .expect("publish recorded");
    }
    for f in env.log.snapshot() {
        let expected = match (f.kind, f.client_id.as_deref()) {
            (FlowKind::ConnectRefused, _) | (_, Some("anon")) => None,
            (_, Some("pw" | "crt")) => Some(Actor::Device),
            _ => continue,
        };
        assert_eq!(f.actor, expected, "{f:?}");
    }
    let connects = env
        .log
        .snapshot()
        .into_iter()
        .filter(|f| f.kind == FlowKind::Connect && f.actor == Some(Actor::Device))
        .count();
    assert_eq!(connects, 2);
    env.broker.shutdown().await;
}
