//! Loading the shipped profile and scenarios, and pointing at the exact place of every kind of mistake.

use hilt_model::flow_vocab::FlowKind;
use hilt_model::profile::BoardProfile;
use hilt_model::scenario::{Number, Scenario, StepWhat, load_suite};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vboard_text() -> String {
    std::fs::read_to_string(root().join("boards/vboard.toml")).unwrap()
}

fn profile_err(text: &str) -> String {
    BoardProfile::parse(Path::new("boards/x.toml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn shipped_profile_and_suite_load() {
    let p = BoardProfile::load(&root().join("boards/vboard.toml")).unwrap();
    assert_eq!(p.name(), "vrb");
    assert!(p.bindings.contains_key("login"));
    let suite = load_suite(&root().join("test-cases"), &root().join("fixtures")).unwrap();
    assert!(
        suite
            .iter()
            .any(|s| s.id == "pw.console.no-universal-default")
    );
    assert!(suite.iter().any(|s| s.id == "bf.console.lockout"));
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = vboard_text().replace("model = \"VRB-1\"", "model = \"VRB-1\"\ncolour = \"blue\"");
    let err = profile_err(&text);
    let line = text.lines().position(|l| l.starts_with("colour")).unwrap() + 1;
    assert!(err.starts_with(&format!("boards/x.toml:{line}:")), "{err}");
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn wrong_type_is_located() {
    let text = vboard_text().replace("baud = 115200", "baud = \"fast\"");
    let err = profile_err(&text);
    let line = text.lines().position(|l| l.starts_with("baud")).unwrap() + 1;
    assert!(err.starts_with(&format!("boards/x.toml:{line}:")), "{err}");
}

#[test]
fn missing_declaration_is_an_error() {
    let text = vboard_text().replace("firmware_version = \"1.0.0\"\n", "");
    let err = profile_err(&text);
    assert!(err.contains("firmware_version"), "{err}");
    assert!(err.starts_with("boards/x.toml:"), "{err}");
}

#[test]
fn not_applicable_needs_a_rationale_and_a_condition() {
    let text = vboard_text().replace(
        "\"5.1-5\" = { support = \"Y\", detail = \"lockout after consecutive failures, persisted across reboot\" }",
        "\"5.1-5\" = { support = \"N/A\" }",
    );
    let err = profile_err(&text);
    assert!(err.contains("needs a rationale"), "{err}");
    let line = text
        .lines()
        .position(|l| l.starts_with("\"5.1-5\""))
        .unwrap()
        + 1;
    assert!(err.starts_with(&format!("boards/x.toml:{line}:")), "{err}");

    let text = vboard_text().replace(
        "\"5.0-1\" = { support = \"Y\", detail = \"every N and N/A below carries a rationale\" }",
        "\"5.0-1\" = { support = \"N/A\", detail = \"we would rather not\" }",
    );
    assert!(profile_err(&text).contains("not allowed for an unconditional provision"));

    let text = vboard_text().replace(
        "\"5.1-2\" = { support = \"Y\", detail",
        "\"5.1-2\" = { support = \"N/A\", detail",
    );
    assert!(
        profile_err(&text).contains("contradicts the ICS"),
        "{}",
        profile_err(&text)
    );
}

#[test]
fn bindings_are_checked_against_the_vocabulary() {
    let text = vboard_text()
        .replace("[bindings.identify]", "[bindings.self-destruct]")
        .replace(
            "[[bindings.identify.steps]]",
            "[[bindings.self-destruct.steps]]",
        );
    assert!(profile_err(&text).contains("unknown action"));
    let text = vboard_text().replace("locked = 'Too many", "frozen = 'Too many");
    assert!(profile_err(&text).contains("\"frozen\" is not an outcome of action login"));
    let text = vboard_text().replace("send = \"{username}\\r\"", "send = \"{user}\\r\"");
    assert!(
        profile_err(&text).contains("{user} is not an argument"),
        "{}",
        profile_err(&text)
    );
    let text = vboard_text().replace("expect = 'Password: $'", "expect = 'Password: ($'");
    assert!(profile_err(&text).contains("invalid regex"));
}

#[test]
fn unknown_ics_and_ixit_names_are_errors() {
    let text = vboard_text().replace("\"5.1-4\" = {", "\"5.1-99\" = {");
    assert!(profile_err(&text).contains("unknown EN 303 645 V3.1.3 provision \"5.1-99\""));
    let text = vboard_text().replace(
        "[ixit.\"1-AuthMech\".console]",
        "[ixit.\"1-AuthMeh\".console]",
    );
    assert!(profile_err(&text).contains("unknown sheet"));
    let text = vboard_text().replace("\"Authentication Factor\"", "\"Auth Factor\"");
    assert!(profile_err(&text).contains("unknown field"));
}

#[test]
fn scenario_errors_are_located() {
    let path = root().join("test-cases/brute-force/console-lockout.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let fixtures = root().join("fixtures");
    let bad = text.replace("en303645 = [\"5.1-5\"]", "en303645 = [\"5.1-55\"]");
    let err = Scenario::parse(Path::new("s.toml"), &bad, &fixtures)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("s.toml:") && err.contains("5.1-55"),
        "{err}"
    );
    let bad = text.replace(
        "action = \"logout\"\nwith = {}\n\n[[check]]",
        "action = \"logout\"\nwith = {}\nrepeat_count = 3\n\n[[check]]",
    );
    let err = Scenario::parse(Path::new("s.toml"), &bad, &fixtures)
        .unwrap_err()
        .to_string();
    let line = bad
        .lines()
        .position(|l| l.starts_with("repeat_count"))
        .unwrap()
        + 1;
    assert!(err.starts_with(&format!("s.toml:{line}:")), "{err}");
    let bad = text.replace("{random:16}", "{nonsense}");
    let err = Scenario::parse(Path::new("s.toml"), &bad, &fixtures)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variable {nonsense}"), "{err}");
    // Check parameters are the check registry's to validate (harness/hilt/src/checks).
}

#[test]
fn declared_flows_are_read_from_the_ixit_and_checked() {
    let p = BoardProfile::parse(Path::new("boards/x.toml"), &vboard_text()).unwrap();
    let presence = p
        .flows
        .iter()
        .find(|f| f.name == "21-PersData/presence")
        .expect("presence flow");
    assert_eq!(presence.pattern, "vrb/+/presence");
    assert!(presence.is_personal());
    assert!(
        p.flows
            .iter()
            .any(|f| f.name == "24-TelData/health" && !f.is_personal())
    );
    assert!(p.cloud_link().is_some());

    let text = vboard_text().replace(
        "pattern = \"vrb/+/presence\", recipient = \"manufacturer\", lawful_basis = \"contract\", consent = false",
        "pattern = \"vrb/+/presence\", recipient = \"manufacturer\", lawful_basis = \"contract\"",
    );
    let err = profile_err(&text);
    assert!(
        err.contains("consent-based") && err.starts_with("boards/x.toml:"),
        "{err}"
    );
    let text = vboard_text().replace(
        "[links.cloud]\nkind = \"cloud\"",
        "[links.cloud]\nkind = \"cloud\"\npath = \"/dev/x\"",
    );
    assert!(profile_err(&text).contains("a cloud link takes no path"));
}

#[test]
fn cloud_steps_are_checked() {
    let path = root().join("test-cases/secure-communication/refuses-mitm.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let fixtures = root().join("fixtures");
    let s = Scenario::parse(Path::new("s.toml"), &text, &fixtures).unwrap();
    assert!(s.steps_need_cloud());
    let for_ms = text.lines().find(|l| l.starts_with("for_ms")).unwrap();
    let bad = text.replace(&format!("{for_ms}\n"), "");
    let err = Scenario::parse(Path::new("s.toml"), &bad, &fixtures)
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs either `for_ms` or `until`"), "{err}");
    // The window is sized from the IXIT with a factor; the fault's name is the harness registry's to
    // check (harness/hilt/src/suite.rs).
    let fault = s
        .steps
        .iter()
        .find(|st| st.id == "man-in-the-middle")
        .unwrap();
    let StepWhat::CloudFault { for_ms, .. } = &fault.what else {
        panic!("a fault step")
    };
    assert!(matches!(for_ms, Number::Scaled(_, 3)), "{for_ms:?}");
    let bad = text.replace(" * 3\"", " * x\"");
    assert!(Scenario::parse(Path::new("s.toml"), &bad, &fixtures).is_err());
}

#[test]
fn a_misspelt_flow_kind_is_a_located_load_error() {
    let path = root().join("test-cases/secure-communication/refuses-mitm.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let fixtures = root().join("fixtures");
    let bad = text.replace(
        "wait_flow = { kind = \"connect\"",
        "wait_flow = { kind = \"pubish\"",
    );
    let err = Scenario::parse(Path::new("s.toml"), &bad, &fixtures)
        .unwrap_err()
        .to_string();
    let line = bad.lines().position(|l| l.contains("pubish")).unwrap() + 1;
    assert!(err.starts_with(&format!("s.toml:{line}:")), "{err}");
    assert!(err.contains("pubish"), "{err}");
    for known in ["publish", "connect-refused", "tls-failed", "request"] {
        assert!(err.contains(known), "lists {known}: {err}");
    }
}

#[test]
fn declared_flow_protocols_are_parsed_and_catch_alls_refused() {
    let decl = "protocol = \"mqtt\", pattern = \"vrb/+/presence\"";
    // Located at the declaring IXIT entry.
    let line_of = |text: &str| {
        text.lines()
            .position(|l| l == "[ixit.\"21-PersData\".presence]")
            .unwrap()
            + 1
    };
    let text = vboard_text().replace(decl, "protocol = \"coap\", pattern = \"vrb/+/presence\"");
    let err = profile_err(&text);
    assert!(
        err.contains("\"coap\"") && err.contains("\"mqtt\""),
        "{err}"
    );

    for catch_all in ["#", "+/#", "*"] {
        let text = vboard_text().replace(
            decl,
            &format!("protocol = \"mqtt\", pattern = \"{catch_all}\""),
        );
        let err = profile_err(&text);
        let line = line_of(&text);
        assert!(err.starts_with(&format!("boards/x.toml:{line}:")), "{err}");
        assert!(
            err.contains("flows-declared") && err.contains("vacuous"),
            "{err}"
        );
    }
    let text = vboard_text().replace(decl, "protocol = \"http\", pattern = \"/\"");
    assert!(profile_err(&text).contains("vacuous"));
    let text = vboard_text().replace(decl, "protocol = \"http\", pattern = \"/api/v1/presence\"");
    let p = BoardProfile::parse(Path::new("boards/x.toml"), &text).unwrap();
    let presence = p
        .flows
        .iter()
        .find(|f| f.name == "21-PersData/presence")
        .unwrap();
    assert_eq!(presence.protocol, hilt_model::flow_vocab::Protocol::Http);
}

#[test]
fn usb_ids_are_parsed_at_load() {
    let path =
        "usb = { vid = \"0x1209\", pid = \"0x0001\", serial = \"{unit.serial}\", interface = 0 }";
    let text = vboard_text().replace(path, "usb = { vid = \"0x0403\", pid = \"6001\" }");
    let p = BoardProfile::parse(Path::new("boards/x.toml"), &text).unwrap();
    let Some(hilt_model::profile::Link::Serial(s)) = p.links.get("console") else {
        panic!("console is a serial link");
    };
    let usb = s.usb.as_ref().unwrap();
    assert_eq!((usb.vid, usb.pid), (0x0403, 0x6001));

    let text = vboard_text().replace(path, "usb = { vid = \"0x0403\", pid = \"0xfrog\" }");
    let err = profile_err(&text);
    let line = text.lines().position(|l| l.contains("0xfrog")).unwrap() + 1;
    assert!(err.starts_with(&format!("boards/x.toml:{line}:")), "{err}");
    assert!(err.contains("not a 16-bit hex id"), "{err}");
}

#[test]
fn a_scenario_without_a_pass_criterion_does_not_load() {
    let path = root().join("test-cases/brute-force/console-lockout.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let fixtures = root().join("fixtures");
    // No `expect` on any step and no [[check]]: nothing could make it fail.
    let vacuous: String = text
        .lines()
        .take_while(|l| !l.starts_with("[[check]]"))
        .filter(|l| !l.starts_with("expect =") && !l.starts_with("judged_within ="))
        .map(|l| format!("{l}\n"))
        .collect();
    let err = Scenario::parse(Path::new("s.toml"), &vacuous, &fixtures)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no pass criterion"), "{err}");
}

#[test]
fn update_steps_are_checked() {
    let path = root().join("test-cases/software-updates/refuses-insecure-channel.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let fixtures = root().join("fixtures");
    let parse = |t: &str| Scenario::parse(Path::new("s.toml"), t, &fixtures);
    let s = parse(&text).unwrap();
    assert!(s.steps_need_cloud());
    let held = s.step("man-in-the-middle").unwrap();
    assert!(
        matches!(&held.what, StepWhat::CloudFaultUntil { until, .. } if until == "check-through-mitm")
    );
    // `until` must name a later step: not an earlier one, not a missing one.
    for bad in ["version-before", "no-such-step"] {
        let t = text.replace(
            "until = \"check-through-mitm\"",
            &format!("until = \"{bad}\""),
        );
        let err = parse(&t).unwrap_err().to_string();
        assert!(
            err.starts_with("s.toml:") && err.contains("must name a later step"),
            "{err}"
        );
    }
    // A fault takes either a length or an end, never both.
    let both = text.replace(
        "until = \"check-through-mitm\"",
        "until = \"check-through-mitm\"\nfor_ms = 10",
    );
    assert!(
        parse(&both)
            .unwrap_err()
            .to_string()
            .contains("either `for_ms` or `until`")
    );
    // What an offer step captures can be used later; what it does not capture cannot.
    let offer_caps = text.replace(
        "expected = \"{step.version-before.firmware}\"",
        "expected = \"{step.offer-genuine.version}\"",
    );
    assert!(parse(&offer_caps).is_ok());
    let wrong = text.replace(
        "expected = \"{step.version-before.firmware}\"",
        "expected = \"{step.offer-genuine.colour}\"",
    );
    let s = parse(&wrong).unwrap();
    let err = s
        .check_vars(&hilt_model::template::Template::parse("{step.offer-genuine.colour}").unwrap());
    assert!(
        err.as_ref()
            .is_err_and(|e| e.contains("offer_update step captures no \"colour\"")),
        "{err:?}"
    );
}

#[test]
fn flow_waits_are_parsed_once_and_checked() {
    let path = root().join("test-cases/software-updates/switch-off-respected.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let fixtures = root().join("fixtures");
    let parse = |t: &str| Scenario::parse(Path::new("s.toml"), t, &fixtures);
    let s = parse(&text).unwrap();
    let StepWhat::Sleep {
        until: Some(until), ..
    } = &s.step("wait").unwrap().what
    else {
        panic!("a sleep that ends on the device's flows")
    };
    assert_eq!(until.since.as_deref(), Some("restart"));
    assert_eq!(until.seen.len(), 3);
    let check = &until.seen[0];
    assert!(check.matches(FlowKind::Request, Some("/update/VRB-1/manifest.json")));
    assert!(!check.matches(FlowKind::Request, Some("/update/VRB-1/images/a.bin")));
    assert!(!check.matches(FlowKind::Publish, Some("/update/VRB-1/manifest.json")));
    assert!(!check.matches(FlowKind::Request, None));
    let StepWhat::WaitFlow(w) = &s.step("checked").unwrap().what else {
        panic!("a flow wait")
    };
    assert_eq!(w.since.as_deref(), Some("restart"));

    // `since` names this step or an earlier one: never a later one or a missing one.
    for bad in ["log-in-again", "no-such-step"] {
        let t = text.replace(
            "since = \"restart\", seen",
            &format!("since = \"{bad}\", seen"),
        );
        let err = parse(&t).unwrap_err().to_string();
        assert!(err.starts_with("s.toml:"), "{err}");
        assert!(
            err.contains("`since` must name this step or an earlier one"),
            "{err}"
        );
        assert!(err.contains(bad), "{err}");
    }
    // A path pattern that is no regular expression is a located error naming it.
    let t = text.replacen("manifest\\\\.json$", "manifest(\\\\.json$", 1);
    let err = parse(&t).unwrap_err().to_string();
    assert!(
        err.starts_with("s.toml:") && err.contains("flow path pattern"),
        "{err}"
    );
    // `until_flows` only shortens a sleep.
    let t = text.replace(
        "sleep_ms = \"{ixit:7-UpdMech/ota/Update Checking/interval_ms} * 4\"\nuntil_flows",
        "action = \"identify\"\nwith = {}\nuntil_flows",
    );
    assert_ne!(t, text);
    let err = parse(&t).unwrap_err().to_string();
    assert!(
        err.contains("`until_flows` ends a `sleep_ms` early"),
        "{err}"
    );
    // No pattern at all would end the wait at once.
    let start = text.find("until_flows = {").unwrap();
    let end = start + text[start..].find("] }").unwrap() + 3;
    let t = format!(
        "{}until_flows = {{ seen = [] }}{}",
        &text[..start],
        &text[end..]
    );
    let err = parse(&t).unwrap_err().to_string();
    assert!(err.contains("1 to 16 flow patterns"), "{err}");
}

#[test]
fn power_links_are_switched_by_a_labgrid_place_and_bound_without_a_script() {
    let base = vboard_text();
    let power = "[links.power]\nkind = \"power\"\nvia = \"labgrid\"\n\n";
    let place = "[labgrid]\nplace = \"lab-7\"\n\n";
    let binding = "\n[bindings.power-cycle]\nlink = \"power\"\n";
    let with = |extra_links: &str, extra: &str| {
        let at = base.find("[links.console]").unwrap();
        format!("{}{extra_links}{}{extra}", &base[..at], &base[at..])
    };
    let p = BoardProfile::parse(
        Path::new("boards/x.toml"),
        &with(&format!("{place}{power}"), binding),
    )
    .unwrap();
    assert!(matches!(
        p.links.get("power"),
        Some(hilt_model::profile::Link::Power(l)) if l.via == hilt_model::profile::PowerVia::Labgrid
    ));
    assert_eq!(p.bindings["power-cycle"].link, "power");

    // Without a place there is nothing to switch: located at the link.
    let text = with(power, binding);
    let err = profile_err(&text);
    let line = text.lines().position(|l| l == "[links.power]").unwrap() + 1;
    assert!(err.starts_with(&format!("boards/x.toml:{line}:")), "{err}");
    assert!(err.contains("needs the profile's [labgrid] place"), "{err}");
    // `via` is required and known; nothing else belongs on a power link.
    let err = profile_err(&with(
        &format!("{place}[links.power]\nkind = \"power\"\n\n"),
        "",
    ));
    assert!(err.contains("needs `via`"), "{err}");
    let err = profile_err(&with(
        &format!("{place}{}", power.replace("labgrid\"", "usb-hub\"")),
        "",
    ));
    assert!(
        err.contains("unknown power link `via` \"usb-hub\""),
        "{err}"
    );
    let err = profile_err(&with(
        &format!(
            "{place}{}",
            power.replace("\n\n", "\npath = \"/dev/x\"\n\n")
        ),
        "",
    ));
    assert!(err.contains("takes only `via`"), "{err}");
    let err = profile_err(&with(&format!("{place}{power}"), "").replace(
        "[links.console]\nkind = \"serial\"",
        "[links.console]\nkind = \"serial\"\nvia = \"labgrid\"",
    ));
    assert!(err.contains("takes no `via`"), "{err}");
    // power-cycle runs on a power link, and a power link runs no script.
    let err = profile_err(&with(
        &format!("{place}{power}"),
        "\n[bindings.power-cycle]\nlink = \"console\"\n",
    ));
    assert!(err.contains("kind \"power\""), "{err}");
    let text = with(&format!("{place}{power}"), "").replace(
        "[bindings.identify]\nlink = \"console\"",
        "[bindings.identify]\nlink = \"power\"",
    );
    let err = profile_err(&text);
    assert!(
        err.contains("power link \"power\" cannot run a script"),
        "{err}"
    );
}
