//! The board's privacy behaviour against the in-test HTTPS server playing the mock cloud and the
//! third-party analytics processor: analytics only while the owner consents (on the console or in the
//! companion app), and an erase that tells every recipient of a user's data, then wipes; privacy
//! notices addressed to every user, and each user's own data export. Each named privacy defect breaks
//! one of these.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use hilt_cloud::Pki;
use hilt_report::keys::{KeyPair, public_pem};
use serde_json::json;
use support::update_server::{DeviceNotice, Record, UpdateServer, rfc3339};
use support::{Board, command, expect, label_password, login, login_again, send, spawn};

const INGEST: &str = "/thirdparty/analytics/ingest";
const TOLD_ANALYTICS: &str = "/thirdparty/analytics/erasure";
const CONSENTS: &str = "/device/consents/analytics";
const HISTORY: &str = "/device/users/alice/consents";
/// Analytics every 100 ms; windows of several intervals make a count meaningful.
const EVERY: &str = "100";
const QUIET: Duration = Duration::from_millis(600);
/// Long enough for an analytics event already in flight to land.
const IN_FLIGHT: Duration = Duration::from_millis(250);

struct Lab {
    dir: tempfile::TempDir,
    pki: Pki,
    server: UpdateServer,
    ca: PathBuf,
    vendor_pub: PathBuf,
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&["127.0.0.1".into()]).unwrap();
    let server = UpdateServer::start(pki.server_config(false, &[b"http/1.1"]).unwrap());
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let vendor_pub = dir.path().join("vendor.pub.pem");
    let vendor = KeyPair::from_seed(&[21; 32]);
    std::fs::write(&vendor_pub, public_pem(&vendor.verifying_key())).unwrap();
    Lab {
        dir,
        pki,
        server,
        ca,
        vendor_pub,
    }
}

impl Lab {
    /// A board with serial (and certificate CN) `serial`, sending analytics every 100 ms.
    fn board(&self, serial: &str, defects: &[&str]) -> (Board, PathBuf) {
        let dir = self.dir.path().join(serial);
        std::fs::create_dir(&dir).unwrap();
        let client = self.pki.issue_client(serial).unwrap();
        let (cert, key) = (dir.join("client.pem"), dir.join("client.key"));
        std::fs::write(&cert, &client.cert_pem).unwrap();
        std::fs::write(&key, &client.key_pem).unwrap();
        let url = self.server.https_base();
        let mut args = vec![
            "--serial",
            serial,
            "--update-url",
            &url,
            "--update-key",
            path(&self.vendor_pub),
            "--client-cert",
            path(&cert),
            "--client-key",
            path(&key),
            "--ca-cert",
            path(&self.ca),
            "--analytics-ms",
            EVERY,
        ];
        for d in defects {
            args.extend(["--defect", d]);
        }
        // Debug level, so the no-secrets check covers every log line.
        (spawn(&dir, &args, "debug"), dir)
    }

    fn ingests(&self, serial: &str) -> usize {
        self.server.with(|r| r.bodies(serial, "POST", INGEST).len())
    }

    /// Waits for the consent report `granted` of `serial`'s owner.
    fn wait_for_report(&self, serial: &str, granted: bool) {
        self.server.wait_for("the consent report", |r| {
            r.bodies(serial, "PUT", CONSENTS)
                .contains(&json!({"user": "alice", "granted": granted}))
        });
    }

    /// Asserts that no analytics arrive from `serial` for a while (after any in flight landed).
    fn assert_quiet(&self, serial: &str, why: &str) {
        std::thread::sleep(IN_FLIGHT);
        let before = self.ingests(serial);
        std::thread::sleep(QUIET);
        assert_eq!(self.ingests(serial), before, "{why}");
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The one line a command answers, without its echo and the prompt after it.
fn answer(port: &mut serialport::TTYPort, cmd: &str) -> String {
    let out = command(port, cmd);
    let start = out.find(&format!("{cmd}\r\n")).expect("echo") + cmd.len() + 2;
    out[start..]
        .strip_suffix("\r\nvrb$ ")
        .unwrap_or_else(|| panic!("no prompt after one line: {out:?}"))
        .to_string()
}

/// Confirms an erase; returns what the board printed up to the login prompt.
fn erase(port: &mut serialport::TTYPort) -> String {
    send(port, "erase\r");
    expect(
        port,
        "erase: this removes every user's data and credentials; type ERASE to confirm\r\n",
    );
    send(port, "ERASE\r");
    expect(port, "login: ")
}

/// An owner, alice, paired and opted in, whose data the analytics processor has received.
fn owner_sharing(lab: &Lab, port: &mut serialport::TTYPort, serial: &str) {
    assert_eq!(answer(port, "pair alice"), "pair: paired with alice");
    opt_in(lab, port, serial);
}

/// The owner opts in; waits until the analytics processor has received data.
fn opt_in(lab: &Lab, port: &mut serialport::TTYPort, serial: &str) {
    assert_eq!(
        answer(port, "consent analytics on"),
        "consent: analytics=granted"
    );
    lab.server.wait_for("analytics", |r| {
        !r.bodies(serial, "POST", INGEST).is_empty()
    });
}

/// The privacy notice a user of `serial` gets on pairing.
fn privacy_notice(serial: &str) -> String {
    format!(
        "privacy notice: VRB-1 {serial} processes your account id, presence and (only with the \
         owner's consent) usage analytics shared with an analytics processor; ask the device \
         (privacy) or the manual for details"
    )
}

fn change_notice(on: &str) -> String {
    format!("privacy change: usage analytics to the analytics processor are now {on}")
}

/// (text, addressees) of each notice `serial` posted.
fn notices(r: &Record, serial: &str) -> Vec<(String, Option<Vec<String>>)> {
    let pair = |n: DeviceNotice| (n.text, n.users);
    r.notices_of(serial).into_iter().map(pair).collect()
}

fn to(users: &[&str]) -> Option<Vec<String>> {
    Some(users.iter().map(|u| u.to_string()).collect())
}

/// Pairs alice then bob, and has alice switch analytics on, waiting for the change notice.
fn household_opts_in(lab: &Lab, port: &mut serialport::TTYPort, serial: &str) {
    assert_eq!(answer(port, "pair alice"), "pair: paired with alice");
    assert_eq!(answer(port, "pair bob"), "pair: paired with bob");
    assert_eq!(
        answer(port, "consent analytics on"),
        "consent: analytics=granted"
    );
    // The agent sends in order: once the change notice is in, every pairing notice is too.
    lab.server.wait_for("the change notice", |r| {
        r.notice_texts(serial).contains(&change_notice("on"))
    });
}

fn no_analytics_after_the_erasure_notice(r: &Record, serial: &str) {
    let told = r.position(serial, "POST", TOLD_ANALYTICS).unwrap();
    let last_ingest = r
        .requests
        .iter()
        .rposition(|s| s.cn.as_deref() == Some(serial) && s.path == INGEST);
    assert!(last_ingest < Some(told), "analytics after the notice");
}

#[test]
fn analytics_flow_only_while_the_owner_consents() {
    let lab = lab();
    let serial = "VRB-PRIV0001";
    let (board, dir) = lab.board(serial, &[]);
    let mut port = login(&board, &dir);
    assert_eq!(
        answer(&mut port, "consent analytics"),
        "consent: no user paired"
    );
    assert_eq!(answer(&mut port, "pair alice"), "pair: paired with alice");
    assert_eq!(answer(&mut port, "users"), "user 1: alice\r\nend of users");
    assert_eq!(
        answer(&mut port, "consent analytics"),
        "consent: analytics=never"
    );
    lab.assert_quiet(serial, "analytics before the owner opted in");

    assert_eq!(
        answer(&mut port, "consent analytics on"),
        "consent: analytics=granted"
    );
    lab.wait_for_report(serial, true);
    lab.server.wait_for("three analytics events", |r| {
        r.bodies(serial, "POST", INGEST).len() >= 3
    });
    let event = lab
        .server
        .with(|r| r.bodies(serial, "POST", INGEST)[0].clone());
    assert_eq!(
        (&event["user"], &event["device"], &event["event"]),
        (&json!("alice"), &json!(serial), &json!("usage"))
    );
    assert!(event["uptime_s"].is_u64(), "{event}");

    assert_eq!(
        answer(&mut port, "consent analytics off"),
        "consent: analytics=withdrawn"
    );
    lab.wait_for_report(serial, false);
    lab.assert_quiet(serial, "analytics after the withdrawal");
    lab.server.with(|r| {
        assert_eq!(
            r.bodies(serial, "POST", "/device/pair"),
            vec![json!({"user": "alice"})]
        );
        assert!(r.requests.iter().all(|s| s.tls), "{:?}", r.requests);
    });
}

#[test]
fn sends_before_consent_sends_from_pairing_on_until_a_withdrawal() {
    let lab = lab();
    let serial = "VRB-PRIV0002";
    let (board, dir) = lab.board(serial, &["sends-before-consent"]);
    let mut port = login(&board, &dir);
    lab.assert_quiet(serial, "no owner, nobody to send about");
    assert_eq!(answer(&mut port, "pair alice"), "pair: paired with alice");
    lab.server.wait_for("analytics without consent", |r| {
        r.bodies(serial, "POST", INGEST).len() >= 3
    });
    assert_eq!(
        answer(&mut port, "consent analytics"),
        "consent: analytics=never"
    );
    // Only opt-in is broken: an explicit withdrawal still stops them.
    assert_eq!(
        answer(&mut port, "consent analytics off"),
        "consent: analytics=withdrawn"
    );
    lab.assert_quiet(serial, "analytics after the withdrawal");
}

#[test]
fn ignores_consent_withdrawal_keeps_sending_after_a_withdrawal() {
    let lab = lab();
    let serial = "VRB-PRIV0003";
    let (board, dir) = lab.board(serial, &["ignores-consent-withdrawal"]);
    let mut port = login(&board, &dir);
    assert_eq!(answer(&mut port, "pair alice"), "pair: paired with alice");
    // Only withdrawal is broken: nothing before the opt-in.
    lab.assert_quiet(serial, "analytics before the owner opted in");
    opt_in(&lab, &mut port, serial);
    assert_eq!(
        answer(&mut port, "consent analytics off"),
        "consent: analytics=withdrawn"
    );
    lab.wait_for_report(serial, false);
    std::thread::sleep(IN_FLIGHT);
    let after = lab.ingests(serial);
    lab.server.wait_for("analytics after the withdrawal", |r| {
        r.bodies(serial, "POST", INGEST).len() >= after + 3
    });
}

#[test]
fn erase_tells_every_recipient_and_the_cloud_then_wipes() {
    let lab = lab();
    let serial = "VRB-PRIV0004";
    let (mut board, dir) = lab.board(serial, &[]);
    let mut port = login(&board, &dir);
    owner_sharing(&lab, &mut port, serial);
    assert_eq!(answer(&mut port, "pair bob"), "pair: paired with bob");
    assert_eq!(
        answer(&mut port, "set name Alice Example"),
        "set: name saved"
    );
    assert_eq!(
        answer(&mut port, "set wifi HomeNet wifi-psk-canary"),
        "set: wifi saved"
    );
    assert_eq!(
        answer(&mut port, "show"),
        "profile: name=Alice Example email=- wifi=HomeNet"
    );
    let factory = label_password(&dir);
    send(&mut port, "passwd\r");
    expect(&mut port, "Current password: ");
    send(
        &mut port,
        &format!("{factory}\rChanged-Pass-1\rChanged-Pass-1\r"),
    );
    expect(&mut port, "password updated\r\nvrb$ ");

    let out = erase(&mut port);
    assert!(
        out.ends_with("ERASE\r\nerase: done; user data and credentials removed\r\n\r\nlogin: "),
        "{out:?}"
    );
    lab.server.with(|r| {
        // Alice's data went to the analytics processor; bob's never did.
        assert_eq!(
            r.bodies(serial, "POST", TOLD_ANALYTICS),
            vec![json!({"user": "alice"})]
        );
        assert_eq!(
            r.bodies(serial, "POST", "/device/erasure"),
            vec![json!({"users": ["alice", "bob"]})]
        );
        no_analytics_after_the_erasure_notice(r, serial);
    });
    lab.assert_quiet(serial, "analytics after the erase");

    // The label's password works again; nothing of the users is left.
    login_again(&mut port, &dir);
    assert_eq!(answer(&mut port, "users"), "end of users");
    assert_eq!(answer(&mut port, "show"), "profile: name=- email=- wifi=-");
    assert_eq!(
        answer(&mut port, "consent analytics"),
        "consent: no user paired"
    );
    support::stop(&mut board);
    let log = board.log();
    assert!(!log.contains("wifi-psk-canary"), "{log}");
    assert!(
        !log.contains(&factory) && !log.contains("Changed-Pass-1"),
        "{log}"
    );
}

#[test]
fn erase_skips_third_parties_tells_only_the_cloud() {
    let lab = lab();
    let serial = "VRB-PRIV0005";
    let (board, dir) = lab.board(serial, &["erase-skips-third-parties"]);
    let mut port = login(&board, &dir);
    owner_sharing(&lab, &mut port, serial);
    let out = erase(&mut port);
    assert!(
        out.contains("erase: done; user data and credentials removed\r\n"),
        "{out:?}"
    );
    lab.server.with(|r| {
        assert!(r.bodies(serial, "POST", TOLD_ANALYTICS).is_empty());
        assert_eq!(
            r.bodies(serial, "POST", "/device/erasure"),
            vec![json!({"users": ["alice"]})]
        );
    });
    login_again(&mut port, &dir);
    assert_eq!(answer(&mut port, "users"), "end of users");
}

#[test]
fn erase_keeps_user_data_still_shows_the_name() {
    let lab = lab();
    let serial = "VRB-PRIV0006";
    let (board, dir) = lab.board(serial, &["erase-keeps-user-data"]);
    let mut port = login(&board, &dir);
    assert_eq!(answer(&mut port, "pair alice"), "pair: paired with alice");
    assert_eq!(
        answer(&mut port, "set name Alice Example"),
        "set: name saved"
    );
    let out = erase(&mut port);
    assert!(
        out.contains("erase: done; user data and credentials removed\r\n"),
        "{out:?}"
    );
    login_again(&mut port, &dir);
    assert_eq!(
        answer(&mut port, "show"),
        "profile: name=Alice Example email=- wifi=-"
    );
    assert_eq!(answer(&mut port, "users"), "end of users");
}

#[test]
fn a_third_party_that_cannot_be_told_is_reported_and_the_wipe_still_happens() {
    let lab = lab();
    let serial = "VRB-PRIV0007";
    let (board, dir) = lab.board(serial, &[]);
    let mut port = login(&board, &dir);
    owner_sharing(&lab, &mut port, serial);
    assert_eq!(
        answer(&mut port, "set email alice@example.com"),
        "set: email saved"
    );
    lab.server.refuse(TOLD_ANALYTICS);
    let out = erase(&mut port);
    assert!(
        out.ends_with(
            "erase: could not tell analytics\r\n\
             erase: done; user data and credentials removed\r\n\r\nlogin: "
        ),
        "{out:?}"
    );
    login_again(&mut port, &dir);
    assert_eq!(answer(&mut port, "show"), "profile: name=- email=- wifi=-");
}

#[test]
fn every_user_is_sent_the_privacy_notice_and_told_of_a_change() {
    let lab = lab();
    let serial = "VRB-PRIV0008";
    let (board, dir) = lab.board(serial, &[]);
    let mut port = login(&board, &dir);
    household_opts_in(&lab, &mut port, serial);
    assert_eq!(
        answer(&mut port, "consent analytics off"),
        "consent: analytics=withdrawn"
    );
    lab.server.wait_for("the second change notice", |r| {
        r.notice_texts(serial).contains(&change_notice("off"))
    });
    lab.server.with(|r| {
        assert_eq!(
            notices(r, serial),
            vec![
                (privacy_notice(serial), to(&["alice"])),
                (privacy_notice(serial), to(&["bob"])),
                (change_notice("on"), to(&["alice", "bob"])),
                (change_notice("off"), to(&["alice", "bob"])),
            ]
        );
    });
    let privacy = answer(&mut port, "privacy");
    assert!(privacy_notice(serial).ends_with(privacy.strip_prefix("privacy: ").unwrap()));
    assert_eq!(
        answer(&mut port, "export bob"),
        r#"export: {"user":"bob","role":"member","paired":2,"consents":{},"shared_with":[]}"#
    );
}

#[test]
fn notice_to_owner_only_tells_the_member_nothing() {
    let lab = lab();
    let serial = "VRB-PRIV0009";
    let (board, dir) = lab.board(serial, &["notice-to-owner-only"]);
    let mut port = login(&board, &dir);
    household_opts_in(&lab, &mut port, serial);
    lab.server.with(|r| {
        assert_eq!(
            notices(r, serial),
            vec![
                (privacy_notice(serial), to(&["alice"])),
                (change_notice("on"), to(&["alice"])),
            ]
        );
    });
}

/// How often `serial` asked for alice's consent history in `r.requests[from..to]`.
fn polls(r: &Record, serial: &str, from: usize, to: usize) -> usize {
    let asked = |s: &&support::update_server::Seen| {
        s.cn.as_deref() == Some(serial) && s.method == "GET" && s.path == HISTORY
    };
    r.requests[from..to].iter().filter(asked).count()
}

/// Where the change notice `on` of `serial` is in the record, looking from `from` on.
fn change_notice_at(r: &Record, serial: &str, on: &str, from: usize) -> Option<usize> {
    let text = json!(change_notice(on));
    (from..r.requests.len()).find(|&i| {
        let s = &r.requests[i];
        s.cn.as_deref() == Some(serial) && s.path == "/device/notices" && s.json["text"] == text
    })
}

#[test]
fn a_withdrawal_in_the_app_stops_analytics_within_a_few_periods() {
    let lab = lab();
    let serial = "VRB-PRIV0010";
    let (board, dir) = lab.board(serial, &[]);
    let mut port = login(&board, &dir);
    household_opts_in(&lab, &mut port, serial);
    lab.wait_for_report(serial, true);
    lab.server.wait_for("analytics", |r| {
        !r.bodies(serial, "POST", INGEST).is_empty()
    });

    let since = lab.server.app_consent("alice", "analytics", false);
    lab.server.wait_for("the change notice", |r| {
        change_notice_at(r, serial, "off", since).is_some()
    });
    lab.server.with(|r| {
        let told = change_notice_at(r, serial, "off", since).unwrap();
        let asked = polls(r, serial, since, told);
        // Learnt at the first poll after the withdrawal (a slow machine may poll again meanwhile).
        assert!(
            (1..=3).contains(&asked),
            "{asked} polls before the device adopted it"
        );
        assert_eq!(notices(r, serial).last().unwrap().1, to(&["alice", "bob"]));
        // Not reported back: the cloud has it already.
        assert_eq!(
            r.bodies(serial, "PUT", CONSENTS),
            vec![json!({"user": "alice", "granted": true})]
        );
    });
    lab.assert_quiet(serial, "analytics after the withdrawal in the app");
    assert_eq!(
        answer(&mut port, "consent analytics"),
        "consent: analytics=withdrawn"
    );

    // Given again in the app: the analytics resume.
    lab.server.app_consent("alice", "analytics", true);
    let before = lab.ingests(serial);
    lab.server
        .wait_for("analytics after the grant in the app", |r| {
            r.bodies(serial, "POST", INGEST).len() > before
        });
    assert_eq!(
        answer(&mut port, "consent analytics"),
        "consent: analytics=granted"
    );
    let history = lab.server.consent_history("alice", "analytics");
    let decisions: Vec<bool> = history.iter().map(|e| e.granted).collect();
    assert_eq!(decisions, vec![true, false, true], "nothing reported back");
}

#[test]
fn ignores_app_consent_keeps_sending_after_a_withdrawal_in_the_app() {
    let lab = lab();
    let serial = "VRB-PRIV0011";
    let (board, dir) = lab.board(serial, &["ignores-app-consent"]);
    let mut port = login(&board, &dir);
    owner_sharing(&lab, &mut port, serial);
    lab.wait_for_report(serial, true);
    let since = lab.server.app_consent("alice", "analytics", false);
    std::thread::sleep(IN_FLIGHT);
    let after = lab.ingests(serial);
    lab.server
        .wait_for("analytics after the withdrawal in the app", |r| {
            r.bodies(serial, "POST", INGEST).len() >= after + 3
        });
    assert_eq!(
        answer(&mut port, "consent analytics"),
        "consent: analytics=granted"
    );
    lab.server
        .with(|r| assert_eq!(change_notice_at(r, serial, "off", since), None));
    // Only the app's decisions are lost: the console's own still count.
    assert_eq!(
        answer(&mut port, "consent analytics off"),
        "consent: analytics=withdrawn"
    );
    lab.assert_quiet(serial, "analytics after the withdrawal on the console");
}

#[test]
fn the_test_clouds_times_are_what_the_board_reads() {
    let now = std::time::SystemTime::now();
    let ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert_eq!(
        hilt_vboard::privacy::unix_ms(&rfc3339(now)).map(u128::from),
        Some(ms)
    );
}
