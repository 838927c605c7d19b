//! The board's update agent against a small HTTPS update server with a per-run PKI, offered the
//! genuine release and each bad variant, driven through the board's real console.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use hilt_cloud::Pki;
use hilt_report::keys::{KeyPair, public_pem};
use hilt_update::variant::{Build, Publisher, Variant};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::update_server::UpdateServer;
use support::{Board, command, expect, send, spawn};

const RISK: &str = "fixes remote code execution in the web UI";

struct Lab {
    dir: tempfile::TempDir,
    pki: Pki,
    vendor: KeyPair,
    foreign: KeyPair,
    newer: Build,
    older: Build,
    server: UpdateServer,
    ca: PathBuf,
    vendor_pub: PathBuf,
}

fn lab() -> Lab {
    lab_presenting(false)
}

/// A lab whose update server presents the run CA's certificate, or (`untrusted`) an impostor's.
fn lab_presenting(untrusted: bool) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&["127.0.0.1".into()]).unwrap();
    let server = UpdateServer::start(pki.server_config(untrusted, &[b"http/1.1"]).unwrap());
    let vendor = KeyPair::from_seed(&[11; 32]);
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let vendor_pub = dir.path().join("vendor.pub.pem");
    std::fs::write(&vendor_pub, public_pem(&vendor.verifying_key())).unwrap();
    Lab {
        pki,
        vendor,
        foreign: KeyPair::from_seed(&[12; 32]),
        newer: Build {
            version: "1.1.0".into(),
            security_version: 2,
            advisory: Some(RISK.into()),
            image: (0..20_000u32).map(|i| (i * 13 % 251) as u8).collect(),
        },
        older: Build {
            version: "0.9.0".into(),
            security_version: 0,
            advisory: None,
            image: vec![0x42; 5000],
        },
        server,
        ca,
        vendor_pub,
        dir,
    }
}

impl Lab {
    fn offer(&self, variant: Variant) {
        let (https, http) = (self.server.https_base(), self.server.http_base());
        let publisher = Publisher {
            model: "VRB-1",
            vendor: &self.vendor,
            foreign: &self.foreign,
            newer: &self.newer,
            older: &self.older,
            https_base: &https,
            http_base: &http,
        };
        self.server.offer(Some(publisher.offer(variant)));
    }

    /// A board in its own directory `name`, with a client certificate for `serial`.
    fn board(&self, name: &str, serial: &str, extra: &[&str]) -> (Board, PathBuf) {
        let dir = self.dir.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let client = self.pki.issue_client(serial).unwrap();
        let (cert, key) = (dir.join("client.pem"), dir.join("client.key"));
        std::fs::write(&cert, &client.cert_pem).unwrap();
        std::fs::write(&key, &client.key_pem).unwrap();
        let url = self.server.https_base();
        let mut args: Vec<&str> = vec![
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
            "--update-warn-ms",
            "300",
        ];
        args.extend_from_slice(extra);
        (spawn(&dir, &args, "info"), dir)
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn open(board: &Board) -> serialport::TTYPort {
    serialport::new(&board.pty, 115_200)
        .timeout(Duration::from_millis(100))
        .open_native()
        .expect("open pty slave")
}

/// Logs in at a login prompt that was already read (asks for a fresh one first).
fn login_again(port: &mut serialport::TTYPort, dir: &Path) {
    let label = std::fs::read_to_string(dir.join("unit/label.txt")).unwrap();
    let password = label
        .lines()
        .find_map(|l| l.strip_prefix("password="))
        .unwrap();
    send(port, "\r");
    expect(port, "login: ");
    send(port, &format!("admin\r{password}\r"));
    expect(port, "vrb$ ");
}

fn login(board: &Board, dir: &Path) -> serialport::TTYPort {
    let mut port = open(board);
    expect(&mut port, "login: ");
    login_again(&mut port, dir);
    port
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

fn stop(board: &mut Board) {
    kill(Pid::from_raw(board.child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + support::TIMEOUT;
    while board.child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "board did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_genuine_update_is_announced_and_installed_on_request() {
    let lab = lab();
    let (mut board, dir) = lab.board("unit", "VRB-UPD00001", &[]);
    let mut port = login(&board, &dir);
    assert_eq!(
        answer(&mut port, "update status"),
        "update: running=1.0.0 security_version=1 slot=A auto=on"
    );
    assert_eq!(
        answer(&mut port, "update check"),
        "update: none available (running 1.0.0)"
    );
    assert_eq!(
        answer(&mut port, "update install"),
        "update: nothing to install"
    );

    lab.offer(Variant::Genuine);
    assert_eq!(
        answer(&mut port, "update check"),
        format!("update: available 1.1.0 (security update): {RISK}")
    );
    let available = format!("security update 1.1.0 available: {RISK}");
    let out = command(&mut port, "notices");
    assert!(
        out.contains(&format!("notice 1: {available}\r\nend of notices\r\n")),
        "{out}"
    );
    lab.server.wait_for("the available notice", |r| {
        r.notice_texts("VRB-UPD00001").contains(&available)
    });

    send(&mut port, "update install\r");
    expect(
        &mut port,
        "update: installing 1.1.0; the device restarts in 1 s\r\nvrb$ ",
    );
    let out = expect(&mut port, "login: ");
    assert!(out.contains("rebooting...\r\n"), "{out}");
    assert!(
        out.contains("VRB-1 virtual reference board, firmware 1.1.0\r\n"),
        "{out}"
    );
    login_again(&mut port, &dir);
    assert!(command(&mut port, "info").contains(" fw=1.1.0\r\n"));
    assert_eq!(
        answer(&mut port, "update status"),
        "update: running=1.1.0 security_version=2 slot=B auto=on"
    );
    let out = command(&mut port, "notices");
    let installed = format!("security update 1.1.0 installed: {RISK}");
    assert!(
        out.contains(&format!(
            "notice 1: {installed}\r\nnotice 2: {available}\r\nend of notices\r\n"
        )),
        "{out}"
    );
    let slot_b = std::fs::read(dir.join("unit/slot-b.bin")).unwrap();
    assert_eq!(slot_b, lab.newer.image);
    lab.server.wait_for("the installed notice", |r| {
        r.notice_texts("VRB-UPD00001").contains(&installed)
    });
    lab.server.with(|r| {
        let warning = "*** update: the device restarts in 1 s to install 1.1.0 ***";
        assert!(r.notice_texts("VRB-UPD00001").iter().any(|t| t == warning));
        // Every exchange was HTTPS with the unit's own certificate and a Host header.
        let host = lab.server.https.to_string();
        for seen in &r.requests {
            assert!(seen.tls, "{seen:?}");
            assert_eq!(seen.cn.as_deref(), Some("VRB-UPD00001"), "{seen:?}");
            assert_eq!(seen.host.as_deref(), Some(host.as_str()), "{seen:?}");
        }
        // The boot check after the restart found the release it now runs.
        assert!(r.manifest_requests("VRB-UPD00001") >= 3);
    });
    stop(&mut board);
    let log = board.log();
    assert!(!log.contains("PRIVATE KEY"), "{log}");
}

#[test]
fn bad_offers_are_rejected_and_nothing_is_installed() {
    let lab = lab();
    let (mut board, dir) = lab.board("unit", "VRB-UPD00002", &[]);
    let mut port = login(&board, &dir);
    let cases = [
        (Variant::Tampered, "1.1.0", "the image's SHA-256 is"),
        (
            Variant::ForeignSigned,
            "1.1.0",
            "which the device does not trust",
        ),
        (Variant::Unsigned, "1.1.0", "the manifest is not signed"),
        (Variant::Downgrade, "0.9.0", "(a rollback)"),
        (Variant::InsecureChannel, "1.1.0", "not HTTPS"),
    ];
    for (variant, version, reason) in cases {
        lab.offer(variant);
        let line = answer(&mut port, "update check");
        let prefix = format!("update: rejected {version}: ");
        assert!(
            line.starts_with(&prefix) && line.contains(reason),
            "{variant:?}: {line}"
        );
        assert_eq!(
            answer(&mut port, "update install"),
            "update: nothing to install"
        );
    }
    send(&mut port, "reboot\r");
    let out = expect(&mut port, "login: ");
    assert!(
        out.contains("rebooting...\r\n") && out.contains("firmware 1.0.0\r\n"),
        "{out}"
    );
    login_again(&mut port, &dir);
    assert!(command(&mut port, "info").contains(" fw=1.0.0\r\n"));
    assert!(!dir.join("unit/slot-b.bin").exists());
    lab.server.with(|r| {
        // The tampered image was fetched and refused; the plain-HTTP one never was.
        assert!(
            r.requests
                .iter()
                .any(|s| s.path.ends_with("/VRB-1-1.1.0.bin"))
        );
        assert!(r.requests.iter().all(|s| s.tls), "{:?}", r.requests);
        assert!(r.notices.is_empty(), "{:?}", r.notices);
    });
    stop(&mut board);
    assert!(board.log().contains("update rejected"));
}

#[test]
fn installs_automatically_while_nobody_is_logged_in() {
    let lab = lab();
    lab.offer(Variant::Genuine);
    let (loud, loud_dir) = lab.board("loud", "VRB-UPD00003", &[]);
    let (quiet, quiet_dir) = lab.board("silent", "VRB-UPD00004", &["--defect", "silent-update"]);
    let warning = "\r\n*** update: the device restarts in 1 s to install 1.1.0 ***\r\n";
    let available = format!("security update 1.1.0 available: {RISK}");
    let installed = format!("security update 1.1.0 installed: {RISK}");
    for (board, dir, serial, silent) in [
        (&loud, &loud_dir, "VRB-UPD00003", false),
        (&quiet, &quiet_dir, "VRB-UPD00004", true),
    ] {
        let mut port = open(board);
        let out = expect(&mut port, "firmware 1.1.0");
        assert!(out.contains(warning), "{out}");
        assert!(out.contains("rebooting...\r\n"), "{out}");
        login_again(&mut port, dir);
        assert!(command(&mut port, "info").contains(" fw=1.1.0\r\n"));
        let notices = command(&mut port, "notices");
        let cloud = lab.server.with(|r| r.notice_texts(serial));
        assert!(cloud.iter().any(|t| t == warning.trim()), "{cloud:?}");
        if silent {
            assert!(
                notices.contains("notices\r\nend of notices\r\n"),
                "{notices}"
            );
            assert_eq!(cloud.len(), 1, "only the warning: {cloud:?}");
        } else {
            let both = format!("notice 1: {installed}\r\nnotice 2: {available}\r\n");
            assert!(notices.contains(&both), "{notices}");
            lab.server.wait_for("the installed notice", |r| {
                r.notice_texts(serial).contains(&installed)
            });
            assert!(cloud.contains(&available), "{cloud:?}");
        }
    }
}

#[test]
fn autoupdate_off_keeps_the_running_firmware() {
    let lab = lab();
    lab.offer(Variant::Genuine);
    let serial = "VRB-UPD00005";
    let (board, dir) = lab.board(
        "unit",
        serial,
        &["--defect", "auto-update-off", "--update-check-ms", "200"],
    );
    let mut port = login(&board, &dir);
    assert_eq!(answer(&mut port, "autoupdate"), "autoupdate: off");
    assert_eq!(answer(&mut port, "autoupdate on"), "autoupdate: on");
    assert_eq!(answer(&mut port, "autoupdate off"), "autoupdate: off");
    send(&mut port, "exit\r");
    expect(&mut port, "login: ");
    // Logged out, update verified again on every check, yet never installed.
    let seen = lab.server.with(|r| r.manifest_requests(serial));
    lab.server.wait_for("three more checks", |r| {
        r.manifest_requests(serial) >= seen + 3
    });
    login_again(&mut port, &dir);
    assert!(command(&mut port, "info").contains(" fw=1.0.0\r\n"));
    assert_eq!(
        answer(&mut port, "update status"),
        "update: running=1.0.0 security_version=1 slot=A auto=off"
    );
}

#[test]
fn checks_periodically_unless_no_periodic_check() {
    let lab = lab();
    let args = ["--update-check-ms", "200"];
    let (_periodic, _) = lab.board("periodic", "VRB-UPD00006", &args);
    let mut once = args.to_vec();
    once.extend(["--defect", "no-periodic-check"]);
    let (_once, _) = lab.board("once", "VRB-UPD00007", &once);
    lab.server
        .wait_for("three periodic checks after the boot check", |r| {
            r.manifest_requests("VRB-UPD00006") >= 4 && r.manifest_requests("VRB-UPD00007") >= 1
        });
    // Both booted together: in the same ~600 ms the defect board checked only at boot.
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(lab.server.with(|r| r.manifest_requests("VRB-UPD00007")), 1);
}

#[test]
fn the_banner_states_the_support_period_unless_the_defect_hides_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let conformant = spawn(&a, &[], "warn");
    let hidden = spawn(&b, &["--defect", "no-support-period"], "warn");

    let mut port = open(&conformant);
    let out = expect(&mut port, "login: ");
    assert!(
        out.ends_with("firmware 1.0.0\r\n\r\nVRB-1 security updates until 2030-12-31\r\nlogin: "),
        "{out:?}"
    );
    send(&mut port, "\r");
    assert!(
        expect(&mut port, "login: ")
            .ends_with("\r\nVRB-1 security updates until 2030-12-31\r\nlogin: ")
    );
    login_again(&mut port, &a);
    assert_eq!(
        answer(&mut port, "update check"),
        "update: no update service configured"
    );

    let mut port = open(&hidden);
    let out = expect(&mut port, "login: ");
    assert!(out.ends_with("firmware 1.0.0\r\n\r\nlogin: "), "{out:?}");
    send(&mut port, "\r");
    let out = expect(&mut port, "login: ");
    assert!(!out.contains("security updates until"), "{out:?}");
}

#[test]
fn an_impostor_update_server_is_refused_even_under_accepts_untrusted_cert() {
    let lab = lab_presenting(true);
    lab.offer(Variant::Genuine);
    // The MQTT defect must not reach the update agent, whose TLS trusts only the run CA.
    let (board, dir) = lab.board(
        "unit",
        "VRB-UPD00008",
        &["--defect", "accepts-untrusted-cert"],
    );
    let mut port = login(&board, &dir);
    let line = answer(&mut port, "update check");
    assert!(
        line.starts_with("update: check failed: manifest: TLS with "),
        "{line}"
    );
    assert!(
        line.contains("certificate") && line.chars().count() <= 200,
        "{line}"
    );
    lab.server
        .with(|r| assert!(r.requests.is_empty(), "{:?}", r.requests));
    assert!(command(&mut port, "info").contains(" fw=1.0.0\r\n"));
}
