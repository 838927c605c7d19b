//! The console state machine driven in memory with a manual clock.

use crate::auth::{LoginCounters, PasswordHash, RateLimitPolicy};
use crate::clock::ManualClock;
use crate::console::Console;
use crate::flash::FlashState;
use crate::update::{AgentEnd, Event, Request, SlotInfo, UpdateState, channel};

pub(crate) const PW: &str = "GoodPass2345";
const ISSUE: &str = "VRB-1 security updates until 2030-12-31\r\n";
pub(crate) const T0: u64 = 1_700_000_000_000;
pub(crate) const FAST: RateLimitPolicy = RateLimitPolicy {
    max_failures: 3,
    lockout_ms: 1500,
    failure_delay_ms: 50,
};

pub(crate) fn state() -> FlashState {
    FlashState {
        serial: "VRB-TEST0001".into(),
        admin_password: PasswordHash::new(PW.as_bytes()).unwrap(),
        login: LoginCounters::default(),
        update: UpdateState::default(),
        factory_password: None,
        privacy: Default::default(),
        service_key: None,
        wifi_history: Vec::new(),
    }
}

pub(crate) fn board_with(
    state: FlashState,
    policy: RateLimitPolicy,
) -> (Console<ManualClock>, ManualClock) {
    let clock = ManualClock::new(T0);
    let mut c = Console::new(state, policy, clock.clone());
    c.boot();
    c.take_output();
    (c, clock)
}

fn board() -> (Console<ManualClock>, ManualClock) {
    board_with(state(), FAST)
}

pub(crate) fn send(c: &mut Console<ManualClock>, input: &str) -> String {
    send_bytes(c, input.as_bytes())
}

fn send_bytes(c: &mut Console<ManualClock>, input: &[u8]) -> String {
    c.feed(input);
    String::from_utf8_lossy(&c.take_output()).into_owned()
}

/// Lets a pending failure delay elapse and returns what was then printed.
fn after_delay(c: &mut Console<ManualClock>, clock: &ManualClock) -> String {
    let due = c.next_deadline_ms().expect("an answer is pending");
    clock.set(due);
    c.tick();
    String::from_utf8_lossy(&c.take_output()).into_owned()
}

pub(crate) fn login(c: &mut Console<ManualClock>) {
    assert_eq!(send(c, "admin\r"), "admin\r\nPassword: ");
    assert_eq!(send(c, &format!("{PW}\r")), "\r\nWelcome, admin\r\nvrb$ ");
}

#[test]
fn boot_banner_and_prompt() {
    let mut c = Console::new(state(), FAST, ManualClock::new(T0));
    c.boot();
    assert_eq!(
        c.take_output(),
        b"\r\nVRB-1 virtual reference board, firmware 1.0.0\r\n\r\n\
          VRB-1 security updates until 2030-12-31\r\nlogin: "
    );
}

#[test]
fn login_success_never_echoes_the_password() {
    let (mut c, _) = board();
    assert_eq!(send(&mut c, "\r"), format!("\r\n{ISSUE}login: "));
    assert_eq!(send(&mut c, "admin\r\n"), "admin\r\nPassword: ");
    let out = send(&mut c, &format!("{PW}\r\n"));
    assert_eq!(out, "\r\nWelcome, admin\r\nvrb$ ");
    assert!(!out.contains(PW));
}

#[test]
fn wrong_password_is_delayed_counted_and_persisted_first() {
    let (mut c, clock) = board();
    send(&mut c, "admin\r");
    assert_eq!(send(&mut c, "nope\r"), "", "answer must wait for the delay");
    assert!(c.take_dirty(), "failure must be persisted before answering");
    assert_eq!(c.state().login.failures, 1);
    assert_eq!(c.next_deadline_ms(), Some(T0 + 50));
    clock.advance(49);
    c.tick();
    assert!(c.take_output().is_empty());
    assert_eq!(
        after_delay(&mut c, &clock),
        "\r\nLogin incorrect\r\n\r\nlogin: "
    );
    assert_eq!(c.next_deadline_ms(), None);
}

#[test]
fn unknown_user_with_the_admin_password_is_refused() {
    let (mut c, clock) = board();
    assert_eq!(send(&mut c, "root\r"), "root\r\nPassword: ");
    send(&mut c, &format!("{PW}\r"));
    assert_eq!(
        after_delay(&mut c, &clock),
        "\r\nLogin incorrect\r\n\r\nlogin: "
    );
}

#[test]
fn lockout_refuses_even_the_right_password_until_it_expires() {
    let (mut c, clock) = board();
    for _ in 0..3 {
        send(&mut c, "admin\rbad\r");
        assert!(after_delay(&mut c, &clock).contains("Login incorrect"));
    }
    send(&mut c, "admin\r");
    let out = send(&mut c, &format!("{PW}\r"));
    assert_eq!(
        out,
        "\r\nToo many failed attempts, try again in 2 s\r\n\r\nlogin: "
    );
    clock.advance(1000);
    send(&mut c, "admin\r");
    let out = send(&mut c, &format!("{PW}\r"));
    assert!(out.contains("try again in 1 s"), "{out}");
    clock.advance(500);
    login(&mut c);
    assert_eq!(c.state().login, LoginCounters::default());
}

#[test]
fn lockout_bypass_defect_lets_only_the_right_password_through_a_lockout() {
    let (mut c, clock) = board();
    c.bypass_lockout_for_the_right_password();
    for _ in 0..3 {
        send(&mut c, "admin\rbad\r");
        assert!(after_delay(&mut c, &clock).contains("Login incorrect"));
    }
    // Wrong passwords (and unknown users) are still answered "locked", at once and uncounted.
    send(&mut c, "admin\r");
    let out = send(&mut c, "bad-again\r");
    assert_eq!(
        out,
        "\r\nToo many failed attempts, try again in 2 s\r\n\r\nlogin: "
    );
    send(&mut c, "root\r");
    assert!(send(&mut c, &format!("{PW}\r")).contains("Too many failed attempts"));
    assert_eq!(c.state().login.failures, 3);
    assert_ne!(c.state().login.locked_until_ms, 0);
    // The right password walks through the lockout, and the success clears it.
    clock.advance(100);
    login(&mut c);
    assert_eq!(c.state().login, LoginCounters::default());
}

#[test]
fn lockout_survives_a_reboot() {
    let (mut c, clock) = board();
    for _ in 0..3 {
        send(&mut c, "admin\rbad\r");
        after_delay(&mut c, &clock);
    }
    let persisted = c.state().clone();
    let (mut rebooted, _) = board_with(persisted, FAST);
    send(&mut rebooted, "admin\r");
    let out = send(&mut rebooted, &format!("{PW}\r"));
    assert!(out.contains("Too many failed attempts"), "{out}");
}

#[test]
fn success_resets_the_failure_counter() {
    let (mut c, clock) = board();
    for _ in 0..2 {
        send(&mut c, "admin\rbad\r");
        after_delay(&mut c, &clock);
    }
    login(&mut c);
    assert_eq!(c.state().login.failures, 0);
    send(&mut c, "exit\r");
    for _ in 0..2 {
        send(&mut c, "admin\rbad\r");
        after_delay(&mut c, &clock);
    }
    login(&mut c);
}

#[test]
fn input_typed_during_the_delay_is_processed_afterwards() {
    let (mut c, clock) = board();
    assert_eq!(send(&mut c, "admin\rbad\radmin\r"), "admin\r\nPassword: ");
    assert_eq!(
        after_delay(&mut c, &clock),
        "\r\nLogin incorrect\r\n\r\nlogin: admin\r\nPassword: "
    );
}

#[test]
fn no_rate_limit_policy_answers_at_once_and_never_locks() {
    let (mut c, _) = board_with(state(), RateLimitPolicy::OFF);
    for _ in 0..20 {
        send(&mut c, "admin\r");
        assert_eq!(send(&mut c, "bad\r"), "\r\nLogin incorrect\r\n\r\nlogin: ");
    }
    login(&mut c);
}

#[test]
fn long_line_is_discarded_with_an_error() {
    let (mut c, _) = board();
    let long = "a".repeat(300);
    let out = send(&mut c, &format!("{long}\r"));
    assert!(
        out.ends_with("\r\nerror: line too long\r\nlogin: "),
        "{out}"
    );
    assert!(out.len() < 300, "echo must stop at the limit");
    login(&mut c);
    let out = send(&mut c, &format!("{long}\r"));
    assert!(out.ends_with("\r\nerror: line too long\r\nvrb$ "), "{out}");
}

#[test]
fn garbage_and_bursts_do_not_break_the_console() {
    let (mut c, clock) = board();
    let mut x: u32 = 0x1234_5678;
    let mut junk = Vec::with_capacity(200_000);
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk.push(x as u8);
    }
    for chunk in junk.chunks(4096) {
        c.feed(chunk);
        clock.advance(100);
        c.tick();
        c.take_output();
    }
    // Let queued input and pending answers play out, then any lockout expire.
    while let Some(due) = c.next_deadline_ms() {
        clock.set(due);
        c.tick();
    }
    clock.advance(10_000);
    c.take_output();
    let out = send_bytes(&mut c, b"\x03");
    assert!(out.ends_with("^C\r\nlogin: "), "{out:?}");
    login(&mut c);
}

#[test]
fn backspace_edits_and_control_bytes_are_ignored() {
    let (mut c, _) = board();
    let out = send_bytes(&mut c, b"admx\x7fi\x1bn\x00\r");
    assert_eq!(out, "admx\x08 \x08in\r\nPassword: ");
    assert_eq!(
        send(&mut c, &format!("{PW}x\x08\r")),
        "\r\nWelcome, admin\r\nvrb$ "
    );
}

#[test]
fn shell_commands() {
    let (mut c, _) = board();
    login(&mut c);
    assert_eq!(
        send(&mut c, "info\r"),
        "info\r\nmodel=VRB-1 serial=VRB-TEST0001 hw=1.0 fw=1.0.0\r\nvrb$ "
    );
    assert_eq!(send(&mut c, "whoami\r"), "whoami\r\nadmin\r\nvrb$ ");
    let help = send(&mut c, "help\r");
    for cmd in [
        "help",
        "info",
        "whoami",
        "passwd",
        "cloud",
        "notices",
        "exit",
        "logout",
        "update check",
        "install",
        "status",
        "autoupdate",
        "postpone",
        "reboot",
        "pair <user-id>",
        "users",
        "set name|email <text>, set wifi <ssid> <psk>",
        "show",
        "consent analytics [on|off]",
        "privacy",
        "export <user-id>",
        "erase",
    ] {
        assert!(help.contains(cmd), "{help}");
    }
    assert_eq!(send(&mut c, "\r"), "\r\nvrb$ ");
    assert_eq!(
        send(&mut c, "frob x\r"),
        "frob x\r\nunknown command: frob\r\nvrb$ "
    );
    let z40 = "z".repeat(40);
    assert_eq!(
        send(&mut c, &format!("{z40}\r")),
        format!("{z40}\r\nunknown command: {}\r\nvrb$ ", &z40[..32])
    );
    let out = send_bytes(&mut c, b"\xff\xfe\r");
    assert!(out.ends_with("\r\nunknown command\r\nvrb$ "), "{out:?}");
    assert_eq!(send(&mut c, "logout\r"), "logout\r\n\r\nlogin: ");
    login(&mut c);
    assert_eq!(send(&mut c, "exit\r"), "exit\r\n\r\nlogin: ");
}

#[test]
fn passwd_changes_the_stored_hash() {
    let (mut c, _) = board();
    login(&mut c);
    assert_eq!(send(&mut c, "passwd\r"), "passwd\r\nCurrent password: ");
    assert_eq!(send(&mut c, &format!("{PW}\r")), "\r\nNew password: ");
    assert_eq!(send(&mut c, "n3w-Secret!\r"), "\r\nRetype new password: ");
    c.take_dirty();
    let out = send(&mut c, "n3w-Secret!\r");
    assert_eq!(out, "\r\npassword updated\r\nvrb$ ");
    assert!(c.take_dirty());
    assert!(c.state().admin_password.verify(b"n3w-Secret!"));
    assert!(!c.state().admin_password.verify(PW.as_bytes()));
    send(&mut c, "exit\r");
    send(&mut c, "admin\r");
    assert_eq!(send(&mut c, "n3w-Secret!\r"), "\r\nWelcome, admin\r\nvrb$ ");
}

#[test]
fn passwd_refusals() {
    let (mut c, clock) = board();
    login(&mut c);
    assert_eq!(
        send(&mut c, &format!("passwd\r{PW}\rshort\rshort\r")),
        "passwd\r\nCurrent password: \r\nNew password: \r\nRetype new password: \r\n\
         error: password too short\r\nvrb$ "
    );
    let out = send(&mut c, &format!("passwd\r{PW}\rlongenough1\rlongenough2\r"));
    assert!(
        out.ends_with("\r\nerror: passwords do not match\r\nvrb$ "),
        "{out}"
    );
    assert!(!out.contains("longenough") && !out.contains(PW), "{out}");
    // Blindly sent answers after a wrong current password are not run as commands.
    assert_eq!(
        send(&mut c, "passwd\rwrong-current\rnewpass123\rnewpass123\r"),
        "passwd\r\nCurrent password: \r\nNew password: \r\nRetype new password: \r\n"
    );
    assert_eq!(
        after_delay(&mut c, &clock),
        "error: authentication failed\r\nvrb$ "
    );
    assert!(c.state().admin_password.verify(PW.as_bytes()));
    assert!(!c.take_dirty(), "refused passwd must not touch flash");
}

#[test]
fn ctrl_c_cancels_a_login_or_passwd_dialogue() {
    let (mut c, _) = board();
    assert_eq!(
        send(&mut c, "admin\r\x03"),
        "admin\r\nPassword: ^C\r\nlogin: "
    );
    login(&mut c);
    assert_eq!(
        send(&mut c, "passwd\r\x03"),
        "passwd\r\nCurrent password: ^C\r\nvrb$ "
    );
}

#[test]
fn cloud_and_notices_commands_show_the_link() {
    let (mut c, _) = board();
    login(&mut c);
    assert_eq!(
        send(&mut c, "cloud\r"),
        "cloud\r\ncloud=off url=- last_error=-\r\nvrb$ "
    );
    assert_eq!(
        send(&mut c, "notices\r"),
        "notices\r\nend of notices\r\nvrb$ "
    );

    let view = crate::cloud::CloudView::new("mqtts://127.0.0.1:8883");
    c.attach_cloud(view.clone());
    view.set_disconnected("TLS: invalid peer certificate: UnknownIssuer");
    assert_eq!(
        send(&mut c, "cloud\r"),
        "cloud\r\ncloud=disconnected url=mqtts://127.0.0.1:8883 \
         last_error=TLS: invalid peer certificate: UnknownIssuer\r\nvrb$ "
    );
    view.set_connected();
    view.push_notice(b"firmware 1.0.1 available");
    view.push_notice(b"\x1b]0;evil\x07maintenance");
    assert!(send(&mut c, "cloud\r").contains("cloud=connected url=mqtts://127.0.0.1:8883 "));
    assert_eq!(
        send(&mut c, "notices\r"),
        "notices\r\nnotice 1:  ]0;evil maintenance\r\n\
         notice 2: firmware 1.0.1 available\r\nend of notices\r\nvrb$ "
    );
}

/// A logged-in console attached to an update link whose agent end the test plays.
fn board_with_agent() -> (Console<ManualClock>, ManualClock, AgentEnd) {
    let (mut c, clock) = board();
    let (link, agent) = channel(crate::update::Snapshot {
        update: UpdateState::default(),
        session: false,
    })
    .unwrap();
    c.attach_update(link);
    login(&mut c);
    (c, clock, agent)
}

/// Lets the console apply what the agent queued; returns what it printed.
pub(crate) fn after_events(c: &mut Console<ManualClock>) -> String {
    c.tick();
    String::from_utf8_lossy(&c.take_output()).into_owned()
}

#[test]
fn issue_banner_is_shown_at_boot_and_on_an_empty_login_line_only() {
    let (mut c, clock) = board();
    assert_eq!(send(&mut c, "\r"), format!("\r\n{ISSUE}login: "));
    send(&mut c, "admin\rbad\r");
    assert_eq!(
        after_delay(&mut c, &clock),
        "\r\nLogin incorrect\r\n\r\nlogin: "
    );
    login(&mut c);
    assert_eq!(send(&mut c, "exit\r"), "exit\r\n\r\nlogin: ");

    let mut c = Console::new(state(), FAST, ManualClock::new(T0));
    c.hide_support_period();
    c.boot();
    let out = String::from_utf8(c.take_output()).unwrap();
    assert_eq!(
        out,
        "\r\nVRB-1 virtual reference board, firmware 1.0.0\r\n\r\nlogin: "
    );
    assert_eq!(send(&mut c, "\r"), "\r\nlogin: ");
}

#[test]
fn without_an_update_service_update_commands_say_so() {
    let (mut c, _) = board();
    login(&mut c);
    for cmd in ["update check", "update install", "update status", "update"] {
        assert_eq!(
            send(&mut c, &format!("{cmd}\r")),
            format!("{cmd}\r\nupdate: no update service configured\r\nvrb$ ")
        );
    }
    assert_eq!(
        send(&mut c, "autoupdate\r"),
        "autoupdate\r\nautoupdate: on\r\nvrb$ "
    );
}

#[test]
fn update_check_waits_for_the_agent_and_queues_typing() {
    let (mut c, _, mut agent) = board_with_agent();
    assert!(agent.snapshot().session, "the agent must see the session");
    assert_eq!(send(&mut c, "update check\r"), "update check\r\n");
    let Some(Request::Check { id }) = agent.try_recv() else {
        panic!("no check request")
    };
    assert_eq!(c.next_deadline_ms(), Some(T0 + 15_000));
    // Typed while waiting: held until the answer is printed.
    assert_eq!(send(&mut c, "whoami\r"), "");
    agent.push(Event::Reply {
        id,
        line: "update: available 1.1.0 (security update): fixes RCE".into(),
    });
    assert_eq!(
        after_events(&mut c),
        "update: available 1.1.0 (security update): fixes RCE\r\nvrb$ whoami\r\nadmin\r\nvrb$ "
    );
    assert_eq!(c.next_deadline_ms(), None);
    send(&mut c, "exit\r");
    assert!(!agent.snapshot().session, "logged out");
}

#[test]
fn an_agent_that_does_not_answer_times_out_and_its_late_answer_is_dropped() {
    let (mut c, clock, mut agent) = board_with_agent();
    send(&mut c, "update check\r");
    let Some(Request::Check { id }) = agent.try_recv() else {
        panic!("no check request")
    };
    clock.advance(14_999);
    assert_eq!(after_events(&mut c), "");
    clock.advance(1);
    assert_eq!(
        after_events(&mut c),
        "update: check failed: timed out\r\nvrb$ "
    );
    agent.push(Event::Reply {
        id,
        line: "update: none available (running 1.0.0)".into(),
    });
    assert_eq!(after_events(&mut c), "");
    assert_eq!(send(&mut c, "update install\r"), "update install\r\n");
    let Some(Request::Install { id: next }) = agent.try_recv() else {
        panic!("no install request")
    };
    assert_ne!(next, id);
    agent.push(Event::Reply {
        id: next,
        line: "update: nothing to install".into(),
    });
    assert_eq!(after_events(&mut c), "update: nothing to install\r\nvrb$ ");
}

#[test]
fn an_install_switches_slots_keeps_the_notice_and_reboots() {
    let (mut c, clock, mut agent) = board_with_agent();
    assert_eq!(
        send(&mut c, "update status\r"),
        "update status\r\nupdate: running=1.0.0 security_version=1 slot=A auto=on\r\nvrb$ "
    );
    agent.push(Event::Notice(
        "security update 1.1.0 available: fixes RCE".into(),
    ));
    clock.advance(5);
    agent.push(Event::Print(
        "\r\n*** update: the device restarts in 1 s to install 1.1.0 ***\r\n".into(),
    ));
    agent.push(Event::Installed {
        info: SlotInfo {
            version: "1.1.0".into(),
            security_version: 2,
            sha256: "ab".into(),
        },
        notice: Some("security update 1.1.0 installed: fixes RCE".into()),
    });
    c.take_dirty();
    assert_eq!(
        after_events(&mut c),
        "\r\n*** update: the device restarts in 1 s to install 1.1.0 ***\r\n\r\nrebooting...\r\n"
    );
    assert!(c.take_dirty(), "the switch must be persisted");
    assert_eq!(
        send(&mut c, "info\r"),
        "",
        "a rebooting device drops typing"
    );
    assert!(c.take_reboot());
    let saved = c.state().clone();
    c.restart(saved);
    assert_eq!(agent.try_recv(), Some(Request::Booted));
    let out = String::from_utf8(c.take_output()).unwrap();
    assert_eq!(
        out,
        format!("\r\nVRB-1 virtual reference board, firmware 1.1.0\r\n\r\n{ISSUE}login: ")
    );
    login(&mut c);
    assert_eq!(
        send(&mut c, "info\r"),
        "info\r\nmodel=VRB-1 serial=VRB-TEST0001 hw=1.0 fw=1.1.0\r\nvrb$ "
    );
    assert_eq!(
        send(&mut c, "update status\r"),
        "update status\r\nupdate: running=1.1.0 security_version=2 slot=B auto=on\r\nvrb$ "
    );
    assert_eq!(
        send(&mut c, "notices\r"),
        "notices\r\nnotice 1: security update 1.1.0 installed: fixes RCE\r\n\
         notice 2: security update 1.1.0 available: fixes RCE\r\nend of notices\r\nvrb$ "
    );
}

#[test]
fn notices_from_the_cloud_and_the_device_are_merged_newest_first() {
    let (mut c, clock, agent) = board_with_agent();
    let view = crate::cloud::CloudView::new("mqtts://127.0.0.1:8883");
    c.attach_cloud(view.clone());
    // The cloud notice is stamped with the real time, far after the manual clock's T0.
    agent.push(Event::Notice("device notice".into()));
    c.tick();
    view.push_notice(b"cloud notice");
    clock.set(u64::MAX / 2);
    agent.push(Event::Notice("newest device notice".into()));
    c.tick();
    assert_eq!(
        send(&mut c, "notices\r"),
        "notices\r\nnotice 1: newest device notice\r\nnotice 2: cloud notice\r\n\
         notice 3: device notice\r\nend of notices\r\nvrb$ "
    );
}

#[test]
fn autoupdate_settings_are_persisted() {
    let (mut c, clock, _agent) = board_with_agent();
    c.take_dirty();
    assert_eq!(
        send(&mut c, "autoupdate\r"),
        "autoupdate\r\nautoupdate: on\r\nvrb$ "
    );
    assert!(!c.take_dirty());
    assert_eq!(
        send(&mut c, "autoupdate postpone\r"),
        "autoupdate postpone\r\nautoupdate: postponed\r\nvrb$ "
    );
    assert!(c.take_dirty());
    assert_eq!(
        c.state().update.postponed_until_unix_ms,
        Some(T0 + 24 * 3600 * 1000)
    );
    assert!(send(&mut c, "update status\r").contains(" auto=postponed\r\n"));
    clock.advance(24 * 3600 * 1000);
    assert!(send(&mut c, "autoupdate\r").contains("autoupdate: on\r\n"));
    assert_eq!(
        send(&mut c, "autoupdate off\r"),
        "autoupdate off\r\nautoupdate: off\r\nvrb$ "
    );
    assert!(c.take_dirty() && !c.state().update.auto);
    send(&mut c, "autoupdate postpone\r");
    assert_eq!(
        send(&mut c, "autoupdate on\r"),
        "autoupdate on\r\nautoupdate: on\r\nvrb$ "
    );
    assert_eq!(c.state().update.postponed_until_unix_ms, None);
    assert!(send(&mut c, "autoupdate sometimes\r").contains("usage: autoupdate [on|off|postpone]"));
}

#[test]
fn reboot_restarts_at_the_login_prompt() {
    let (mut c, _) = board();
    login(&mut c);
    assert_eq!(send(&mut c, "reboot\r"), "reboot\r\nrebooting...\r\n");
    assert!(c.take_reboot());
    assert!(!c.take_reboot());
    let saved = c.state().clone();
    c.restart(saved);
    let out = String::from_utf8(c.take_output()).unwrap();
    assert!(
        out.ends_with(&format!("firmware 1.0.0\r\n\r\n{ISSUE}login: ")),
        "{out}"
    );
    login(&mut c);
}
