//! Fault injection and flow recording over real TLS: the MITM certificate, outages, delays, attribution.

mod common;

use common::{Client, start, wait_flow};
use hilt_cloud::{FlowKind, OutageMode, ServerCert};
use serde_json::json;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn untrusted_certificate_fails_the_handshake_and_is_logged() {
    let cloud = start(false).await;
    let c = Client::new(&cloud);
    assert_eq!(c.get("/update/m/manifest.json").await.unwrap().status, 404);
    cloud.faults.present_untrusted_cert(true);
    let err = c
        .get("/update/m/manifest.json")
        .await
        .expect_err("a client trusting only the run CA must refuse");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    let f = wait_flow(&cloud.log, |f| f.kind == FlowKind::TlsFailed)
        .await
        .expect("tls-failed flow");
    assert_eq!(f.server_cert, Some(ServerCert::Untrusted));
    assert!(f.tls && f.peer.is_some());
    cloud.faults.present_untrusted_cert(false);
    assert_eq!(c.get("/update/m/manifest.json").await.unwrap().status, 404);
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn refusing_outage_closes_connections_at_once() {
    let cloud = start(false).await;
    let c = Client::new(&cloud);
    cloud.faults.outage(OutageMode::Refuse, LONG);
    let t = Instant::now();
    assert!(c.get("/update/m/manifest.json").await.is_err());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "refusal should be prompt"
    );
    assert!(
        wait_flow(&cloud.log, |f| f.kind == FlowKind::ConnectRefused)
            .await
            .is_some()
    );
    cloud.faults.clear();
    assert_eq!(c.get("/update/m/manifest.json").await.unwrap().status, 404);
    cloud.https.shutdown().await;
}

/// A refusal before the handshake presented no certificate: no tag, even under the MITM fault.
#[tokio::test]
async fn refusals_before_the_handshake_carry_no_certificate_tag() {
    let cloud = start(false).await;
    let c = Client::new(&cloud);
    cloud.faults.present_untrusted_cert(true);
    cloud.faults.outage(OutageMode::Refuse, LONG);
    assert!(c.get("/update/m/manifest.json").await.is_err());
    let f = wait_flow(&cloud.log, |f| f.kind == FlowKind::ConnectRefused)
        .await
        .expect("connect-refused flow");
    assert!(f.tls, "{f:?}");
    assert_eq!(f.server_cert, None, "{f:?}");
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn a_fault_that_begins_closes_live_connections() {
    let cloud = start(false).await;
    let mut conn = Client::new(&cloud).keep_alive().await.unwrap();
    let get = || {
        hyper::Request::get("/update/m/manifest.json")
            .header("host", "localhost")
            .body(Default::default())
            .unwrap()
    };
    assert_eq!(conn.send_request(get()).await.unwrap().status(), 404);
    cloud.faults.present_untrusted_cert(true);
    for _ in 0..250 {
        if conn.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        conn.is_closed(),
        "a kept-alive connection must not bypass the MITM fault"
    );
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn dropping_outage_holds_silently_until_it_ends() {
    let cloud = start(false).await;
    let c = Client::new(&cloud);
    cloud.faults.outage(OutageMode::Drop, LONG);
    let held = tokio::spawn({
        let c = c.clone();
        async move { c.get("/update/m/manifest.json").await.map(|r| r.status) }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !held.is_finished(),
        "a blackholed connection must get no answer"
    );
    cloud.faults.clear();
    let ended = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("held connection released")
        .unwrap();
    assert!(
        ended.is_err(),
        "the held connection is closed, not answered"
    );
    assert_eq!(c.get("/update/m/manifest.json").await.unwrap().status, 404);
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn delay_fault_delays_responses() {
    let cloud = start(false).await;
    let c = Client::new(&cloud);
    let delay = Duration::from_millis(400);
    cloud.faults.delay_responses(delay);
    let t = Instant::now();
    assert_eq!(c.get("/update/m/manifest.json").await.unwrap().status, 404);
    assert!(t.elapsed() >= delay, "{:?}", t.elapsed());
    cloud.faults.clear();
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn flows_attribute_method_path_status_tls_and_identity() {
    let cloud = start(true).await;
    let manifest =
        bytes::Bytes::from_static(br#"{"version":"1.0","url":"http://h/update/vb1/fw.bin"}"#);
    cloud
        .state
        .publish_update(vec![("/update/vb1/manifest.json".into(), manifest)])
        .unwrap();
    // A device authenticated by its client certificate only (no token): the flow names its CN.
    let device = Client::with_cert(&cloud, "VRB-00000042");
    assert_eq!(
        device
            .get("/update/vb1/manifest.json?current=0.9")
            .await
            .unwrap()
            .status,
        200
    );
    let app = Client::new(&cloud);
    let r = app
        .send("POST", "/app/v1/accounts", br#"{"name":"n"}"#)
        .await
        .unwrap()
        .json();
    let (id, token) = (
        r["id"].as_str().unwrap().to_string(),
        r["token"].as_str().unwrap().to_string(),
    );
    let user = app.authed(&token);
    let body = json!({"granted": true}).to_string();
    assert_eq!(
        user.send(
            "PUT",
            &format!("/app/v1/users/{id}/consents/ads"),
            body.as_bytes()
        )
        .await
        .unwrap()
        .status,
        200
    );
    assert_eq!(
        Client::plain(&cloud)
            .get("/update/vb1/manifest.json")
            .await
            .unwrap()
            .status,
        200
    );

    let flows: Vec<_> = cloud
        .log
        .snapshot()
        .into_iter()
        .filter(|f| f.kind == FlowKind::Request)
        .collect();
    assert_eq!(flows.len(), 4);
    let m = &flows[0];
    assert_eq!(
        (m.method.as_deref(), m.path.as_deref(), m.status),
        (
            Some("GET"),
            Some("/update/vb1/manifest.json?current=0.9"),
            Some(200)
        )
    );
    assert!(m.tls);
    assert_eq!(m.server_cert, Some(ServerCert::Trusted));
    assert_eq!(m.identity.as_deref(), Some("VRB-00000042"));
    assert_eq!(
        (flows[1].status, flows[1].identity.as_deref()),
        (Some(201), Some(id.as_str()))
    );
    let consent = &flows[2];
    assert_eq!(
        (consent.method.as_deref(), consent.identity.as_deref()),
        (Some("PUT"), Some(id.as_str()))
    );
    assert_eq!(
        cloud.log.payload(&consent.payload_sha256).as_deref(),
        Some(body.as_bytes())
    );
    assert!(!flows[3].tls && flows[3].identity.is_none());
    // The bearer token is a secret: it is in no flow.
    let all = serde_json::to_string(&cloud.log.snapshot()).unwrap();
    assert!(!all.contains(&token));
    cloud.https.shutdown().await;
}
