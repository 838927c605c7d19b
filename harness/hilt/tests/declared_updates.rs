//! A real product's profile declares the manufacturer's own signed test images: hilt offers the
//! variants it can make from them through a real mock cloud (a byte flipped at the declared offset for
//! `tampered`), and the variants it cannot make are NOT_TESTED with the reason, never skipped. The
//! device is scripted; the suite's own update scenarios run unchanged.

use hilt::cloud::CloudSession;
use hilt::events::Discard;
use hilt::exec::{CaseControl, run_case};
use hilt::fake::{FakeBench, Reply};
use hilt::suite::{Case, SuiteRoot};
use hilt_link::Cancel;
use hilt_model::Verdict;
use hilt_model::profile::BoardProfile;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

const PROFILE: &str = r#"
schema = 1
[board]
name = "acme-cam"
[identity]
manufacturer = "Acme"
model = "ACME-CAM"
hardware_version = "1"
firmware_version = "2.0.0"
[[unit]]
serial = "ACME-0001"
credentials.console = { username = "admin", password = { env = "HILT_TEST_UNUSED" } }
[links.console]
kind = "serial"
path = "/dev/null"
[links.cloud]
kind = "cloud"
[ics.features]
g = true
j = true
[ics.conditions]
15 = true
[ics.provisions]
"5.3-2" = { support = "Y", detail = "signed images" }
"5.3-7" = { support = "Y", detail = "TLS to the update host" }
"5.3-9" = { support = "Y", detail = "signature and digest checked before install" }
"5.3-10" = { support = "Y", detail = "signed images over HTTPS" }
[ixit."1-AuthMech".console]
"Description" = "console login"
"Brute Force Prevention" = { description = "none needed here", lockout_ms = 100 }
[ixit."7-UpdMech".ota]
"Description" = "HTTPS from the mock cloud"
"Update Checking" = { description = "every 100 ms on the bench", interval_ms = 100 }
[bindings.login]
link = "console"
timeout_ms = 500
[[bindings.login.steps]]
send = "{username}:{password}\r"
[[bindings.login.steps]]
expect = { accepted = 'OK\n', rejected = 'NO\n', locked = 'LOCKED\n' }
outcome = true
[bindings.logout]
link = "console"
timeout_ms = 500
[[bindings.logout.steps]]
send = "bye\r"
[[bindings.logout.steps]]
expect = 'BYE\n'
[bindings.identify]
link = "console"
timeout_ms = 500
[[bindings.identify.steps]]
send = "info\r"
[[bindings.identify.steps]]
expect = 'fw=(?P<firmware>\S+)\n'
[bindings.reboot]
link = "console"
timeout_ms = 500
[[bindings.reboot.steps]]
send = "reboot\r"
[[bindings.reboot.steps]]
expect = 'BOOTED\n'
[bindings.check-update]
link = "console"
timeout_ms = 500
[[bindings.check-update.steps]]
send = "check\r"
[[bindings.check-update.steps]]
expect = { none = 'NONE\n', available = 'AVAILABLE\n', rejected = 'REJECTED (?P<detail>[^\n]*)\n', failed = 'FAILED\n' }
outcome = true
[update]
offers = "declared"
serve_at = "/update/acme-cam/firmware.bin"
newer = { file = "images/cam-2.1.0.bin", version = "2.1.0" }
older = { file = "images/cam-1.9.0.bin", version = "1.9.0" }
tampered = { flip_offset = 100 }
foreign_signed = { file = "images/cam-2.1.0-foreign.bin" }
"#;

fn newer_image() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 7 % 256) as u8).collect()
}

/// The profile beside its images, in `dir`.
fn profile(dir: &Path) -> BoardProfile {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("cam-2.1.0.bin"), newer_image()).unwrap();
    std::fs::write(images.join("cam-1.9.0.bin"), vec![0x19; 2048]).unwrap();
    std::fs::write(images.join("cam-2.1.0-foreign.bin"), vec![0xf0; 4096]).unwrap();
    let path = dir.join("acme-cam.toml");
    std::fs::write(&path, PROFILE).unwrap();
    BoardProfile::load(&path).expect("the declared-images profile loads")
}

/// A camera that refuses every update it is asked to check and keeps running 2.0.0.
fn camera(line: &str) -> Reply {
    match line {
        "admin:cam-pw-5678" => Reply::say("OK\n"),
        "bye" => Reply::say("BYE\n"),
        "info" => Reply::say("fw=2.0.0\n"),
        "reboot" => Reply::say("BOOTED\n"),
        "check" => Reply::say("REJECTED signature does not verify\n"),
        _ => Reply::say("?\n"),
    }
}

fn update_case(root: &SuiteRoot, id: &str) -> Arc<Case> {
    root.scenarios()
        .expect("the suite loads")
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

#[test]
fn declared_images_make_the_variants_they_can_and_the_rest_are_not_tested_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let profile = profile(dir.path());
    let state = tempfile::tempdir().unwrap();
    let cloud = CloudSession::start(
        std::net::Ipv4Addr::LOCALHOST.into(),
        &["ACME-0001".to_string()],
        state.path(),
        hilt_cloud::FlowLog::new(),
    )
    .unwrap();
    let bench = FakeBench::new(profile)
        .password("console", "cam-pw-5678")
        .device("console", || camera)
        .with_cloud(cloud);
    let root = SuiteRoot {
        root: Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
    };
    let ctl = CaseControl {
        cancel: Cancel::new(),
        events: &Discard,
    };
    let run = |id: &str| run_case(&bench, &update_case(&root, id), &ctl);

    for id in [
        "up.update.rejects-tampered",
        "up.update.rejects-foreign-signed",
        "up.update.rejects-downgrade",
    ] {
        let r = run(id).result;
        assert_eq!(r.verdict, Verdict::Pass, "{id}: {}", r.reason);
        let offer = r
            .steps
            .iter()
            .find(|s| s.id == "offer")
            .expect("offer step");
        let caps = &offer.attempts[0].captures;
        assert!(
            caps["url"].ends_with("/update/acme-cam/firmware.bin"),
            "{caps:?}"
        );
        if id.ends_with("tampered") {
            let mut flipped = newer_image();
            flipped[100] ^= 0x01;
            assert_eq!(caps["image_sha256"], hex::encode(Sha256::digest(&flipped)));
            assert_eq!(caps["version"], "2.1.0");
        }
        if id.ends_with("downgrade") {
            assert_eq!(caps["version"], "1.9.0");
        }
    }
    // Withdrawn when each case ended: nothing is left on the update server.
    let served = bench_cloud_files(&bench);
    assert!(served.is_empty(), "{served:?}");

    for (id, why) in [
        ("up.update.rejects-unsigned", "declares no unsigned image"),
        ("up.update.refuses-insecure-channel", "plain HTTP"),
    ] {
        let r = run(id).result;
        assert_eq!(r.verdict, Verdict::NotTested, "{id}: {}", r.reason);
        assert!(r.reason.contains(why), "{id}: {}", r.reason);
        assert!(
            r.steps.is_empty(),
            "{id}: nothing may be done to the device"
        );
    }
}

fn bench_cloud_files(bench: &FakeBench) -> Vec<String> {
    use hilt::exec::Bench;
    bench.cloud().expect("cloud").state.update_files()
}
