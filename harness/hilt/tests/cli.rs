//! End-to-end: the `hilt` binary against the virtual reference board, real pseudo-terminals and real
//! signatures, checking exit codes, verdicts, reports and tamper detection.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

mod common;
use common::{hilt, root, text, verdict};

/// `hilt run --out OUT [EXTRA…] CASE --exact`.
fn run_exact(out: &Path, case: &str, extra: &[&str], keys: &Path) -> Output {
    let mut args = vec!["run", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend([case, "--exact"]);
    hilt(&args, keys)
}

/// `hilt run --board BOARD --out OUT CASE --exact`.
fn run_case(board: &Path, out: &Path, case: &str, keys: &Path) -> Output {
    run_exact(out, case, &["--board", board.to_str().unwrap()], keys)
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn full_run_passes_signs_and_detects_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = hilt(&["run", "--out", out.to_str().unwrap()], tmp.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&out);
    assert_eq!(r["summary"]["gate"], "CONFORMANT");
    assert_eq!(r["run"]["development_key"], true);
    for c in r["cases"].as_array().unwrap() {
        assert_eq!(c["verdict"], "PASS", "{c}");
        assert!(!c["evidence"].as_array().unwrap().is_empty());
    }
    let pubkey = tmp.path().join("dev-signing.pub.pem");
    let env = out.join("report.dsse.json");
    let ok = hilt(
        &[
            "verify",
            env.to_str().unwrap(),
            "--key",
            pubkey.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("CONFORMANT") && html.contains("sc.cloud.refuses-mitm"));
    let rendered = tmp.path().join("again.html");
    let o = hilt(
        &[
            "render",
            env.to_str().unwrap(),
            "--key",
            pubkey.to_str().unwrap(),
            "--out",
            rendered.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&rendered).unwrap(),
        html,
        "rendering is deterministic"
    );

    // One byte of evidence changed: verification fails and names the file.
    let ev = out.join("evidence/bf.console.lockout/console.log");
    let original = std::fs::read(&ev).unwrap();
    let mut bytes = original.clone();
    bytes[100] ^= 0x01;
    std::fs::write(&ev, &bytes).unwrap();
    let bad = hilt(
        &[
            "verify",
            env.to_str().unwrap(),
            "--key",
            pubkey.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad).contains("bf.console.lockout/console.log"),
        "{}",
        text(&bad)
    );
    std::fs::write(&ev, &original).unwrap();

    // One byte of the envelope changed: inside the payload or the signature it is a forged report
    // (exit 1); in a key of the envelope it is no longer an envelope at all, which is bad input (2).
    let env_bytes = std::fs::read(&env).unwrap();
    let text_of = String::from_utf8_lossy(&env_bytes);
    assert!(text_of[..20].contains("payload"), "{}", &text_of[..20]);
    let flipped = std::fs::read(&env).unwrap();
    let mut b = flipped.clone();
    b[4] ^= 0x01;
    std::fs::write(&env, &b).unwrap();
    let broken = hilt(
        &[
            "verify",
            env.to_str().unwrap(),
            "--key",
            pubkey.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(broken.status.code(), Some(2), "{}", text(&broken));
    let inside = |key: &str, by: usize| text_of.find(key).expect(key) + key.len() + by;
    for at in [inside("\"payload\": \"", 40), inside("\"sig\": \"", 10)] {
        let mut b = env_bytes.clone();
        b[at] ^= 0x01;
        std::fs::write(&env, &b).unwrap();
        let bad = hilt(
            &[
                "verify",
                env.to_str().unwrap(),
                "--key",
                pubkey.to_str().unwrap(),
            ],
            tmp.path(),
        );
        assert_eq!(bad.status.code(), Some(1), "flip at {at}: {}", text(&bad));
    }
}

#[test]
fn a_defect_fails_its_case_and_gates_with_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = run_exact(
        &out,
        "bf.console.lockout",
        &[
            "--defect",
            "no-login-rate-limit",
            "--junit",
            tmp.path().join("junit.xml").to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&out);
    assert_eq!(verdict(&r, "bf.console.lockout"), "FAIL");
    assert_eq!(r["summary"]["gate"], "NON_CONFORMANT");
    assert_eq!(r["board"]["defects"][0], "no-login-rate-limit");
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("<testcase name=\"bf.console.lockout\""),
        "{junit}"
    );
    assert!(
        junit.contains("<failure") && junit.contains("FAIL: "),
        "{junit}"
    );
    let en = r["provisions"]["en303645"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "5.1-5")
        .unwrap()
        .clone();
    assert_eq!(en["verdict"], "FAIL");
}

#[test]
fn malformed_profile_is_one_located_error_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root().join("boards/vboard.toml")).unwrap();
    let bad = good.replace("baud = 115200", "baud = 115200\nparity = \"none\"");
    let path = tmp.path().join("bad.toml");
    std::fs::write(&path, &bad).unwrap();
    let o = hilt(&["run", "--board", path.to_str().unwrap()], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let line = bad.lines().position(|l| l.starts_with("parity")).unwrap() + 1;
    assert!(err.contains(&format!("bad.toml:{line}:")), "{err}");
    assert!(err.contains("parity"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn malformed_scenario_is_located_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("suite");
    for d in ["boards", "test-cases/x", "fixtures"] {
        std::fs::create_dir_all(suite.join(d)).unwrap();
    }
    std::fs::copy(
        root().join("boards/vboard.toml"),
        suite.join("boards/vboard.toml"),
    )
    .unwrap();
    std::fs::write(
        suite.join("test-cases/x/broken.toml"),
        "schema = 1\nid = \"x\"\ntitle = 3\n",
    )
    .unwrap();
    let o = hilt(&["run", "--suite", suite.to_str().unwrap()], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("broken.toml:3:"), "{err}");
}

#[test]
fn ics_drives_applicability_and_fails_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root().join("boards/vboard.toml")).unwrap();
    // Feature (e) absent and 5.1-5 N/A with a rationale: the brute-force case does not apply.
    let na = good
        .replace("\ne = true ", "\ne = false ")
        .replace("\"5.1-5\" = { support = \"Y\", detail = \"lockout after consecutive failures, persisted across reboot\" }", "\"5.1-5\" = { support = \"N/A\", detail = \"no authentication over a network interface\" }");
    let p = tmp.path().join("na.toml");
    std::fs::write(&p, na).unwrap();
    let out = tmp.path().join("na");
    let o = run_case(&p, &out, "bf.console.lockout", tmp.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&out);
    assert_eq!(verdict(&r, "bf.console.lockout"), "NOT_APPLICABLE");
    let en = r["provisions"]["en303645"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "5.1-5")
        .unwrap()
        .clone();
    assert_eq!(en["verdict"], "NOT_APPLICABLE");

    // Feature (e) not declared at all: undecided, so NOT_TESTED and exit 3, never PASS.
    let undeclared = good.replace("\ne = true ", "\n# e undeclared ");
    std::fs::write(&p, undeclared).unwrap();
    let out = tmp.path().join("nt");
    let o = run_case(&p, &out, "bf.console.lockout", tmp.path());
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(verdict(&report(&out), "bf.console.lockout"), "NOT_TESTED");
}

#[test]
fn a_silent_device_is_an_error_not_a_fail() {
    // A real pseudo-terminal whose device end never answers.
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = nix::unistd::ttyname(&pty.slave).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root().join("boards/vboard.toml")).unwrap();
    let launch_start = good.find("[launch]").unwrap();
    let launch_end = good.find("# --- ICS").unwrap();
    let silent = format!("{}{}", &good[..launch_start], &good[launch_end..])
        .replace(
            "usb = { vid = \"0x1209\", pid = \"0x0001\", serial = \"{unit.serial}\", interface = 0 }\nbus = \"{state}/usb.json\"\nreattach_ms = 5000",
            &format!("path = \"{}\"", slave.display()),
        )
        .replace("timeout_ms = 8000", "timeout_ms = 300")
        // Any variable hilt() sets will do as the unit's password: the device never gets to check it.
        .replace(
            "password = { file = \"{state}/label.txt\", key = \"password\" }",
            "password = { env = \"HILT_DEV_KEY_DIR\" }",
        );
    let p = tmp.path().join("silent.toml");
    std::fs::write(&p, silent).unwrap();
    let out = tmp.path().join("run");
    let o = run_case(&p, &out, "bf.console.lockout", tmp.path());
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let r = report(&out);
    assert_eq!(verdict(&r, "bf.console.lockout"), "ERROR");
    assert_eq!(r["summary"]["gate"], "UNDECIDED");
    drop(pty);
}

#[test]
fn list_and_filter_behave_like_cargo_test() {
    let tmp = tempfile::tempdir().unwrap();
    let o = hilt(&["run", "--list"], tmp.path());
    assert_eq!(o.status.code(), Some(0));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("bf.console.lockout") && s.contains("pw.console.no-universal-default"),
        "{s}"
    );
    let o = hilt(&["run", "--list", "pw."], tmp.path());
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("pw.console") && !s.contains("bf.console"), "{s}");
    let o = hilt(&["run", "--list", "--skip", "pw."], tmp.path());
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(!s.contains("pw.console") && s.contains("bf.console"), "{s}");
    assert_eq!(
        hilt(&["run", "--no-such-flag"], tmp.path()).status.code(),
        Some(2)
    );
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_can_read_and_run_signs_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    let o = hilt(
        &["keygen", "--out", keys.to_str().unwrap(), "--name", "lab"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mode = std::fs::metadata(keys.join("lab.key.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let again = hilt(
        &["keygen", "--out", keys.to_str().unwrap(), "--name", "lab"],
        tmp.path(),
    );
    assert_eq!(again.status.code(), Some(2), "must not overwrite a key");
    let out = tmp.path().join("run");
    let key = keys.join("lab.key.pem");
    let o = run_exact(
        &out,
        "bf.console.lockout",
        &["--key", key.to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(report(&out)["run"]["development_key"], false);
    let env = out.join("report.dsse.json");
    let v = hilt(
        &[
            "verify",
            env.to_str().unwrap(),
            "--key",
            keys.join("lab.pub.pem").to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    // Another key's public half does not verify it.
    hilt(
        &["keygen", "--out", keys.to_str().unwrap(), "--name", "other"],
        tmp.path(),
    );
    let v = hilt(
        &[
            "verify",
            env.to_str().unwrap(),
            "--key",
            keys.join("other.pub.pem").to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(v.status.code(), Some(1));
    // An existing report directory is never overwritten.
    let o = run_exact(&out, "bf.console.lockout", &[], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn selftest_catches_every_defect_with_the_machine_busy() {
    let tmp = tempfile::tempdir().unwrap();
    // Every board of the selftest runs at once; two spinning threads beside them take both cores of
    // the build machine, so every declared timer and window must hold with margin under load.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    let o = hilt(&["selftest", "--json"], tmp.path());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for (id, v) in j["reference"].as_object().unwrap() {
        assert!(v == "PASS" || v == "NOT_APPLICABLE", "{id}: {v}");
    }
    let defects = j["defects"].as_object().unwrap();
    assert!(defects.len() >= 2);
    for (name, d) in defects {
        for (case, item) in d["targets"].as_object().unwrap() {
            assert_eq!(d["verdicts"][case], "FAIL", "{name} must fail {case}");
            let failing = d["failing"][case].as_array().unwrap();
            assert!(
                failing.contains(item),
                "{name}: {case} must fail at {item}: {failing:?}"
            );
        }
    }
    assert_eq!(
        j["problems"].as_array().map(Vec::len),
        Some(0),
        "{}",
        j["problems"]
    );
}
