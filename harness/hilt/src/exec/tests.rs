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

fn profile() -> BoardProfile {
    BoardProfile::parse(Path::new("fake.toml"), PROFILE).expect("test profile")
}

fn scenario(dir: &Path, body: &str) -> Scenario {
    let text = format!(
        "schema = 1\nid = \"t.case\"\ntitle = \"t\"\nkind = \"functional\"\npurpose = \"p\"\npass_criteria = \"c\"\n{body}"
    );
    Scenario::parse(&dir.join("t.toml"), &text, dir).expect("test scenario")
}

fn run(bench: &FakeBench, s: &Scenario) -> CaseRun {
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
    let unbound = r#"
[provisions]
en303645 = ["5.1-1"]
[[step]]
id = "who"
action = "identify"
with = {}
"#;
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
fn nothing_judged_is_inconclusive_never_pass() {
    let dir = tempfile::tempdir().unwrap();
    let bench = device(|_, _| Reply::say("NO\n"));
    let s = r#"
[provisions]
en303645 = ["5.1-1"]
[[step]]
id = "bye"
action = "logout"
with = {}
"#;
    let r = run(&bench, &scenario(dir.path(), s)).result;
    assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.reason);
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
