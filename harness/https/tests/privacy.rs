//! Privacy over real HTTPS on loopback: who made each flow (device, user, backend), the device routes
//! (pairing, consent reports, erasure reports) and the mock backend's propagation switch.

mod common;

use common::{Client, Cloud, start};
use hilt_cloud::{Actor, Flow, FlowKind};
use serde_json::{Value, json};

const SERIAL: &str = "VRB-42";

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

/// The last request flow for `method path`.
fn request_flow(cloud: &Cloud, method: &str, path: &str) -> Flow {
    cloud
        .log
        .snapshot()
        .into_iter()
        .rev()
        .find(|f| {
            f.kind == FlowKind::Request
                && f.method.as_deref() == Some(method)
                && f.path.as_deref() == Some(path)
        })
        .unwrap_or_else(|| panic!("no flow for {method} {path}"))
}

async fn send_json(c: &Client, method: &str, path: &str, body: Value) -> common::Reply {
    c.send(method, path, body.to_string().as_bytes())
        .await
        .unwrap()
}

async fn pair(device: &Client, user: &str) -> common::Reply {
    send_json(device, "POST", "/device/pair", json!({ "user": user })).await
}

async fn ingest(c: &Client, recipient: &str, user: &str) {
    let path = format!("/thirdparty/{recipient}/ingest");
    let r = send_json(c, "POST", &path, json!({ "user": user, "ev": "x" })).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
}

fn backend_notices(cloud: &Cloud) -> Vec<Flow> {
    cloud
        .log
        .snapshot()
        .into_iter()
        .filter(|f| f.actor == Some(Actor::Backend))
        .collect()
}

#[tokio::test]
async fn every_request_says_who_made_it() {
    let cloud = start(true).await;
    let anon = Client::new(&cloud);
    let device = Client::with_cert(&cloud, SERIAL);

    // Account creation carries no token yet, but establishes the user.
    let (alice, a) = new_account(&anon, "Alice").await;
    let created = request_flow(&cloud, "POST", "/app/v1/accounts");
    assert_eq!(created.actor, Some(Actor::User));
    assert_eq!(created.identity.as_deref(), Some(alice.as_str()));

    // A bearer token: the user.
    let export = format!("/app/v1/users/{alice}/export");
    assert_eq!(a.get(&export).await.unwrap().status, 200);
    assert_eq!(
        request_flow(&cloud, "GET", &export).actor,
        Some(Actor::User)
    );

    // A client certificate: the device, on its own routes and on third parties' alike.
    assert_eq!(pair(&device, &alice).await.status, 201);
    let paired = request_flow(&cloud, "POST", "/device/pair");
    assert_eq!(paired.actor, Some(Actor::Device));
    assert_eq!(paired.identity.as_deref(), Some(SERIAL));
    ingest(&device, "ads", &alice).await;
    let r = send_json(
        &device,
        "POST",
        "/thirdparty/ads/erasure",
        json!({ "user": alice }),
    )
    .await;
    assert_eq!(r.status, 202);
    let notice = request_flow(&cloud, "POST", "/thirdparty/ads/erasure");
    assert_eq!(notice.actor, Some(Actor::Device));
    assert_eq!(notice.identity.as_deref(), Some(SERIAL));
    assert!(notice.tls);
    assert_eq!(cloud.state.erasure_notices("ads"), vec![alice.clone()]);

    // A user's token on a connection with a device certificate: the user speaks.
    let app_on_device = device.authed(a.token.as_deref().unwrap());
    assert_eq!(app_on_device.get(&export).await.unwrap().status, 200);
    assert_eq!(
        request_flow(&cloud, "GET", &export).identity.as_deref(),
        Some(alice.as_str())
    );
    assert_eq!(
        request_flow(&cloud, "GET", &export).actor,
        Some(Actor::User)
    );

    // Nobody authenticated: no actor, over TLS and plain HTTP; a bad token is nobody either.
    for c in [&anon, &Client::plain(&cloud), &anon.authed("not-a-token")] {
        ingest(c, "analytics", &alice).await;
        let f = request_flow(&cloud, "POST", "/thirdparty/analytics/ingest");
        assert_eq!(f.actor, None);
        assert_eq!(f.identity, None);
    }
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn device_routes_need_a_client_certificate() {
    let cloud = start(true).await;
    let anon = Client::new(&cloud);
    let (alice, a) = new_account(&anon, "Alice").await;
    let body = json!({ "user": alice, "granted": true, "users": [alice] });
    let routes = [
        ("POST", "/device/pair"),
        ("PUT", "/device/consents/analytics"),
        ("POST", "/device/erasure"),
    ];
    // Over TLS without a certificate, over plain HTTP, and with a user's token instead.
    for c in [&anon, &Client::plain(&cloud), &a] {
        for (method, path) in routes {
            let r = send_json(c, method, path, body.clone()).await;
            assert_eq!(r.status, 401, "{method} {path}");
            let err = r.json()["error"].as_str().unwrap_or_default().to_string();
            assert!(err.contains("certificate"), "{err}");
        }
    }
    assert!(cloud.state.device_users(SERIAL).is_empty());
    assert!(cloud.state.account(&alice).unwrap().devices.is_empty());
    assert!(cloud.state.consents(&alice).is_empty());
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn pairing_links_live_users_and_refuses_unknown_or_erased_ones() {
    let cloud = start(false).await;
    let anon = Client::new(&cloud);
    let device = Client::with_cert(&cloud, SERIAL);
    let (alice, _) = new_account(&anon, "Alice").await;
    let (bob, b) = new_account(&anon, "Bob").await;

    let r = pair(&device, &alice).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.json(), json!({ "device": SERIAL, "user": alice }));
    // Idempotent.
    assert_eq!(pair(&device, &alice).await.status, 201);
    assert_eq!(cloud.state.device_users(SERIAL), vec![alice.clone()]);

    let r = pair(&device, "user-999").await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());

    let erase = format!("/app/v1/users/{bob}/erasure");
    assert_eq!(b.send("POST", &erase, b"").await.unwrap().status, 202);
    let r = pair(&device, &bob).await;
    assert_eq!(r.status, 409);
    assert!(r.json()["error"].is_string());

    // Bad bodies.
    for body in [
        &b"{not json"[..],
        br#"{"usr":"x"}"#,
        br#"{"user":""}"#,
        br#"{"user":7}"#,
    ] {
        let r = device.send("POST", "/device/pair", body).await.unwrap();
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(body));
        assert!(r.json()["error"].is_string());
    }
    let long = "u".repeat(257);
    assert_eq!(pair(&device, &long).await.status, 400);
    assert_eq!(cloud.state.device_users(SERIAL), vec![alice.clone()]);
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn consent_reports_are_recorded_for_linked_users_only() {
    let cloud = start(false).await;
    let anon = Client::new(&cloud);
    let device = Client::with_cert(&cloud, SERIAL);
    let other = Client::with_cert(&cloud, "VRB-43");
    let (alice, a) = new_account(&anon, "Alice").await;
    let (bob, _) = new_account(&anon, "Bob").await;
    assert_eq!(pair(&device, &alice).await.status, 201);
    assert_eq!(pair(&other, &bob).await.status, 201);

    let path = "/device/consents/analytics";
    let r = send_json(
        &device,
        "PUT",
        path,
        json!({ "user": alice, "granted": true }),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["granted"], true);
    let r = send_json(
        &device,
        "PUT",
        path,
        json!({ "user": alice, "granted": false }),
    )
    .await;
    let v = r.json();
    assert_eq!(
        (v["user"].as_str(), v["granted"].as_bool()),
        (Some(alice.as_str()), Some(false))
    );
    assert_eq!(v["history"].as_array().map(Vec::len), Some(2));

    // In the user's history, as the app sees it, and in the device's own record.
    let seen = a
        .get(&format!("/app/v1/users/{alice}/consents/analytics"))
        .await
        .unwrap()
        .json();
    assert_eq!(seen["granted"], false);
    let reported = cloud.state.device_consents(SERIAL);
    let summary: Vec<(&str, &str, bool)> = reported
        .iter()
        .map(|c| (c.user.as_str(), c.purpose.as_str(), c.granted))
        .collect();
    assert_eq!(
        summary,
        vec![
            (alice.as_str(), "analytics", true),
            (alice.as_str(), "analytics", false)
        ]
    );

    // Not this device's user, or nobody's: refused and not recorded.
    for user in [bob.as_str(), "user-999"] {
        let r = send_json(
            &device,
            "PUT",
            path,
            json!({ "user": user, "granted": true }),
        )
        .await;
        assert_eq!(r.status, 403, "{user}");
        assert!(r.json()["error"].as_str().unwrap().contains("not linked"));
    }
    assert!(cloud.state.consents(&bob).is_empty());
    assert_eq!(cloud.state.device_consents(SERIAL).len(), 2);
    assert!(cloud.state.device_consents("VRB-43").is_empty());

    // Bad input: purpose too long, missing or mistyped fields.
    let long = format!("/device/consents/{}", "p".repeat(257));
    let body = json!({ "user": alice, "granted": true });
    assert_eq!(send_json(&device, "PUT", &long, body).await.status, 400);
    for body in [
        json!({ "user": alice }),
        json!({ "user": alice, "granted": "yes" }),
    ] {
        assert_eq!(send_json(&device, "PUT", path, body).await.status, 400);
    }
    assert_eq!(cloud.state.device_consents(SERIAL).len(), 2);
    cloud.https.shutdown().await;
}

/// Alice and Bob on the device, Carol elsewhere; third parties hold data about all three.
async fn erasure_setup(cloud: &Cloud, device: &Client) -> (String, String, String) {
    let anon = Client::new(cloud);
    let (alice, _) = new_account(&anon, "Alice").await;
    let (bob, _) = new_account(&anon, "Bob").await;
    let (carol, _) = new_account(&anon, "Carol").await;
    assert_eq!(pair(device, &alice).await.status, 201);
    assert_eq!(pair(device, &bob).await.status, 201);
    ingest(device, "ads", &alice).await;
    ingest(device, "analytics", &alice).await;
    ingest(device, "analytics", &bob).await;
    ingest(device, "ads", &carol).await;
    (alice, bob, carol)
}

async fn report_erasure(device: &Client, users: &[&str]) -> Value {
    let r = send_json(device, "POST", "/device/erasure", json!({ "users": users })).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    r.json()
}

#[tokio::test]
async fn device_erasure_without_backend_propagation_unlinks_and_notifies_nobody() {
    let cloud = start(false).await;
    let device = Client::with_cert(&cloud, SERIAL);
    let (alice, bob, carol) = erasure_setup(&cloud, &device).await;
    assert!(!cloud.state.backend_propagation());

    let v = report_erasure(&device, &[&alice, &carol]).await;
    // Carol was never this device's user: named, recorded, but not acted on.
    assert_eq!(v, json!({ "device": SERIAL, "unlinked": [alice] }));
    assert_eq!(cloud.state.device_users(SERIAL), vec![bob.clone()]);
    let reports = cloud.state.device_erasures(SERIAL);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].users, vec![alice.clone(), carol.clone()]);
    for r in cloud.state.recipients() {
        assert!(cloud.state.erasure_notices(&r).is_empty(), "{r}");
    }
    assert!(backend_notices(&cloud).is_empty());
    assert_eq!(
        request_flow(&cloud, "POST", "/device/erasure").actor,
        Some(Actor::Device)
    );

    // Bad bodies.
    for body in [
        json!({ "users": "x" }),
        json!({ "users": [""] }),
        json!({ "users": ["u".repeat(257)] }),
        json!({}),
    ] {
        let r = send_json(&device, "POST", "/device/erasure", body).await;
        assert_eq!(r.status, 400);
    }
    assert_eq!(cloud.state.device_erasures(SERIAL).len(), 1);
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn device_erasure_with_backend_propagation_notifies_every_recipient_of_the_users_data() {
    let cloud = start(false).await;
    let device = Client::with_cert(&cloud, SERIAL);
    let (alice, bob, carol) = erasure_setup(&cloud, &device).await;
    cloud.state.set_backend_propagation(true);

    let v = report_erasure(&device, &[&alice, &carol]).await;
    assert_eq!(v["unlinked"], json!([alice]));
    assert_eq!(cloud.state.erasure_notices("ads"), vec![alice.clone()]);
    assert_eq!(
        cloud.state.erasure_notices("analytics"),
        vec![alice.clone()]
    );
    let mut notified: Vec<(String, String)> = backend_notices(&cloud)
        .into_iter()
        .map(|f| {
            assert_eq!(f.kind, FlowKind::ErasureNotice);
            (f.identity.unwrap(), f.path.unwrap())
        })
        .collect();
    notified.sort();
    assert_eq!(
        notified,
        vec![
            (alice.clone(), "/thirdparty/ads/erasure".to_string()),
            (alice.clone(), "/thirdparty/analytics/erasure".to_string()),
        ]
    );

    // Bob's turn: only the recipient that had his data.
    let v = report_erasure(&device, &[&bob]).await;
    assert_eq!(v["unlinked"], json!([bob]));
    assert_eq!(
        cloud.state.erasure_notices("analytics"),
        vec![alice.clone(), bob.clone()]
    );
    assert_eq!(backend_notices(&cloud).len(), 3);
    assert!(cloud.state.device_users(SERIAL).is_empty());
    assert_eq!(cloud.state.device_erasures(SERIAL).len(), 2);
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn user_erasure_propagates_only_when_the_backend_is_switched_on() {
    let cloud = start(false).await;
    let anon = Client::new(&cloud);
    let (alice, a) = new_account(&anon, "Alice").await;
    let (bob, b) = new_account(&anon, "Bob").await;
    ingest(&anon, "ads", &alice).await;
    ingest(&anon, "ads", &bob).await;

    let r = a
        .send("POST", &format!("/app/v1/users/{alice}/erasure"), b"")
        .await
        .unwrap();
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["notified"], json!([]));
    assert!(cloud.state.is_erased(&alice));
    assert!(cloud.state.erasure_notices("ads").is_empty());
    assert!(backend_notices(&cloud).is_empty());

    cloud.state.set_backend_propagation(true);
    let r = b
        .send("POST", &format!("/app/v1/users/{bob}/erasure"), b"")
        .await
        .unwrap();
    assert_eq!(r.json()["notified"], json!(["ads"]));
    let notices = backend_notices(&cloud);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].identity.as_deref(), Some(bob.as_str()));
    cloud.https.shutdown().await;
}

#[tokio::test]
async fn a_device_reads_the_consent_its_linked_user_gave_in_the_app() {
    let cloud = start(false).await;
    let anon = Client::new(&cloud);
    let device = Client::with_cert(&cloud, SERIAL);
    let (alice, a) = new_account(&anon, "Alice").await;
    let (bob, _) = new_account(&anon, "Bob").await;
    assert_eq!(pair(&device, &alice).await.status, 201);
    // The user decides in the app; the device reads the history under its certificate.
    let r = send_json(
        &a,
        "PUT",
        &format!("/app/v1/users/{alice}/consents/analytics"),
        json!({ "granted": false }),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let path = format!("/device/users/{alice}/consents");
    let r = device.get(&path).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    let history = &r.json()["consents"]["analytics"];
    assert_eq!(history.as_array().map(Vec::len), Some(1));
    assert_eq!(history[0]["granted"], false);
    assert_eq!(
        request_flow(&cloud, "GET", &path).actor,
        Some(Actor::Device)
    );
    // Not another device's user, and not without a certificate.
    let r = device
        .get(&format!("/device/users/{bob}/consents"))
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(anon.get(&path).await.unwrap().status, 401);
}
