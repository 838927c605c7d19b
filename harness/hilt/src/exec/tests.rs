//! The executor's verdict logic against scripted fake devices: applicability, attempts, retries,
//! early stops, budgets, interrupts and masking-proof FAILs, with no board and no cloud.

use hilt_link::Cancel;
use hilt_model::Verdict;
use hilt_model::profile::BoardProfile;
use hilt_model::scenario::Scenario;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{CaseControl, CaseRun, run_case};
use crate::events::{Discard, RunEvent};
use crate::fake::{FakeBench, Reply};
use crate::suite::Case;

const PROFILE: &str = r#"
schema = 1
[board]
name = "fake"
[identity]
manufacturer = "Test"
model = "FAKE-1"
hardware_version = "1"
firmware_version = "1"
[[unit]]
serial = "FAKE-0001"
credentials.console = { username = "admin", password = { env = "HILT_TEST_UNUSED" } }
[links.console]
kind = "serial"
path = "/dev/null"
[ics.features]
a = true
d = true
e = true
[ics.conditions]
14 = true
[ics.provisions]
"5.1-1" = { support = "Y", detail = "per-unit" }
"5.1-5" = { support = "Y", detail = "lockout" }
[ixit."1-AuthMech".console]
"Description" = "console login"
"Brute Force Prevention" = { description = "3 failures, 200 ms lockout", max_failures = 3, lockout_ms = 200 }
[bindings.login]
link = "console"
timeout_ms = 300
[[bindings.login.steps]]
send = "{username}:{password}\r"
[[bindings.login.steps]]
expect = { accepted = 'OK\n', rejected = 'NO\n', locked = 'LOCKED\n' }
outcome = true
[bindings.logout]
link = "console"
timeout_ms = 300
[[bindings.logout.steps]]
send = "bye\r"
[[bindings.logout.steps]]
expect = 'BYE\n'
"#;

const IDENTIFY: &str = r#"
[bindings.identify]
link = "console"
timeout_ms = 300
[[bindings.identify.steps]]
send = "info\r"
[[bindings.identify.steps]]
expect = 'model=(?P<model>\S+)\n'
"#;

/// A case that reads the model designation and compares it with the declared one.
const IDENTIFY_CASE: &str = r#"
[provisions]
en303645 = ["5.1-1"]
[[step]]
id = "who"
action = "identify"
with = {}
[[check]]
kind = "capture-equals"
step = "who"
capture = "model"
expected = "FAKE-1"
"#;

/// A one-unit serial board with login and logout bindings, and no cloud.
pub(super) fn profile() -> BoardProfile {
    BoardProfile::parse(Path::new("fake.toml"), PROFILE).expect("test profile")
}

fn profile_with_identify() -> BoardProfile {
    BoardProfile::parse(Path::new("fake.toml"), &format!("{PROFILE}{IDENTIFY}"))
        .expect("test profile")
}

/// A scenario file around `body` (its provisions, applicability, steps and checks).
fn scenario_text(body: &str) -> String {
    format!(
        "schema = 1\nid = \"t.case\"\ntitle = \"t\"\nkind = \"functional\"\npurpose = \"p\"\npass_criteria = \"c\"\n{body}"
    )
}

fn scenario(dir: &Path, body: &str) -> Case {
    let text = scenario_text(body);
    Case::new(Scenario::parse(&dir.join("t.toml"), &text, dir).expect("test scenario"))
        .expect("test checks")
}

fn run(bench: &FakeBench, s: &Case) -> CaseRun {
    let ctl = CaseControl {
        cancel: Cancel::new(),
        events: &Discard,
    };
    run_case(bench, s, &ctl)
}

const DEFAULTS_STEP: &str = r#"
[provisions]
en303645 = ["5.1-1"]
[applicability]
features = ["a", "d"]
[[step]]
id = "defaults"
action = "login"
for_each = "fixture:defaults.csv"
with = { username = "{row.username}", password = "{row.password}" }
expect = ["rejected"]
retry = { on = ["locked"], wait_ms = "{ixit:1-AuthMech/console/Brute Force Prevention/lockout_ms}", max = 2 }
"#;

fn fixture(dir: &Path, rows: &[&str]) {
    std::fs::write(
        dir.join("defaults.csv"),
        format!("username,password\n{}\n", rows.join("\n")),
    )
    .unwrap();
}

/// Answers a login line `user:pass` with the reply `answer` picks.
fn device(answer: impl Fn(&str, &str) -> Reply + Send + Sync + Copy + 'static) -> FakeBench {
    FakeBench::new(profile())
        .password("console", "unit-pw-1234")
        .device("console", move || {
            move |line: &str| match line.split_once(':') {
                Some((u, p)) => answer(u, p),
                None if line == "bye" => Reply::say("BYE\n"),
                None => Reply::Silent,
            }
        })
}

#[test]
fn an_accepted_default_stays_fail_when_the_device_then_goes_silent() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), &["root,xc3511", "admin,admin"]);
    let bench = device(|u, p| {
        if (u, p) == ("root", "xc3511") {
            Reply::say("OK\n")
        } else {
            Reply::Silent
        }
    });
    let r = run(&bench, &scenario(dir.path(), DEFAULTS_STEP)).result;
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    assert!(
        r.reason.contains("xc3511") || r.reason.contains("root"),
        "{}",
        r.reason
    );
    let attempts = &r.steps[0].attempts;
    assert_eq!(attempts.len(), 2, "both attempts are in the result");
    assert_eq!(attempts[0].outcome.as_deref(), Some("accepted"));
    assert_eq!(attempts[0].conforms, Some(false));
    assert!(
        attempts[1].error.is_some(),
        "the silent attempt records its error"
    );
    assert!(
        r.notes.iter().any(|n| n.contains("ERROR")),
        "the later trouble is noted beside the FAIL: {:?}",
        r.notes
    );
}

#[test]
fn a_device_locked_for_good_is_inconclusive_at_once_not_after_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..200).map(|i| format!("user{i},pw{i}")).collect();
    fixture(
        dir.path(),
        &rows.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let bench = device(|_, _| Reply::say("LOCKED\n"));
    let started = Instant::now();
    let r = run(&bench, &scenario(dir.path(), DEFAULTS_STEP)).result;
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.reason);
    assert!(r.reason.contains("199 further attempt"), "{}", r.reason);
    assert_eq!(r.steps[0].attempts.len(), 1);
    assert_eq!(r.steps[0].attempts[0].retries, 2);
    // Two 200 ms waits and three answers: far from 200 rows × 3 retries.
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(r.budget_ms.is_some_and(|b| b > 0));
}

#[test]
fn rejected_defaults_and_nothing_else_pass() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), &["root,xc3511", "admin,admin"]);
    let bench = device(|_, _| Reply::say("NO\n"));
    let r = run(&bench, &scenario(dir.path(), DEFAULTS_STEP)).result;
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
    assert_eq!(r.steps[0].attempts.len(), 2);
    assert!(r.steps[0].ended_ms.is_some());
}

#[test]
fn a_device_that_never_answers_is_error_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), &["root,xc3511"]);
    let bench = device(|_, _| Reply::Silent);
    let r = run(&bench, &scenario(dir.path(), DEFAULTS_STEP)).result;
    assert_eq!(r.verdict, Verdict::Error, "{}", r.reason);
    assert_eq!(r.steps[0].attempts.len(), 1, "the failed attempt is kept");
}

#[test]
fn an_unplugged_device_is_error_with_its_attempt_kept() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), &["root,xc3511"]);
    let bench = device(|_, _| Reply::Hangup);
    let r = run(&bench, &scenario(dir.path(), DEFAULTS_STEP)).result;
    assert_eq!(r.verdict, Verdict::Error, "{}", r.reason);
    assert!(r.steps[0].attempts[0].error.is_some());
}

#[test]
fn applicability_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), &["root,xc3511"]);
    let bench = device(|_, _| Reply::say("NO\n"));
    // Feature `q` is not declared by the profile: undecided, so NOT_TESTED (never PASS).
    let undeclared =
        DEFAULTS_STEP.replace("features = [\"a\", \"d\"]", "features = [\"a\", \"q\"]");
    let r = run(&bench, &scenario(dir.path(), &undeclared)).result;
    assert_eq!(r.verdict, Verdict::NotTested, "{}", r.reason);
    // An action the profile has no binding for.
    let unbound = IDENTIFY_CASE;
    let r = run(&bench, &scenario(dir.path(), unbound)).result;
    assert_eq!(r.verdict, Verdict::NotTested, "{}", r.reason);
    assert!(r.reason.contains("identify"), "{}", r.reason);
}

#[test]
fn a_missing_credential_is_not_tested() {
    let dir = tempfile::tempdir().unwrap();
    let bench = FakeBench::new(profile()).device("console", || |_: &str| Reply::say("OK\n"));
    let s = r#"
[provisions]
en303645 = ["5.1-1"]
[[step]]
id = "own"
action = "login"
with = { username = "{cred.console.username}", password = "{cred.console.password}" }
expect = ["accepted"]
"#;
    let r = run(&bench, &scenario(dir.path(), s)).result;
    assert_eq!(r.verdict, Verdict::NotTested, "{}", r.reason);
}

#[test]
fn a_step_that_made_no_attempt_is_inconclusive_never_pass() {
    let dir = tempfile::tempdir().unwrap();
    let bench = device(|_, _| Reply::say("NO\n"));
    let s = r#"
[provisions]
en303645 = ["5.1-1"]
[[step]]
id = "none"
action = "login"
repeat = 0
with = { username = "a", password = "b" }
expect = ["rejected"]
"#;
    let r = run(&bench, &scenario(dir.path(), s)).result;
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.reason);
    assert!(r.reason.contains("made no attempt"), "{}", r.reason);
}

#[test]
fn an_interrupt_ends_the_case_inconclusive_with_its_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..50).map(|i| format!("user{i},pw{i}")).collect();
    fixture(
        dir.path(),
        &rows.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let bench = device(|_, _| Reply::say("NO\n"));
    let cancel = Cancel::new();
    let seen = Mutex::new(0usize);
    let sink = |e: &RunEvent| {
        if let RunEvent::AttemptRecorded { n, .. } = e {
            *seen.lock().unwrap() = *n;
            if *n == 5 {
                cancel.cancel(2);
            }
        }
    };
    let ctl = CaseControl {
        cancel: cancel.clone(),
        events: &sink,
    };
    let r = run_case(&bench, &scenario(dir.path(), DEFAULTS_STEP), &ctl).result;
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.reason);
    assert_eq!(r.reason, "interrupted");
    assert_eq!(r.steps[0].attempts.len(), 5);
}

#[test]
fn an_interrupt_during_a_long_wait_is_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let bench = device(|_, _| Reply::say("NO\n"));
    let s = r#"
[provisions]
en303645 = ["5.1-1"]
[[step]]
id = "long"
sleep_ms = 600000
[[step]]
id = "then"
action = "login"
with = { username = "a", password = "b" }
expect = ["rejected"]
"#;
    let cancel = Cancel::new();
    let other = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        other.cancel(15);
    });
    let started = Instant::now();
    let ctl = CaseControl {
        cancel,
        events: &Discard,
    };
    let r = run_case(&bench, &scenario(dir.path(), s), &ctl).result;
    t.join().unwrap();
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_budget_covers_every_retry_and_wait() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), &["a,b", "c,d"]);
    let bench = device(|_, _| Reply::say("NO\n"));
    let r = run(&bench, &scenario(dir.path(), DEFAULTS_STEP)).result;
    // 2 rows × (300 ms binding + 2 retries × (300 + 200 ms)) = 2.6 s, plus the fixed margin.
    let budget = r.budget_ms.expect("a budget is stated");
    assert_eq!(budget, 2 * (300 + 2 * (300 + 200)) + 30_000);
}

/// A device that records every line typed at it and answers `info` and logins.
fn recording_device(lines: std::sync::Arc<Mutex<Vec<String>>>) -> FakeBench {
    FakeBench::new(profile_with_identify())
        .password("console", "unit-pw-1234")
        .device("console", move || {
            let lines = lines.clone();
            move |line: &str| {
                lines.lock().unwrap().push(line.to_string());
                match line {
                    "info" => Reply::say("model=FAKE-1\n"),
                    l if l.contains(':') => Reply::say("NO\n"),
                    _ => Reply::Silent,
                }
            }
        })
}

#[test]
fn case_variables_and_captures_flow_into_later_steps_and_secrets_stay_masked() {
    let dir = tempfile::tempdir().unwrap();
    let lines = std::sync::Arc::new(Mutex::new(Vec::new()));
    let bench = recording_device(lines.clone());
    let s = r#"
[provisions]
en303645 = ["5.1-1"]
ts103701 = ["5.1-1-1"]
[vars]
canary = { random = 20, secret = true }
[[step]]
id = "who"
action = "identify"
with = {}
[[step]]
id = "use"
action = "login"
with = { username = "{step.who.model}", password = "{var.canary}" }
expect = ["rejected"]
"#;
    let run = run(&bench, &scenario(dir.path(), s));
    let r = run.result;
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
    assert_eq!(r.provisions.ts103701, ["5.1-1-1"]);
    let typed = lines.lock().unwrap().clone();
    let login = typed
        .iter()
        .find(|l| l.starts_with("FAKE-1:"))
        .expect("the capture was used");
    let canary = login.trim_start_matches("FAKE-1:");
    assert_eq!(canary.len(), 20);
    let attempt = &r.steps[1].attempts[0];
    assert_eq!(attempt.args["username"], "FAKE-1");
    assert_eq!(attempt.args["password"], "‹secret›");
    for e in &run.evidence {
        assert!(
            !String::from_utf8_lossy(&e.bytes).contains(canary),
            "{} holds the secret canary",
            e.name
        );
    }
}

#[test]
fn a_unit_the_profile_lacks_is_not_tested() {
    let dir = tempfile::tempdir().unwrap();
    let bench = device(|_, _| Reply::say("NO\n"));
    let s = r#"
[provisions]
en303645 = ["5.1-1"]
[[step]]
id = "other-unit"
action = "login"
with = { username = "{unit.2.cred.console.username}", password = "x" }
expect = ["rejected"]
"#;
    let r = run(&bench, &scenario(dir.path(), s)).result;
    assert_eq!(r.verdict, Verdict::NotTested, "{}", r.reason);
    assert!(r.reason.contains("unit 2"), "{}", r.reason);
}

#[test]
fn scenario_variables_are_checked_when_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let text = |body: &str| {
        format!(
            "schema = 1\nid = \"t\"\ntitle = \"t\"\nkind = \"functional\"\npurpose = \"p\"\npass_criteria = \"c\"\n[provisions]\nico = [\"ICO-SEC-PW-03\"]\n{body}"
        )
    };
    let parse_text = |t: &str| Scenario::parse(&dir.path().join("t.toml"), t, dir.path());
    let parse = |body: &str| parse_text(&text(body));
    let step = |with: &str| {
        format!(
            "[[step]]\nid = \"s\"\naction = \"login\"\nwith = {{ username = \"{with}\", password = \"x\" }}\nexpect = [\"rejected\"]\n"
        )
    };
    // An ICO-only scenario loads.
    assert!(parse(&step("a")).is_ok());
    for (bad, why) in [
        ("{var.nope}", "no case variable"),
        (
            "{step.later.model}",
            "no earlier action or offer_update step",
        ),
        ("{row.username}", "only known in a for_each step"),
        ("{unit.serial.x}", "unknown variable"),
    ] {
        let err = parse(&step(bad)).unwrap_err().to_string();
        assert!(err.contains("t.toml:") && err.contains(why), "{bad}: {err}");
    }
    let err = parse_text(&text(&step("a")).replace("ico = ", "ts103701 = [\"5.1\"]\nico = "))
        .unwrap_err()
        .to_string();
    assert!(err.contains("TS 103 701"), "{err}");
}

#[test]
fn a_capture_the_binding_never_defines_is_a_profile_gap_not_a_fail() {
    let dir = tempfile::tempdir().unwrap();
    let no_group = format!(
        "{PROFILE}{}",
        IDENTIFY.replace("model=(?P<model>\\S+)\\n", "model=\\S+\\n")
    );
    let profile = BoardProfile::parse(Path::new("fake.toml"), &no_group).expect("profile");
    let bench = FakeBench::new(profile).device("console", || {
        |line: &str| match line {
            "info" => Reply::say("model=FAKE-1\n"),
            _ => Reply::Silent,
        }
    });
    let s = IDENTIFY_CASE;
    let r = run(&bench, &scenario(dir.path(), s)).result;
    assert_eq!(r.verdict, Verdict::NotTested, "{}", r.reason);
    assert!(r.reason.contains("(?P<model>"), "{}", r.reason);
}

/// Three wrong guesses, then (after `pause_ms`) the owner's password, which must be refused as locked
/// within the declared 200 ms lockout from the guess that started it.
fn owner_while_locked(pause_ms: u64) -> String {
    format!(
        r#"
[provisions]
en303645 = ["5.1-5"]
[applicability]
features = ["a", "d"]
[[step]]
id = "guesses"
action = "login"
repeat = "{{ixit:1-AuthMech/console/Brute Force Prevention/max_failures}}"
with = {{ username = "admin", password = "wrong" }}
expect = ["rejected", "locked"]
[[step]]
id = "pause"
sleep_ms = {pause_ms}
[[step]]
id = "owner-locked-out"
action = "login"
with = {{ username = "admin", password = "{{cred.console.password}}" }}
expect = ["locked"]
judged_within = {{ step = "guesses", attempt = "{{ixit:1-AuthMech/console/Brute Force Prevention/max_failures}}", ms = "{{ixit:1-AuthMech/console/Brute Force Prevention/lockout_ms}}" }}
"#
    )
}

#[test]
fn a_wrong_answer_counts_only_inside_the_declared_window() {
    let dir = tempfile::tempdir().unwrap();
    // A device that lets its owner in whatever came before (lockout-bypass).
    let bench = || {
        device(|_, p| {
            if p == "unit-pw-1234" {
                Reply::say("OK\n")
            } else {
                Reply::say("NO\n")
            }
        })
    };
    // Asked at once: inside the lockout, so letting the owner in is the device's failure.
    let r = run(&bench(), &scenario(dir.path(), &owner_while_locked(0))).result;
    assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
    // Asked only after the lockout had run out (the harness late): no evidence either way.
    let r = run(&bench(), &scenario(dir.path(), &owner_while_locked(400))).result;
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.reason);
    assert!(r.reason.contains("asked too late"), "{}", r.reason);
    let owner = &r.steps[2].attempts[0];
    assert_eq!(owner.outcome.as_deref(), Some("accepted"));
    assert_eq!(
        owner.conforms, None,
        "the late answer is not held to `expect`"
    );
    // A window from a step without that attempt cannot place the answer: not the device's failure.
    let text = owner_while_locked(0).replace(
        "attempt = \"{ixit:1-AuthMech/console/Brute Force Prevention/max_failures}\"",
        "attempt = 9",
    );
    let r = run(&bench(), &scenario(dir.path(), &text)).result;
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.reason);
    assert!(r.reason.contains("no attempt 9"), "{}", r.reason);
}

#[test]
fn judged_within_names_an_earlier_step_and_qualifies_an_expect() {
    let dir = tempfile::tempdir().unwrap();
    let parse =
        |body: &str| Scenario::parse(&dir.path().join("t.toml"), &scenario_text(body), dir.path());
    let later = owner_while_locked(0).replace("step = \"guesses\"", "step = \"owner-locked-out\"");
    let err = parse(&later).unwrap_err().to_string();
    assert!(err.contains("must name an earlier step"), "{err}");
    let no_expect = owner_while_locked(0).replace("expect = [\"locked\"]\n", "");
    let err = parse(&no_expect).unwrap_err().to_string();
    assert!(err.contains("qualifies `expect`"), "{err}");
}

const POWER: &str = r#"
[labgrid]
place = "lab-7"
[links.power]
kind = "power"
via = "labgrid"
[bindings.power-cycle]
link = "power"
"#;

const POWER_CYCLE_STEP: &str = r#"
[provisions]
en303645 = ["5.1-5"]
[applicability]
features = ["a", "d"]
[[step]]
id = "cut-power"
action = "power-cycle"
with = {}
expect = ["cycled"]
"#;

#[test]
fn a_power_cycle_is_the_switchs_work_and_its_trouble_is_never_the_devices_fail() {
    let dir = tempfile::tempdir().unwrap();
    let profile = || {
        BoardProfile::parse(Path::new("fake.toml"), &format!("{PROFILE}{POWER}")).expect("profile")
    };
    let case = scenario(dir.path(), POWER_CYCLE_STEP);
    // Worked once, recorded as the step's attempt.
    let switch = crate::power::FakeSwitch::default();
    let bench = FakeBench::new(profile()).power_switch("power", switch.clone());
    let r = run(&bench, &case).result;
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
    assert_eq!(switch.cycles.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(r.steps[0].attempts[0].outcome.as_deref(), Some("cycled"));
    // A switch that cannot be worked: ERROR, with the attempt and the reason kept.
    let broken = crate::power::FakeSwitch {
        fail: Some("the PDU did not answer".into()),
        ..Default::default()
    };
    let r = run(
        &FakeBench::new(profile()).power_switch("power", broken),
        &case,
    )
    .result;
    assert_eq!(r.verdict, Verdict::Error, "{}", r.reason);
    assert!(r.reason.contains("the PDU did not answer"), "{}", r.reason);
    assert!(r.steps[0].attempts[0].error.is_some());
    // No switch on this bench: not tested.
    let r = run(&FakeBench::new(profile()), &case).result;
    assert_eq!(r.verdict, Verdict::NotTested, "{}", r.reason);
}
