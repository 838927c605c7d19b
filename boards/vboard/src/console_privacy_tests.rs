//! The console's privacy commands driven in memory, the test playing the privacy agent.

use crate::auth::PasswordHash;
use crate::clock::ManualClock;
use crate::console::Console;
use crate::console_tests::{FAST, PW, T0, after_events, board_with, login, send, state};
use crate::flash::FlashState;
use crate::privacy::{
    ANALYTICS, Decision, Event, PrivacyEnd, PrivacyState, Purpose, Request, Snapshot, channel,
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

/// Pairs `users` through the played agent.
fn pair(c: &mut Console<ManualClock>, agent: &mut PrivacyEnd, users: &[&str]) {
    for user in users {
        assert_eq!(
            send(c, &format!("pair {user}\r")),
            format!("pair {user}\r\n")
        );
        let Some(Request::Pair { id, user: asked }) = agent.try_recv() else {
            panic!("no pairing request")
        };
        assert_eq!(asked, *user);
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
}

/// `erase`, confirmed; returns the erase request and what was printed meanwhile.
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
        assert_eq!(agent.snapshot().analytics, Decision::from_granted(granted));
        assert_eq!(
            send(&mut c, "consent analytics\r"),
            format!("consent analytics\r\nconsent: analytics={shown}\r\nvrb$ ")
        );
    }
    for bad in ["consent", "consent marketing on", "consent analytics maybe"] {
        assert_eq!(
            send(&mut c, &format!("{bad}\r")),
            format!("{bad}\r\nusage: consent analytics [on|off]\r\nvrb$ ")
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
    agent.try_recv();
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
    let (Request::Erase { id, .. }, _) = confirm_erase(&mut c, &mut agent) else {
        panic!("no erase request")
    };
    agent.push(Event::Erased {
        id,
        not_told: vec![],
    });
    assert_eq!(after_events(&mut c), DONE);
    assert!(c.state().admin_password.verify(PW.as_bytes()));
    assert!(c.state().privacy.users.is_empty());
}

#[test]
fn erase_keeps_user_data_defect_keeps_only_the_personal_data() {
    let (mut c, _, mut agent) = board();
    c.keep_user_data_on_erase();
    lived_in(&mut c, &mut agent);
    let (Request::Erase { id, .. }, _) = confirm_erase(&mut c, &mut agent) else {
        panic!("no erase request")
    };
    agent.push(Event::Erased {
        id,
        not_told: vec![],
    });
    assert_eq!(after_events(&mut c), DONE);
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
