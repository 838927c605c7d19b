//! The services over real HTTPS on loopback: update server, companion-app API, third parties, bad input.

mod common;

use common::{Client, start};
use hilt_cloud::FlowKind;
use hilt_https::MAX_BODY;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The path part of an absolute URL from a manifest.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..])
}

#[tokio::test]
async fn update_manifest_and_image_over_tls() {
    let cloud = start(false).await;
    let c = Client::new(&cloud);
    assert_eq!(
        c.get("/update/vb1/manifest.json").await.unwrap().status,
        404
    );

    let image: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    cloud.state.publish_release("vb1", "1.1.0", &image, None);
    let m = c.get("/update/vb1/manifest.json").await.unwrap();
    assert_eq!(m.status, 200);
    let m = m.json();
    assert_eq!(m["version"], "1.1.0");
    assert_eq!(m["size"], image.len() as u64);
    assert_eq!(m["sha256"], sha(&image));
    assert!(m.get("signature").is_some());
    let url = m["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("https://localhost:{}/", cloud.https.addr().port())),
        "{url}"
    );
    let got = c.get(url_path(url)).await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(sha(&got.body), m["sha256"].as_str().unwrap());

    // A tampered manifest, then a downgrade: the newest publication wins, older images stay served.
    cloud.state.publish_release(
        "vb1",
        "1.2.0",
        b"new image",
        Some(json!({"sha256": "00".repeat(32)})),
    );
    let m = c.get("/update/vb1/manifest.json").await.unwrap().json();
    assert_eq!(m["version"], "1.2.0");
    let got = c.get(url_path(m["url"].as_str().unwrap())).await.unwrap();
    assert_ne!(sha(&got.body), m["sha256"].as_str().unwrap());
    cloud
        .state
        .publish_release("vb1", "0.9.0", b"old image", None);
    assert_eq!(
        c.get("/update/vb1/manifest.json").await.unwrap().json()["version"],
        "0.9.0"
    );
    assert_eq!(
        c.get("/update/vb1/images/vb1-1.1.0.bin")
            .await
            .unwrap()
            .body
            .len(),
        image.len()
    );
    assert_eq!(
        c.get("/update/vb1/images/nope.bin").await.unwrap().status,
        404
    );
    assert_eq!(cloud.state.releases("vb1").len(), 3);
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

    // Erasure: token dead afterwards, only the recipient that had Alice's data is told.
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
        && f.path.as_deref() == Some("/thirdparty/ads/erasure")));
    let erase = flows
        .iter()
        .find(|f| f.seq >= from && f.kind == FlowKind::Request)
        .unwrap();
    assert_eq!(erase.identity.as_deref(), Some(alice.as_str()));

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
