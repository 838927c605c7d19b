//! The board's cloud link against a minimal MQTT peer, with a per-run PKI from hilt-cloud.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use hilt_cloud::Pki;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use support::peer::{Peer, Script};
use support::{Board, command, login, spawn};

const SERIAL: &str = "VRB-CLOUD01";
const USERNAME: &str = "vrb-dev";
const PASSWORD: &str = "Cl0ud-s3cret-PW";

fn topic(leaf: &str) -> String {
    format!("vrb/{SERIAL}/{leaf}")
}

struct Lab {
    dir: tempfile::TempDir,
    pki: Pki,
    ca: PathBuf,
    pw: PathBuf,
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&["127.0.0.1".into()]).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let pw = dir.path().join("mqtt-password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    Lab { dir, pki, ca, pw }
}

impl Lab {
    fn tls_peer(&self, untrusted: bool, script: Script) -> Peer {
        Peer::start(
            Some(self.pki.server_config(untrusted, &[]).unwrap()),
            script,
        )
    }

    /// The board's cloud arguments for `url`, plus `extra`.
    fn args(&self, url: &str, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = [
            "--serial",
            SERIAL,
            "--mqtt-url",
            url,
            "--ca-cert",
            self.ca.to_str().unwrap(),
            "--mqtt-username",
            USERNAME,
            "--mqtt-password-file",
            self.pw.to_str().unwrap(),
            "--telemetry-ms",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    fn board(&self, args: &[String]) -> Board {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Debug level, so the no-secrets check covers every log line the board can emit.
        spawn(self.dir.path(), &args, "debug")
    }
}

fn stop(board: &mut Board) {
    kill(Pid::from_raw(board.child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + support::TIMEOUT;
    loop {
        if let Some(status) = board.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "{status:?}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "board did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connects_over_tls_reports_and_answers_commands() {
    let lab = lab();
    let peer = lab.tls_peer(
        false,
        Script {
            on_subscribe: vec![
                (topic("cmd"), br#"{"cmd":"ping","id":42}"#.to_vec()),
                (topic("notice"), b"maintenance tonight 02:00".to_vec()),
            ],
            ..Script::default()
        },
    );
    let mut board = lab.board(&lab.args(&peer.url("mqtts"), &[]));
    peer.wait_for("telemetry, presence and an ack", |r| {
        !r.published(&topic("telemetry")).is_empty()
            && !r.published(&topic("presence")).is_empty()
            && !r.published(&topic("ack")).is_empty()
    });
    peer.with(|r| {
        let c = &r.connects[0];
        assert_eq!(c.client_id, SERIAL);
        assert_eq!(c.username.as_deref(), Some(USERNAME));
        assert_eq!(c.password.as_deref(), Some(PASSWORD));
        assert_eq!(c.keep_alive, 30);
        assert!(c.clean_session);
        for t in ["cmd", "notice"] {
            assert!(r.subscriptions.contains(&topic(t)), "{:?}", r.subscriptions);
        }
        let t = &r.published(&topic("telemetry"))[0];
        assert_eq!(t["serial"], SERIAL);
        assert!(t["uptime_s"].is_u64() && t["temp_c"].is_f64() && t["rssi_dbm"].is_i64());
        let p = &r.published(&topic("presence"))[0];
        assert_eq!(p["user"], "Alice Example");
        assert!(p["occupied"].is_boolean() && p["at"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!(r.published(&topic("ack"))[0], json!({"id": 42, "ok": true}));
        assert!(r.published(&topic("diag/wifi-scan")).is_empty());
    });

    let mut port = login(&board, lab.dir.path());
    let out = command(&mut port, "cloud");
    let expected = format!("cloud=connected url=mqtts://{} last_error=-\r\n", peer.addr);
    assert!(out.contains(&expected), "{out}");
    let out = command(&mut port, "notices");
    assert!(
        out.contains("notice 1: maintenance tonight 02:00\r\n"),
        "{out}"
    );
    stop(&mut board);
    let log = board.log();
    assert!(log.contains("connected to the cloud"), "{log}");
    assert!(!log.contains(PASSWORD), "password in the log: {log}");
}

#[test]
fn refuses_a_server_outside_the_run_ca_and_backs_off() {
    let lab = lab();
    let peer = lab.tls_peer(true, Script::default());
    let board = lab.board(&lab.args(&peer.url("mqtts"), &[]));
    peer.wait_for("a failed handshake", |r| r.tls_failures >= 1);
    let first = peer.with(|r| r.tls_failures);
    std::thread::sleep(Duration::from_secs(2));
    // Back-off 200, 400, 800 ms (±20 %): about 3 retries in 2 s; a storm would make hundreds.
    let retries = peer.with(|r| r.tls_failures) - first;
    assert!((1..=6).contains(&retries), "{retries} retries in 2 s");
    peer.with(|r| assert!(r.connects.is_empty(), "CONNECT sent to an untrusted server"));

    let mut port = login(&board, lab.dir.path());
    let out = command(&mut port, "cloud");
    let prefix = format!("cloud=disconnected url=mqtts://{} last_error=", peer.addr);
    assert!(out.contains(&prefix), "{out}");
    assert!(out.to_lowercase().contains("certificate"), "{out}");
    let log = board.log();
    assert!(log.contains("cannot connect to the cloud"), "{log}");
    assert!(!log.contains(PASSWORD), "password in the log: {log}");
}

#[test]
fn accepts_untrusted_cert_defect_connects_to_the_impostor() {
    let lab = lab();
    let peer = lab.tls_peer(true, Script::default());
    let _board = lab.board(&lab.args(&peer.url("mqtts"), &["--defect", "accepts-untrusted-cert"]));
    peer.wait_for("a CONNECT and presence data", |r| {
        !r.connects.is_empty() && !r.published(&topic("presence")).is_empty()
    });
    peer.with(|r| assert_eq!(r.connects[0].password.as_deref(), Some(PASSWORD)));
}

#[test]
fn undeclared_flow_defect_publishes_a_wifi_scan() {
    let lab = lab();
    let peer = lab.tls_peer(false, Script::default());
    let _board = lab.board(&lab.args(&peer.url("mqtts"), &["--defect", "undeclared-flow"]));
    peer.wait_for("a wifi scan", |r| {
        !r.published(&topic("diag/wifi-scan")).is_empty()
    });
    peer.with(|r| {
        let scan = &r.published(&topic("diag/wifi-scan"))[0];
        let first = &scan.as_array().expect("a list")[0];
        assert!(
            first["ssid"].is_string() && first["bssid"].is_string(),
            "{scan}"
        );
    });
}

#[test]
fn plaintext_mqtt_defect_uses_the_plain_listener() {
    let lab = lab();
    let tls_peer = lab.tls_peer(false, Script::default());
    let plain_peer = Peer::start(None, Script::default());
    let plain = plain_peer.url("mqtt");
    let _board = lab.board(&lab.args(
        &tls_peer.url("mqtts"),
        &["--defect", "plaintext-mqtt", "--mqtt-plain-url", &plain],
    ));
    plain_peer.wait_for("a plaintext CONNECT and presence data", |r| {
        !r.connects.is_empty() && !r.published(&topic("presence")).is_empty()
    });
    plain_peer.with(|r| assert_eq!(r.connects[0].password.as_deref(), Some(PASSWORD)));
    tls_peer.with(|r| assert!(r.connects.is_empty() && r.tls_failures == 0));

    // Without a plaintext listener to use, the defect cannot be honoured: usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_hilt-vboard"))
        .arg("run")
        .arg("--state")
        .arg(lab.dir.path().join("other"))
        .args(lab.args(&tls_peer.url("mqtts"), &["--defect", "plaintext-mqtt"]))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--mqtt-plain-url"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn reconnects_to_a_flaky_broker_with_growing_delays() {
    let lab = lab();
    let peer = lab.tls_peer(
        false,
        Script {
            drop_first: 3,
            ..Script::default()
        },
    );
    let _board = lab.board(&lab.args(&peer.url("mqtts"), &[]));
    peer.wait_for("four connections", |r| r.connects.len() >= 4);
    let gaps: Vec<Duration> = peer.with(|r| {
        r.connects
            .windows(2)
            .map(|w| w[1].at.duration_since(w[0].at))
            .collect()
    });
    // Nominal 200, 400, 800 ms, each at least 80 % of that, and never a tight loop.
    for (gap, min_ms) in gaps.iter().zip([160u64, 320, 640]) {
        assert!(
            *gap >= Duration::from_millis(min_ms - 10) && *gap < Duration::from_secs(5),
            "gaps {gaps:?}"
        );
    }
}
