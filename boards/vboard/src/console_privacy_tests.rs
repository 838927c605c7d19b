//! The console's privacy commands driven in memory, the test playing the privacy agent.

use crate::auth::PasswordHash;
use crate::clock::ManualClock;
use crate::console::Console;
use crate::console_tests::{FAST, PW, T0, after_events, board_with, login, send, state};
use crate::flash::FlashState;
use crate::privacy::{
    ANALYTICS, CloudDecision, Decision, Event, PrivacyEnd, PrivacyState, Purpose, Request, SUMMARY,
    Snapshot, change_notice, channel, privacy_notice,
};

/// The password on the unit label; the tests' admin has changed it to [`PW`] since.
const LABEL_PW: &str = "LabelPass234";

fn provisioned() -> FlashState {
    FlashState {
        factory_password: Some(PasswordHash::new(LABEL_PW.as_bytes()).unwrap()),
        ..state()
    }
}

/// A logged-in console with a privacy agent the test plays.
fn board_with_agent(state: FlashState) -> (Console<ManualClock>, ManualClock, PrivacyEnd) {
    let (mut c, clock) = board_with(state, FAST);
    let (link, end) = channel(Snapshot::default()).unwrap();
    c.attach_privacy(link);
    login(&mut c);
    (c, clock, end)
}

fn board() -> (Console<ManualClock>, ManualClock, PrivacyEnd) {
    board_with_agent(provisioned())
}

/// Pairs `users` through the played agent; each is sent the privacy notice.
fn pair(c: &mut Console<ManualClock>, agent: &mut PrivacyEnd, users: &[&str]) {
    for user in users {
        pair_one(c, agent, user);
        assert_eq!(
            agent.try_recv(),
            Some(notify(&privacy_notice("VRB-TEST0001"), &[user]))
        );
    }
}

/// The notice request for `text` addressed to `users`.
fn notify(text: &str, users: &[&str]) -> Request {
    Request::Notify {
        text: text.to_string(),
        users: users.iter().map(|u| u.to_string()).collect(),
    }
}

/// Pairs `user` through the played agent, leaving whatever else the console asked of it.
fn pair_one(c: &mut Console<ManualClock>, agent: &mut PrivacyEnd, user: &str) {
    assert_eq!(
        send(c, &format!("pair {user}\r")),
        format!("pair {user}\r\n")
    );
    let Some(Request::Pair { id, user: asked }) = agent.try_recv() else {
        panic!("no pairing request")
    };
    assert_eq!(asked, user);
    agent.push(Event::Paired {
        id,
        user: asked,
        result: Ok(()),
    });
    assert_eq!(
        after_events(c),
        format!("pair: paired with {user}\r\nvrb$ ")
    );
}

/// `erase`, confirmed; returns the erase request and what was printed meanwhile.
/// Confirms an erase and has the played agent report every recipient told: the erase completes.
fn erase_all_told(c: &mut Console<ManualClock>, agent: &mut PrivacyEnd) {
    let (Request::Erase { id, .. }, _) = confirm_erase(c, agent) else {
        panic!("no erase request")
    };
    agent.push(Event::Erased {
        id,
        not_told: vec![],
    });
    assert_eq!(after_events(c), DONE);
}

fn confirm_erase(c: &mut Console<ManualClock>, agent: &mut PrivacyEnd) -> (Request, String) {
    assert_eq!(
        send(c, "erase\r"),
        "erase\r\nerase: this removes every user's data and credentials; type ERASE to confirm\r\n"
    );
    let out = send(c, "ERASE\r");
    let request = agent.try_recv().expect("an erase request");
    (request, out)
}

const DONE: &str = "erase: done; user data and credentials removed\r\n\r\nlogin: ";

#[test]
fn pairing_waits_for_the_cloud_and_keeps_the_owner_first() {
    let (mut c, _, mut agent) = board();
    assert_eq!(send(&mut c, "pair alice\r"), "pair alice\r\n");
    let Some(Request::Pair { id, user }) = agent.try_recv() else {
        panic!("no pairing request")
    };
    assert_eq!(c.next_deadline_ms(), Some(T0 + 15_000));
    assert_eq!(send(&mut c, "users\r"), "", "typing waits for the answer");
    assert!(!c.take_dirty(), "nothing stored before the cloud answers");
    agent.push(Event::Paired {
        id,
        user,
        result: Ok(()),
    });
    assert_eq!(
        after_events(&mut c),
        "pair: paired with alice\r\nvrb$ users\r\nuser 1: alice\r\nend of users\r\nvrb$ "
    );
    assert!(c.take_dirty());
    assert_eq!(
        agent.try_recv(),
        Some(notify(&privacy_notice("VRB-TEST0001"), &["alice"]))
    );
    pair(&mut c, &mut agent, &["bob"]);
    assert_eq!(
        send(&mut c, "users\r"),
        "users\r\nuser 1: alice\r\nuser 2: bob\r\nend of users\r\nvrb$ "
    );
    assert_eq!(c.state().privacy.owner(), Some("alice"));
    assert_eq!(agent.snapshot().owner.as_deref(), Some("alice"));
}

#[test]
fn pairing_refusals_and_failures_store_nothing() {
    let (mut c, clock, mut agent) = board();
    pair(&mut c, &mut agent, &["alice"]);
    let long = "a".repeat(65);
    for (input, line) in [
        ("pair alice", "pair: failed: already paired"),
        ("pair bad/id", "pair: failed: invalid user id"),
        ("pair two words", "pair: failed: invalid user id"),
        (&format!("pair {long}"), "pair: failed: invalid user id"),
        ("pair", "usage: pair <user-id>"),
    ] {
        assert_eq!(
            send(&mut c, &format!("{input}\r")),
            format!("{input}\r\n{line}\r\nvrb$ ")
        );
    }
    assert_eq!(agent.try_recv(), None, "refused before the cloud is asked");

    send(&mut c, "pair carol\r");
    let Some(Request::Pair { id, user }) = agent.try_recv() else {
        panic!("no pairing request")
    };
    agent.push(Event::Paired {
        id,
        user,
        result: Err("HTTP 409".into()),
    });
    assert_eq!(after_events(&mut c), "pair: failed: HTTP 409\r\nvrb$ ");

    send(&mut c, "pair dave\r");
    let Some(Request::Pair { id, user }) = agent.try_recv() else {
        panic!("no pairing request")
    };
    clock.advance(15_000);
    assert_eq!(after_events(&mut c), "pair: failed: timed out\r\nvrb$ ");
    agent.push(Event::Paired {
        id,
        user,
        result: Ok(()),
    });
    assert_eq!(after_events(&mut c), "", "a late answer is dropped");
    assert_eq!(c.state().privacy.users, vec!["alice".to_string()]);
}

#[test]
fn without_a_cloud_pairing_fails_and_local_commands_still_work() {
    let (mut c, _) = board_with(provisioned(), FAST);
    login(&mut c);
    assert_eq!(
        send(&mut c, "pair alice\r"),
        "pair alice\r\npair: failed: no cloud configured\r\nvrb$ "
    );
    assert_eq!(
        send(&mut c, "consent analytics on\r"),
        "consent analytics on\r\nconsent: no user paired\r\nvrb$ "
    );
    assert_eq!(c.state().privacy, PrivacyState::default());
    assert_eq!(send(&mut c, "users\r"), "users\r\nend of users\r\nvrb$ ");
}

#[test]
fn personal_data_is_saved_and_shown_without_the_psk() {
    let (mut c, _, _agent) = board();
    assert_eq!(
        send(&mut c, "show\r"),
        "show\r\nprofile: name=- email=- wifi=-\r\nvrb$ "
    );
    for (input, line) in [
        ("set name Alice Example", "set: name saved"),
        ("set email alice@example.com", "set: email saved"),
        ("set wifi HomeNet hunter2 secret", "set: wifi saved"),
    ] {
        c.take_dirty();
        assert_eq!(
            send(&mut c, &format!("{input}\r")),
            format!("{input}\r\n{line}\r\nvrb$ ")
        );
        assert!(c.take_dirty(), "{input} must be persisted");
    }
    let out = send(&mut c, "show\r");
    assert_eq!(
        out,
        "show\r\nprofile: name=Alice Example email=alice@example.com wifi=HomeNet\r\nvrb$ "
    );
    let wifi = c.state().privacy.profile.wifi.clone().unwrap();
    assert_eq!(wifi.psk, crate::privacy::Psk::new("hunter2 secret"));

    let usage = "usage: set name <text> | set email <text> | set wifi <ssid> <psk>";
    let long = "x".repeat(129);
    for (input, line) in [
        ("set", usage),
        ("set name", usage),
        ("set colour red", usage),
        ("set wifi OnlySsid", usage),
        (&format!("set name {long}"), "set: invalid name"),
        (&format!("set wifi {long} psk"), "set: invalid wifi"),
    ] {
        assert_eq!(
            send(&mut c, &format!("{input}\r")),
            format!("{input}\r\n{line}\r\nvrb$ ")
        );
    }
    assert!(!c.take_dirty(), "refusals change nothing");
    assert!(send(&mut c, "show\r").contains("name=Alice Example "));
}

#[test]
fn consent_is_off_until_the_owner_opts_in_and_each_decision_is_reported() {
    let (mut c, _, mut agent) = board();
    assert_eq!(
        send(&mut c, "consent analytics\r"),
        "consent analytics\r\nconsent: no user paired\r\nvrb$ "
    );
    pair(&mut c, &mut agent, &["alice", "bob"]);
    assert_eq!(
        send(&mut c, "consent analytics\r"),
        "consent analytics\r\nconsent: analytics=never\r\nvrb$ "
    );
    assert_eq!(agent.snapshot().analytics, Decision::Never);
    for (word, granted, shown) in [("on", true, "granted"), ("off", false, "withdrawn")] {
        c.take_dirty();
        assert_eq!(
            send(&mut c, &format!("consent analytics {word}\r")),
            format!("consent analytics {word}\r\nconsent: analytics={shown}\r\nvrb$ ")
        );
        assert!(c.take_dirty(), "the decision must be persisted");
        assert_eq!(
            agent.try_recv(),
            Some(Request::ReportConsent {
                user: "alice".into(),
                purpose: Purpose::Analytics,
                granted,
            })
        );
        let change = change_notice(Purpose::Analytics, granted);
        assert_eq!(agent.try_recv(), Some(notify(&change, &["alice", "bob"])));
        assert_eq!(agent.snapshot().analytics, Decision::from_granted(granted));
        assert_eq!(
            send(&mut c, "consent analytics\r"),
            format!("consent analytics\r\nconsent: analytics={shown}\r\nvrb$ ")
        );
    }
    for bad in ["consent", "consent marketing on", "consent analytics maybe"] {
        assert_eq!(
            send(&mut c, &format!("{bad}\r")),
            format!("{bad}\r\nusage: consent analytics [on|off|record]\r\nvrb$ ")
        );
    }
    assert_eq!(agent.try_recv(), None);
}

#[test]
fn data_sent_to_a_recipient_is_recorded_for_paired_users_only() {
    let (mut c, _, mut agent) = board();
    pair(&mut c, &mut agent, &["alice"]);
    c.take_dirty();
    for user in ["alice", "mallory"] {
        agent.push(Event::Sent {
            user: user.into(),
            recipient: ANALYTICS.into(),
        });
    }
    after_events(&mut c);
    assert!(c.take_dirty());
    assert_eq!(
        c.state().privacy.erasure_notices(),
        vec![("analytics".to_string(), "alice".to_string())]
    );
}

#[test]
fn anything_but_erase_cancels() {
    let (mut c, _, mut agent) = board();
    pair(&mut c, &mut agent, &["alice"]);
    let before = c.state().clone();
    for answer in ["no", "erase", ""] {
        send(&mut c, "erase\r");
        assert_eq!(
            send(&mut c, &format!("{answer}\r")),
            format!("{answer}\r\nerase: cancelled\r\nvrb$ ")
        );
    }
    assert_eq!(c.state(), &before);
    assert_eq!(agent.try_recv(), None);
}

/// A board with two users, personal data, analytics consent and data sent for the owner.
fn lived_in(c: &mut Console<ManualClock>, agent: &mut PrivacyEnd) {
    pair(c, agent, &["alice", "bob"]);
    send(c, "set name Alice Example\rset email alice@example.com\r");
    send(c, "set wifi HomeNet hunter2\rconsent analytics on\r");
    assert!(matches!(
        agent.try_recv(),
        Some(Request::ReportConsent { .. })
    ));
    assert!(matches!(agent.try_recv(), Some(Request::Notify { .. })));
    agent.push(Event::Sent {
        user: "alice".into(),
        recipient: ANALYTICS.into(),
    });
    after_events(c);
}

#[test]
fn erase_tells_every_recipient_then_wipes_and_restores_the_label_password() {
    let (mut c, _, mut agent) = board();
    lived_in(&mut c, &mut agent);
    let (request, out) = confirm_erase(&mut c, &mut agent);
    assert_eq!(out, "ERASE\r\n");
    let Request::Erase {
        id,
        third_parties,
        users,
    } = request
    else {
        panic!("not an erase request: {request:?}")
    };
    assert_eq!(
        third_parties,
        vec![("analytics".to_string(), "alice".to_string())]
    );
    assert_eq!(users, vec!["alice".to_string(), "bob".to_string()]);
    assert_eq!(
        agent.snapshot().owner,
        None,
        "no analytics during the erase"
    );
    assert!(
        !c.state().privacy.users.is_empty(),
        "wiped only after the notices"
    );
    agent.push(Event::Erased {
        id,
        not_told: vec![],
    });
    c.take_dirty();
    assert_eq!(after_events(&mut c), DONE);
    assert!(c.take_dirty());
    assert_eq!(c.state().privacy, PrivacyState::default());
    assert!(c.state().admin_password.verify(LABEL_PW.as_bytes()));
    assert!(!c.state().admin_password.verify(PW.as_bytes()));
    assert_eq!(send(&mut c, "admin\r"), "admin\r\nPassword: ");
    assert_eq!(
        send(&mut c, &format!("{LABEL_PW}\r")),
        "\r\nWelcome, admin\r\nvrb$ "
    );
    assert_eq!(
        send(&mut c, "show\r"),
        "show\r\nprofile: name=- email=- wifi=-\r\nvrb$ "
    );
    assert_eq!(
        send(&mut c, "consent analytics\r"),
        "consent analytics\r\nconsent: no user paired\r\nvrb$ "
    );
}

#[test]
fn erase_reports_whoever_was_not_told_and_wipes_even_when_the_agent_is_silent() {
    let (mut c, _, mut agent) = board();
    lived_in(&mut c, &mut agent);
    let (Request::Erase { id, .. }, _) = confirm_erase(&mut c, &mut agent) else {
        panic!("no erase request")
    };
    agent.push(Event::Erased {
        id,
        not_told: vec!["analytics".into(), "cloud".into()],
    });
    assert_eq!(
        after_events(&mut c),
        format!("erase: could not tell analytics\r\nerase: could not tell cloud\r\n{DONE}")
    );
    assert_eq!(c.state().privacy, PrivacyState::default());

    let (mut c, clock, mut agent) = board();
    lived_in(&mut c, &mut agent);
    confirm_erase(&mut c, &mut agent);
    clock.advance(15_000);
    assert_eq!(
        after_events(&mut c),
        format!("erase: could not tell analytics\r\nerase: could not tell cloud\r\n{DONE}")
    );
    assert_eq!(c.state().privacy, PrivacyState::default());
    assert!(c.state().admin_password.verify(LABEL_PW.as_bytes()));
}

#[test]
fn erase_without_a_cloud_wipes_at_once() {
    let (mut c, _) = board_with(provisioned(), FAST);
    login(&mut c);
    send(&mut c, "set name Alice\rerase\r");
    assert_eq!(send(&mut c, "ERASE\r"), format!("ERASE\r\n{DONE}"));
    assert_eq!(c.state().privacy, PrivacyState::default());
    assert!(c.state().admin_password.verify(LABEL_PW.as_bytes()));
}

#[test]
fn an_image_without_a_factory_hash_keeps_the_current_password_on_erase() {
    let (mut c, _, mut agent) = board_with_agent(state());
    pair(&mut c, &mut agent, &["alice"]);
    erase_all_told(&mut c, &mut agent);
    assert!(c.state().admin_password.verify(PW.as_bytes()));
    assert!(c.state().privacy.users.is_empty());
}

#[test]
fn erase_keeps_user_data_defect_keeps_only_the_personal_data() {
    let (mut c, _, mut agent) = board();
    c.keep_user_data_on_erase();
    lived_in(&mut c, &mut agent);
    erase_all_told(&mut c, &mut agent);
    let p = &c.state().privacy;
    assert!(p.users.is_empty() && p.consents.is_empty() && p.shared_with.is_empty());
    assert_eq!(p.profile.name.as_deref(), Some("Alice Example"));
    assert!(p.profile.wifi.is_some());
    assert!(c.state().admin_password.verify(LABEL_PW.as_bytes()));
}

#[test]
fn erase_skips_third_parties_defect_tells_only_the_cloud() {
    let (mut c, _, mut agent) = board();
    c.skip_third_parties_on_erase();
    lived_in(&mut c, &mut agent);
    let (request, _) = confirm_erase(&mut c, &mut agent);
    let Request::Erase {
        id,
        third_parties,
        users,
    } = request
    else {
        panic!("not an erase request: {request:?}")
    };
    assert!(third_parties.is_empty());
    assert_eq!(users.len(), 2);
    agent.push(Event::Erased {
        id,
        not_told: vec![],
    });
    assert_eq!(after_events(&mut c), DONE);
    assert_eq!(c.state().privacy, PrivacyState::default());
}

#[test]
fn each_new_user_gets_the_privacy_notice_and_every_user_hears_of_a_switch() {
    let (mut c, _, mut agent) = board();
    pair(&mut c, &mut agent, &["alice", "bob"]);
    let report = |granted| Request::ReportConsent {
        user: "alice".into(),
        purpose: Purpose::Analytics,
        granted,
    };
    // "off" before any grant, and "on" twice, switch nothing the second time.
    for (input, granted, notice) in [
        ("off", false, None),
        ("on", true, Some(true)),
        ("on", true, None),
        ("off", false, Some(false)),
    ] {
        let out = send(&mut c, &format!("consent analytics {input}\r"));
        assert!(out.contains("consent: analytics="), "{out:?}");
        assert_eq!(agent.try_recv(), Some(report(granted)), "{input}");
        let told =
            notice.map(|on| notify(&change_notice(Purpose::Analytics, on), &["alice", "bob"]));
        assert_eq!(agent.try_recv(), told, "{input}");
    }
    assert_eq!(agent.try_recv(), None);
    assert!(
        privacy_notice("VRB-TEST0001").starts_with("privacy notice: VRB-1 VRB-TEST0001 processes")
    );
}

#[test]
fn notice_to_owner_only_defect_never_tells_a_member() {
    let (mut c, _, mut agent) = board();
    c.notify_owner_only();
    pair(&mut c, &mut agent, &["alice"]);
    pair_one(&mut c, &mut agent, "bob");
    assert_eq!(agent.try_recv(), None, "no privacy notice for the member");
    send(&mut c, "consent analytics on\r");
    assert!(matches!(
        agent.try_recv(),
        Some(Request::ReportConsent { .. })
    ));
    assert_eq!(
        agent.try_recv(),
        Some(notify(&change_notice(Purpose::Analytics, true), &["alice"]))
    );
}

/// What `privacy` answers, in the shell and at the login prompt.
const SUMMARY_LINE: &str = "privacy: processes your account id, presence and (only with the \
    owner's consent) usage analytics shared with an analytics processor; ask the device (privacy) \
    or the manual for details";

#[test]
fn privacy_shows_what_the_device_processes() {
    let (mut c, _, _agent) = board();
    assert_eq!(
        send(&mut c, "privacy\r"),
        format!("privacy\r\n{SUMMARY_LINE}\r\nvrb$ ")
    );
    assert_eq!(SUMMARY_LINE, format!("privacy: {SUMMARY}"));
}

/// The JSON of `export <user>`, which must be one `export: ` line.
fn export_of(c: &mut Console<ManualClock>, user: &str) -> serde_json::Value {
    let out = send(c, &format!("export {user}\r"));
    let line = out
        .strip_prefix(&format!("export {user}\r\nexport: "))
        .and_then(|l| l.strip_suffix("\r\nvrb$ "))
        .unwrap_or_else(|| panic!("not one export line: {out:?}"));
    assert!(!line.contains(['\r', '\n']), "{line:?}");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn export_holds_the_requesting_users_data_only() {
    let (mut c, _, mut agent) = board();
    lived_in(&mut c, &mut agent);
    assert_eq!(
        export_of(&mut c, "alice"),
        serde_json::json!({
            "user": "alice", "role": "owner", "paired": 1,
            "consents": {"analytics": "granted"}, "shared_with": ["analytics"],
            "profile": {"name": "Alice Example", "email": "alice@example.com", "wifi_ssid": "HomeNet"},
        })
    );
    let bob = export_of(&mut c, "bob");
    assert_eq!(
        bob,
        serde_json::json!({
            "user": "bob", "role": "member", "paired": 2, "consents": {}, "shared_with": [],
        })
    );
    let text = bob.to_string();
    assert!(!text.contains("alice") && !text.contains("Alice"), "{text}");
    for (input, line) in [
        ("export mallory", "export: no such user"),
        ("export a/b", "export: no such user"),
        ("export", "usage: export <user-id>"),
    ] {
        assert_eq!(
            send(&mut c, &format!("{input}\r")),
            format!("{input}\r\n{line}\r\nvrb$ ")
        );
    }
    let out = send(&mut c, "export alice\r");
    assert!(!out.contains("hunter2"), "{out}");
    assert_eq!(agent.try_recv(), None, "the export stays on the device");
}

#[test]
fn export_leaks_other_user_defect_adds_every_other_entry() {
    let (mut c, _, mut agent) = board();
    c.leak_other_users_in_export();
    lived_in(&mut c, &mut agent);
    let bob = export_of(&mut c, "bob");
    assert_eq!(bob["user"], "bob");
    let others = bob["others"].as_array().expect("others");
    assert_eq!(others.len(), 1);
    assert_eq!(
        (
            &others[0]["user"],
            &others[0]["role"],
            &others[0]["profile"]["name"]
        ),
        (
            &serde_json::json!("alice"),
            &serde_json::json!("owner"),
            &serde_json::json!("Alice Example")
        )
    );
    assert!(!bob.to_string().contains("hunter2"));
}

#[test]
fn withdrawal_harder_defect_asks_for_a_confirmation_giving_never_needs() {
    let (mut c, _, mut agent) = board();
    c.confirm_withdrawals();
    pair(&mut c, &mut agent, &["alice"]);
    assert_eq!(
        send(&mut c, "consent analytics on\r"),
        "consent analytics on\r\nconsent: analytics=granted\r\nvrb$ "
    );
    assert_eq!(
        send(&mut c, "consent analytics off\r"),
        "consent analytics off\r\nconsent: withdrawing stops analytics; type yes to confirm\r\n"
    );
    assert_eq!(agent.snapshot().analytics, Decision::Granted);
    // Anything but `yes` keeps the consent.
    assert_eq!(
        send(&mut c, "no\r"),
        "no\r\nconsent: analytics=granted\r\nvrb$ "
    );
    send(&mut c, "consent analytics off\r");
    assert_eq!(
        send(&mut c, "yes\r"),
        "yes\r\nconsent: analytics=withdrawn\r\nvrb$ "
    );
    // Withdrawing what was never given needs no confirmation.
    assert_eq!(
        send(&mut c, "consent analytics off\r"),
        "consent analytics off\r\nconsent: analytics=withdrawn\r\nvrb$ "
    );
}

/// The agent reports `user`'s newest analytics decision in the cloud, recorded at `at_ms`.
fn cloud_says(agent: &PrivacyEnd, user: &str, granted: bool, at_ms: u64) {
    agent.push(Event::CloudConsent {
        user: user.into(),
        purpose: Purpose::Analytics,
        latest: CloudDecision { granted, at_ms },
    });
}

/// `consent analytics` and what it answered.
fn consent_shown(c: &mut Console<ManualClock>) -> String {
    let out = send(c, "consent analytics\r");
    out.strip_prefix("consent analytics\r\n")
        .and_then(|l| l.strip_suffix("\r\nvrb$ "))
        .unwrap_or_else(|| panic!("not one consent line: {out:?}"))
        .to_string()
}

/// Pairs alice (the owner) and bob, and has alice opt in on the console at `T0 + 1000`.
fn household_opted_in(c: &mut Console<ManualClock>, clock: &ManualClock, agent: &mut PrivacyEnd) {
    pair(c, agent, &["alice", "bob"]);
    clock.set(T0 + 1_000);
    send(c, "consent analytics on\r");
    assert!(matches!(
        agent.try_recv(),
        Some(Request::ReportConsent { granted: true, .. })
    ));
    assert!(matches!(agent.try_recv(), Some(Request::Notify { .. })));
    c.take_dirty();
}

#[test]
fn a_newer_decision_in_the_app_is_adopted_announced_and_not_reported_back() {
    let (mut c, clock, mut agent) = board();
    household_opted_in(&mut c, &clock, &mut agent);
    clock.set(T0 + 5_000);
    cloud_says(&agent, "alice", false, T0 + 2_000);
    assert_eq!(after_events(&mut c), "", "nothing printed");
    assert!(c.take_dirty(), "the adopted decision must be persisted");
    assert_eq!(agent.snapshot().analytics, Decision::Withdrawn);
    assert_eq!(
        agent.try_recv(),
        Some(notify(
            &change_notice(Purpose::Analytics, false),
            &["alice", "bob"]
        ))
    );
    assert_eq!(agent.try_recv(), None, "no report back to the cloud");
    assert_eq!(consent_shown(&mut c), "consent: analytics=withdrawn");
    assert_eq!(
        c.state().privacy.consents["alice"].decided_ms(Purpose::Analytics),
        T0 + 2_000,
        "the cloud's time"
    );

    // Granted in the app again; then the same decision again, which changes nothing.
    cloud_says(&agent, "alice", true, T0 + 3_000);
    after_events(&mut c);
    assert_eq!(
        agent.try_recv(),
        Some(notify(
            &change_notice(Purpose::Analytics, true),
            &["alice", "bob"]
        ))
    );
    c.take_dirty();
    cloud_says(&agent, "alice", true, T0 + 4_000);
    after_events(&mut c);
    assert!(!c.take_dirty());
    assert_eq!(agent.try_recv(), None);
    assert_eq!(consent_shown(&mut c), "consent: analytics=granted");
}

#[test]
fn a_console_decision_is_not_overwritten_by_an_older_cloud_state_or_another_users() {
    let (mut c, clock, mut agent) = board();
    household_opted_in(&mut c, &clock, &mut agent);
    // What the cloud held before the report of the grant reached it.
    cloud_says(&agent, "alice", false, T0 + 999);
    cloud_says(&agent, "alice", false, T0 + 1_000);
    // A member's decisions are not the owner's.
    cloud_says(&agent, "bob", false, T0 + 9_000);
    assert_eq!(after_events(&mut c), "");
    assert!(!c.take_dirty());
    assert_eq!(agent.try_recv(), None);
    assert_eq!(agent.snapshot().analytics, Decision::Granted);
    assert_eq!(consent_shown(&mut c), "consent: analytics=granted");
}

#[test]
fn a_withdrawal_in_the_app_of_what_was_never_granted_is_kept_but_switches_nothing() {
    let (mut c, _, mut agent) = board();
    pair(&mut c, &mut agent, &["alice", "bob"]);
    c.take_dirty();
    cloud_says(&agent, "alice", false, T0 - 1_000);
    after_events(&mut c);
    assert!(c.take_dirty());
    assert_eq!(agent.try_recv(), None, "no switch, no notice");
    assert_eq!(consent_shown(&mut c), "consent: analytics=withdrawn");
}

#[test]
fn no_decision_from_the_cloud_is_taken_while_an_erase_waits_for_its_notices() {
    let (mut c, clock, mut agent) = board();
    household_opted_in(&mut c, &clock, &mut agent);
    let (Request::Erase { .. }, _) = confirm_erase(&mut c, &mut agent) else {
        panic!("no erase request")
    };
    cloud_says(&agent, "alice", false, T0 + 2_000);
    after_events(&mut c);
    assert_eq!(agent.try_recv(), None, "no notice to users being erased");
    assert_eq!(
        c.state().privacy.owner_decision(Purpose::Analytics),
        Some(Decision::Granted)
    );
}

#[test]
fn ignores_app_consent_defect_keeps_only_the_consoles_decisions() {
    let (mut c, clock, mut agent) = board();
    c.ignore_app_consent();
    household_opted_in(&mut c, &clock, &mut agent);
    cloud_says(&agent, "alice", false, T0 + 60_000);
    assert_eq!(after_events(&mut c), "");
    assert!(!c.take_dirty());
    assert_eq!(agent.try_recv(), None);
    assert_eq!(agent.snapshot().analytics, Decision::Granted);
    assert_eq!(consent_shown(&mut c), "consent: analytics=granted");
    // The console's own decisions still count.
    send(&mut c, "consent analytics off\r");
    assert_eq!(consent_shown(&mut c), "consent: analytics=withdrawn");
}

#[test]
fn privacy_at_the_login_prompt_shows_the_summary_to_anyone() {
    let (mut c, _) = board_with(provisioned(), FAST);
    let before = c.state().login.clone();
    assert_eq!(
        send(&mut c, "privacy\r"),
        format!("privacy\r\n{SUMMARY_LINE}\r\nlogin: ")
    );
    assert_eq!(c.next_deadline_ms(), None, "nothing held back");
    assert!(!c.take_dirty());
    assert_eq!(c.state().login, before, "not a failed login");
    // Shown as often as asked; a login still works after it.
    assert!(send(&mut c, "privacy\r").ends_with("\r\nlogin: "));
    login(&mut c);
}

#[test]
fn privacy_needs_login_defect_takes_privacy_for_a_user_name() {
    let (mut c, clock) = board_with(provisioned(), FAST);
    c.require_login_for_privacy();
    assert_eq!(send(&mut c, "privacy\r"), "privacy\r\nPassword: ");
    send(&mut c, "\r");
    clock.advance(FAST.failure_delay_ms);
    let out = after_events(&mut c);
    assert_eq!(out, "\r\nLogin incorrect\r\n\r\nlogin: ");
    assert!(!out.contains(SUMMARY));
    assert_eq!(c.state().login.failures, 1);
}

#[test]
fn the_consent_record_says_whose_decision_and_when_unless_unstamped() {
    use crate::clock::Clock;
    let (mut c, clock, mut agent) = board();
    assert_eq!(
        send(&mut c, "consent analytics record\r"),
        "consent analytics record\r\nconsent: no user paired\r\nvrb$ "
    );
    pair(&mut c, &mut agent, &["alice"]);
    assert_eq!(
        send(&mut c, "consent analytics record\r"),
        "consent analytics record\r\nconsent record: user=alice analytics=never\r\nvrb$ "
    );
    send(&mut c, "consent analytics on\r");
    let at = clock.now_ms();
    assert_eq!(
        send(&mut c, "consent analytics record\r"),
        format!(
            "consent analytics record\r\nconsent record: user=alice analytics=granted at_ms={at}\r\nvrb$ "
        )
    );

    let (mut c, _, mut agent) = board();
    c.store_consents_unstamped();
    pair(&mut c, &mut agent, &["alice"]);
    send(&mut c, "consent analytics on\r");
    assert_eq!(
        send(&mut c, "consent analytics record\r"),
        "consent analytics record\r\nconsent record: user=alice analytics=granted\r\nvrb$ "
    );
}

/// Lives in, erases, and returns the name the cloud session's presence reports carried before and
/// after the erase.
fn presence_name_around_erase(keep: bool) -> (Option<String>, Option<String>) {
    let (mut c, _, mut agent) = board();
    let view = crate::cloud::CloudView::new("mqtts://cloud.test:8883");
    c.attach_cloud(view.clone());
    if keep {
        c.keep_presence_name();
    }
    lived_in(&mut c, &mut agent);
    let before = view.owner_name();
    erase_all_told(&mut c, &mut agent);
    (before, view.owner_name())
}

#[test]
fn presence_reports_carry_the_owners_name_until_an_erase_unless_the_defect_keeps_it() {
    let name = Some("Alice Example".to_string());
    assert_eq!(presence_name_around_erase(false), (name.clone(), None));
    assert_eq!(presence_name_around_erase(true), (name.clone(), name));
}

#[test]
fn only_the_wifi_history_defect_lists_joined_networks_and_an_erase_leaves_them() {
    for keep in [false, true] {
        let (mut c, _) = board_with(provisioned(), FAST);
        login(&mut c);
        if keep {
            c.keep_wifi_history();
        }
        send(
            &mut c,
            "set wifi HomeNet hunter2\rset wifi Cafe7 latte\rset wifi HomeNet hunter2\r",
        );
        send(&mut c, "erase\r");
        assert_eq!(send(&mut c, "ERASE\r"), format!("ERASE\r\n{DONE}"));
        assert_eq!(c.state().privacy, PrivacyState::default());
        let expected: Vec<String> = if keep {
            vec!["Cafe7".into(), "HomeNet".into()]
        } else {
            Vec::new()
        };
        assert_eq!(c.state().wifi_history, expected);
    }
}
