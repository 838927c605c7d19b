//! The services over real HTTPS on loopback: update server, device notices, companion-app API, third
//! parties, bad input.

mod common;

use bytes::Bytes;
use common::{Client, start};
use hilt_cloud::{Actor, FlowKind};
use hilt_https::{MAX_BODY, MAX_NOTICE_CHARS, StateError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A manifest and an image the way the harness would publish them.
fn offer(image: &[u8]) -> Vec<(String, Bytes)> {
    let manifest =
        json!({"version": "1.1.0", "url": "/update/vb1/fw-1.1.0.bin", "sha256": sha(image)});
    vec![
        (
            "/update/vb1/manifest.json".into(),
            Bytes::from(manifest.to_string()),
        ),
        (
            "/update/vb1/fw-1.1.0.bin".into(),
            Bytes::copy_from_slice(image),
        ),
    ]
}

#[tokio::test]
async fn published_update_files_are_served_over_tls_and_plain_until_withdrawn() {
    let cloud = start(true).await;
    let (tls, plain) = (Client::new(&cloud), Client::plain(&cloud));
    assert_eq!(
        tls.get("/update/vb1/manifest.json").await.unwrap().status,
        404
    );

    let image: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    cloud.state.publish_update(offer(&image)).unwrap();
    assert_eq!(
        cloud.state.update_files(),
        vec!["/update/vb1/fw-1.1.0.bin", "/update/vb1/manifest.json"]
    );
    for c in [&tls, &plain] {
        let m = c.get("/update/vb1/manifest.json").await.unwrap();
        assert_eq!(m.status, 200);
        assert_eq!(m.content_type.as_deref(), Some("application/json"));
        assert_eq!(m.json()["sha256"], sha(&image));
        let got = c.get("/update/vb1/fw-1.1.0.bin").await.unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(
            got.content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(sha(&got.body), sha(&image));
        // Exactly the published paths: no prefix, suffix or normalisation games.
        for miss in [
            "/update/vb1",
            "/update/vb1/",
            "/update/vb1/fw-1.1.0.bin/x",
            "/update/vb1/./fw-1.1.0.bin",
        ] {
            let r = c.get(miss).await.unwrap();
            assert_eq!(r.status, 404, "{miss}");
            assert!(r.json()["error"].is_string(), "{miss}");
        }
    }
    // The query is not part of the path: a device may say which version it runs.
    assert_eq!(
        tls.get("/update/vb1/manifest.json?current=1.0.0")
            .await
            .unwrap()
            .status,
        200
    );

    // Paths outside /update/ are refused and leave the offer as it was.
    for bad in ["/app/v1/accounts", "manifest.json", "/update/../x"] {
        let err = cloud
            .state
            .publish_update(vec![(bad.into(), Bytes::from_static(b"{}"))])
            .unwrap_err();
        assert_eq!(err, StateError::BadPath(bad.into()));
    }
    assert_eq!(cloud.state.update_files().len(), 2);

    // A new offer replaces the old one entirely.
    cloud
        .state
        .publish_update(vec![(
            "/update/vb1/manifest.json".into(),
            Bytes::from_static(b"{}"),
        )])
        .unwrap();
    assert_eq!(
        tls.get("/update/vb1/fw-1.1.0.bin").await.unwrap().status,
        404
    );

    cloud.state.withdraw_update();
    assert!(cloud.state.update_files().is_empty());
    for c in [&tls, &plain] {
        let r = c.get("/update/vb1/manifest.json").await.unwrap();
        assert_eq!(r.status, 404);
        assert!(r.json()["error"].is_string());
    }
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn device_notices_need_a_client_cert_and_reach_linked_users() {
    let cloud = start(true).await;
    let app = Client::new(&cloud);
    let (alice, a) = new_account(&app, "Alice").await;
    assert_eq!(
        a.send("POST", "/app/v1/devices/VRB-7/users", b"")
            .await
            .unwrap()
            .status,
        201
    );
    let device = Client::with_cert(&cloud, "VRB-7");
    let post = |c: &Client, text: &str| {
        let c = c.clone();
        let body = json!({ "text": text }).to_string();
        async move {
            c.send("POST", "/device/notices", body.as_bytes())
                .await
                .unwrap()
        }
    };

    // No certificate: refused, over TLS and over plain HTTP, even with a user's bearer token.
    for c in [&app, &Client::plain(&cloud), &a] {
        let r = post(c, "sneaky").await;
        assert_eq!(r.status, 401);
        assert!(r.json()["error"].as_str().unwrap().contains("certificate"));
    }
    assert!(cloud.state.device_notices("VRB-7").is_empty());

    let r = post(&device, "Update 1.1.0 installed").await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(r.body.is_empty());
    assert_eq!(
        post(&device, "Update 1.2.0 refused: bad signature")
            .await
            .status,
        204
    );
    let texts: Vec<String> = cloud
        .state
        .device_notices("VRB-7")
        .into_iter()
        .map(|n| n.text)
        .collect();
    assert_eq!(
        texts,
        vec![
            "Update 1.1.0 installed",
            "Update 1.2.0 refused: bad signature"
        ]
    );
    let inbox = a
        .get(&format!("/app/v1/users/{alice}/notices"))
        .await
        .unwrap()
        .json();
    assert_eq!(inbox["notices"][0]["device"], "VRB-7");
    assert_eq!(
        inbox["notices"][1]["text"],
        "Update 1.2.0 refused: bad signature"
    );

    // Bad bodies: too long, empty, not JSON, no text.
    let long = "x".repeat(MAX_NOTICE_CHARS + 1);
    assert_eq!(post(&device, &long).await.status, 400);
    assert_eq!(post(&device, "").await.status, 400);
    assert_eq!(
        post(&device, &"x".repeat(MAX_NOTICE_CHARS)).await.status,
        204
    );
    for body in [&b"{not json"[..], br#"{"txt":"x"}"#] {
        assert_eq!(
            device
                .send("POST", "/device/notices", body)
                .await
                .unwrap()
                .status,
            400
        );
    }
    assert_eq!(cloud.state.device_notices("VRB-7").len(), 3);

    // Each accepted notice is in the flow log as the device's request.
    let flows: Vec<_> = cloud
        .log
        .snapshot()
        .into_iter()
        .filter(|f| f.path.as_deref() == Some("/device/notices") && f.status == Some(204))
        .collect();
    assert_eq!(flows.len(), 3);
    assert!(
        flows
            .iter()
            .all(|f| f.identity.as_deref() == Some("VRB-7") && f.tls)
    );
    cloud.https.shutdown().await;
}

async fn new_account(c: &Client, name: &str) -> (String, Client) {
    let r = c
        .send(
            "POST",
            "/app/v1/accounts",
            json!({ "name": name }).to_string().as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let v = r.json();
    (
        v["id"].as_str().unwrap().to_string(),
        c.authed(v["token"].as_str().unwrap()),
    )
}

#[tokio::test]
async fn companion_app_flow_with_consent_notices_export_and_erasure() {
    let cloud = start(false).await;
    let c = Client::new(&cloud);
    let (alice, a) = new_account(&c, "Alice Example").await;
    let (bob, b) = new_account(&c, "Bob Example").await;
    let (_carol, carol) = new_account(&c, "Carol Example").await;
    assert_ne!(alice, bob);

    // Linking and the device's user list, visible to its users only.
    assert_eq!(
        a.send("POST", "/app/v1/devices/VRB-1/users", b"")
            .await
            .unwrap()
            .status,
        201
    );
    assert_eq!(
        b.send("POST", "/app/v1/devices/VRB-1/users", b"")
            .await
            .unwrap()
            .status,
        201
    );
    let users = a.get("/app/v1/devices/VRB-1/users").await.unwrap().json();
    assert_eq!(users["users"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        carol
            .get("/app/v1/devices/VRB-1/users")
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        c.get("/app/v1/devices/VRB-1/users").await.unwrap().status,
        401
    );
    assert_eq!(
        cloud.state.device_users("VRB-1"),
        vec![alice.clone(), bob.clone()]
    );

    // Consent given then withdrawn, with history.
    let path = format!("/app/v1/users/{alice}/consents/analytics");
    assert_eq!(
        a.send("PUT", &path, br#"{"granted":true}"#)
            .await
            .unwrap()
            .status,
        200
    );
    let v = a
        .send("PUT", &path, br#"{"granted":false}"#)
        .await
        .unwrap()
        .json();
    assert_eq!(v["granted"], false);
    let got = a.get(&path).await.unwrap().json();
    let hist: Vec<bool> = got["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["granted"].as_bool().unwrap())
        .collect();
    assert_eq!(hist, vec![true, false]);
    let h = cloud.state.consent_history(&alice, "analytics");
    assert_eq!(h.len(), 2);
    assert!(h[0].time <= h[1].time);
    assert!(!cloud.state.consent_granted(&alice, "analytics"));
    assert_eq!(
        b.send("PUT", &path, br#"{"granted":true}"#)
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        c.send("PUT", &path, br#"{"granted":true}"#)
            .await
            .unwrap()
            .status,
        401
    );

    // A notice reaches both users of the device, not the third.
    assert_eq!(cloud.state.post_notice("VRB-1", "Privacy notice v2"), 2);
    for (id, cl) in [(&alice, &a), (&bob, &b)] {
        let n = cl
            .get(&format!("/app/v1/users/{id}/notices"))
            .await
            .unwrap()
            .json();
        assert_eq!(n["notices"][0]["text"], "Privacy notice v2");
    }
    assert_eq!(
        carol
            .get(&format!("/app/v1/users/{alice}/notices"))
            .await
            .unwrap()
            .status,
        403
    );

    // Third parties receive data about each user.
    assert_eq!(
        c.send(
            "POST",
            "/thirdparty/ads/ingest",
            json!({"user": alice, "ev": "open"}).to_string().as_bytes()
        )
        .await
        .unwrap()
        .status,
        202
    );
    assert_eq!(
        c.send(
            "POST",
            "/thirdparty/analytics/ingest",
            json!({"user": bob}).to_string().as_bytes()
        )
        .await
        .unwrap()
        .status,
        202
    );
    assert_eq!(
        cloud.state.received("ads")[0].user.as_deref(),
        Some(alice.as_str())
    );

    // The export holds the requester's data only.
    let ex = a
        .get(&format!("/app/v1/users/{alice}/export"))
        .await
        .unwrap();
    assert_eq!(ex.status, 200);
    let text = String::from_utf8_lossy(&ex.body).to_string();
    assert!(
        !text.contains(&bob) && !text.contains("Bob Example"),
        "{text}"
    );
    let ex: Value = ex.json();
    assert_eq!(ex["account"]["name"], "Alice Example");
    assert_eq!(
        ex["consents"]["analytics"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(ex["shared_with"].get("ads").is_some() && ex["shared_with"].get("analytics").is_none());
    assert_eq!(
        b.get(&format!("/app/v1/users/{alice}/export"))
            .await
            .unwrap()
            .status,
        403
    );

    // Erasure: token dead afterwards; with the mock's own propagation on, only the recipient that had
    // Alice's data is told, by the backend (propagation off is in tests/privacy.rs).
    cloud.state.set_backend_propagation(true);
    let from = cloud.log.next_seq();
    let r = a
        .send("POST", &format!("/app/v1/users/{alice}/erasure"), b"")
        .await
        .unwrap();
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["notified"], json!(["ads"]));
    assert_eq!(
        a.get(&format!("/app/v1/users/{alice}/export"))
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(cloud.state.erasure_notices("ads"), vec![alice.clone()]);
    assert!(cloud.state.erasure_notices("analytics").is_empty());
    assert!(cloud.state.is_erased(&alice));
    assert_eq!(cloud.state.device_users("VRB-1"), vec![bob.clone()]);
    let flows = cloud.log.since(0);
    assert!(flows.iter().any(|f| f.seq >= from
        && f.kind == FlowKind::ErasureNotice
        && f.actor == Some(Actor::Backend)
        && f.path.as_deref() == Some("/thirdparty/ads/erasure")));
    let erase = flows
        .iter()
        .find(|f| f.seq >= from && f.kind == FlowKind::Request)
        .unwrap();
    assert_eq!(erase.identity.as_deref(), Some(alice.as_str()));
    assert_eq!(erase.actor, Some(Actor::User));

    // Recipients also accept notices sent to them directly.
    assert_eq!(
        c.send(
            "POST",
            "/thirdparty/analytics/erasure",
            json!({"user": bob}).to_string().as_bytes()
        )
        .await
        .unwrap()
        .status,
        202
    );
    assert_eq!(cloud.state.erasure_notices("analytics"), vec![bob.clone()]);
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_4xx_and_the_server_carries_on() {
    let cloud = start(false).await;
    let c = Client::new(&cloud);
    assert_eq!(
        c.send("POST", "/app/v1/accounts", b"{not json")
            .await
            .unwrap()
            .status,
        400
    );
    assert_eq!(
        c.send("POST", "/app/v1/accounts", br#"{"name":""}"#)
            .await
            .unwrap()
            .status,
        400
    );
    assert_eq!(
        c.send("POST", "/thirdparty/ads/ingest", b"\xff\xfe")
            .await
            .unwrap()
            .status,
        400
    );
    assert_eq!(
        c.send("POST", "/thirdparty/nobody/ingest", b"{}")
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        c.send("POST", "/thirdparty/ads/erasure", b"{}")
            .await
            .unwrap()
            .status,
        400
    );
    let (id, a) = new_account(&c, "x").await;
    assert_eq!(
        a.send("PUT", &format!("/app/v1/users/{id}/consents/p"), b"[]")
            .await
            .unwrap()
            .status,
        400
    );
    let bad = c.authed("not-a-token");
    assert_eq!(
        bad.get(&format!("/app/v1/users/{id}/export"))
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(c.get("/no/such/route").await.unwrap().status, 404);

    let big = vec![b' '; MAX_BODY + 1];
    assert_eq!(
        c.send("POST", "/thirdparty/ads/ingest", &big)
            .await
            .unwrap()
            .status,
        413
    );
    let fits = format!(
        "{{\"user\":\"u\",\"pad\":\"{}\"}}",
        "x".repeat(3 * 1024 * 1024)
    );
    assert_eq!(
        c.send("POST", "/thirdparty/ads/ingest", fits.as_bytes())
            .await
            .unwrap()
            .status,
        202
    );
    assert!(cloud.log.snapshot().iter().any(|f| f.status == Some(413)));
    assert_eq!(c.get("/update/x/manifest.json").await.unwrap().status, 404);
    cloud.https.shutdown().await;
}
