//! Binding scripts: conditional blocks, the conditional-step trap refused with the block to write
//! instead, and credentials that must not be written in the clear.

use hilt_model::profile::{BoardProfile, Script, StepKind};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vboard_text() -> String {
    std::fs::read_to_string(root().join("boards/vboard.toml")).unwrap()
}

/// The shipped profile with its `logout` binding replaced by `binding` (a TOML fragment).
fn with_logout(binding: &str) -> String {
    let text = vboard_text();
    let start = text.find("[bindings.logout]").unwrap();
    let end = text.find("[bindings.identify]").unwrap();
    format!("{}{binding}\n{}", &text[..start], &text[end..])
}

fn parse(text: &str) -> Result<BoardProfile, String> {
    BoardProfile::parse(Path::new("boards/x.toml"), text).map_err(|e| e.to_string())
}

/// 1-based line of the first line of `text` that is `line`, after the `n`-th (0-based) such line.
fn line_of(text: &str, line: &str, n: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == line)
        .nth(n)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("no line {line:?}"))
}

const HEAD: &str = r#"[bindings.logout]
link = "console"
[[bindings.logout.steps]]
send = "\r"
[[bindings.logout.steps]]
expect = { login = 'login: $', shell = 'vrb\$ $' }
"#;

fn kinds(script: &Script) -> Vec<String> {
    script
        .iter()
        .map(|s| {
            let k = match &s.kind {
                StepKind::Send(_) => "send".to_string(),
                StepKind::Expect(_) => "expect".to_string(),
                StepKind::SleepMs(_) => "sleep".to_string(),
                StepKind::DrainMs(_) => "drain".to_string(),
                StepKind::Block(inner) => format!("block[{}]", kinds(inner).join(",")),
            };
            match &s.when {
                Some(w) => format!("{w}:{k}"),
                None => k,
            }
        })
        .collect()
}

#[test]
fn a_block_groups_steps_under_one_condition() {
    let text = with_logout(&format!(
        r#"{HEAD}[[bindings.logout.steps]]
when = "shell"
steps = [
  {{ send = "exit\r" }},
  {{ expect = 'login: $' }},
  {{ send = "\r" }},
  {{ expect = {{ login = 'login: $', shell = 'vrb\$ $' }} }},
  {{ when = "shell", steps = [{{ send = "exit\r" }}, {{ expect = 'login: $' }}] }},
]
"#
    ));
    let p = parse(&text).unwrap();
    assert_eq!(
        kinds(&p.bindings["logout"].script),
        [
            "send",
            "expect",
            "shell:block[send,expect,send,expect,shell:block[send,expect]]"
        ]
    );
}

#[test]
fn a_block_may_be_written_as_nested_tables() {
    let text = with_logout(&format!(
        r#"{HEAD}[[bindings.logout.steps]]
when = "shell"
[[bindings.logout.steps.steps]]
send = "exit\r"
[[bindings.logout.steps.steps]]
expect = 'login: $'
"#
    ));
    let p = parse(&text).unwrap();
    assert_eq!(
        kinds(&p.bindings["logout"].script),
        ["send", "expect", "shell:block[send,expect]"]
    );
}

#[test]
fn the_shipped_single_step_conditions_still_load() {
    let p = parse(&vboard_text()).unwrap();
    assert_eq!(
        kinds(&p.bindings["logout"].script),
        ["send", "expect", "shell:send", "shell:expect"]
    );
}

#[test]
fn steps_after_a_conditional_expect_with_the_same_when_are_refused() {
    let text = with_logout(&format!(
        r#"{HEAD}[[bindings.logout.steps]]
when = "shell"
send = "exit\r"
[[bindings.logout.steps]]
when = "shell"
expect = 'login: $'
[[bindings.logout.steps]]
when = "shell"
send = "\r"
[[bindings.logout.steps]]
when = "shell"
expect = 'login: $'
"#
    ));
    let err = parse(&text).unwrap_err();
    let start = text.find("[bindings.logout]").unwrap();
    // Located at the `[[bindings.logout.steps]]` header of the step, two lines above its send.
    let line = text[..start].lines().count() + line_of(&text[start..], "send = \"\\r\"", 1) - 2;
    assert!(err.starts_with(&format!("boards/x.toml:{line}:")), "{err}");
    assert!(err.contains("bindings.logout.steps[4]"), "{err}");
    assert!(
        err.contains("the conditional expect bindings.logout.steps[3]"),
        "{err}"
    );
    assert!(err.contains("`steps = [{ send = "), "{err}");
    assert!(err.contains("when = \"shell\""), "{err}");
}

#[test]
fn the_trap_is_also_refused_after_a_conditional_block_that_expects() {
    let text = with_logout(&format!(
        r#"{HEAD}[[bindings.logout.steps]]
when = "shell"
steps = [{{ send = "exit\r" }}, {{ expect = 'login: $' }}]
[[bindings.logout.steps]]
when = "shell"
send = "\r"
"#
    ));
    let err = parse(&text).unwrap_err();
    assert!(err.contains("bindings.logout.steps[3]"), "{err}");
    assert!(
        err.contains("an expect in the conditional block bindings.logout.steps[2]"),
        "{err}"
    );
    assert!(err.contains("as one block"), "{err}");
}

#[test]
fn an_unconditional_expect_resets_the_trap() {
    let text = with_logout(&format!(
        r#"{HEAD}[[bindings.logout.steps]]
when = "shell"
expect = 'x'
[[bindings.logout.steps]]
send = "\r"
[[bindings.logout.steps]]
expect = {{ login = 'login: $', shell = 'vrb\$ $' }}
[[bindings.logout.steps]]
when = "shell"
send = "exit\r"
"#
    ));
    parse(&text).unwrap();
}

#[test]
fn block_mistakes_are_located() {
    let cases = [
        (
            r#"steps = [{ send = "exit\r" }]"#,
            "needs the `when` it runs under",
        ),
        (
            r#"when = "shell"
steps = []"#,
            "needs at least one step",
        ),
        (
            r#"when = "shell"
send = "x"
steps = [{ send = "exit\r" }]"#,
            "a block takes only `when` and `steps`",
        ),
        (
            r#"when = "shell"
steps = [{ when = "login", send = "exit\r" }]"#,
            "inside a block, a step takes no `when` of its own",
        ),
        (
            r#"when = "nowhere"
steps = [{ send = "exit\r" }]"#,
            "`when = \"nowhere\"` names no alternative of an earlier expect",
        ),
        (
            r#"when = "shell"
steps = [{ send = "{nope}\r" }]"#,
            "{nope} is not an argument of action logout",
        ),
        (
            r#"when = "shell"
steps = [{ expect = '(?P<colour>x)' }]"#,
            "capture group \"colour\" is not a value action logout reports",
        ),
        (
            r#"when = "shell"
steps = [{ expect = 'x', outcome = true }]"#,
            "\"match\" is not an outcome of action logout",
        ),
        (
            r#"when = "shell"
steps = [{ send = "x", colour = "blue" }]"#,
            "colour",
        ),
    ];
    for (block, want) in cases {
        let text = with_logout(&format!("{HEAD}[[bindings.logout.steps]]\n{block}\n"));
        let err = parse(&text).unwrap_err();
        let start = text.find("[bindings.logout]").unwrap();
        let head_line = text[..start].lines().count() + 1;
        assert!(err.contains(want), "{block}: {err}");
        let line: usize = err
            .strip_prefix("boards/x.toml:")
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not located: {err}"));
        assert!(line > head_line, "{block}: {err}");
    }
}

#[test]
fn a_plaintext_password_says_how_to_give_it() {
    let text = vboard_text();
    let cred = text
        .lines()
        .find(|l| l.starts_with("credentials.console"))
        .expect("the shipped profile declares console credentials");
    let start = cred.find("password = ").unwrap();
    let plain = format!("{}password = \"hunter2\" }}", &cred[..start]);
    let bad = text.replace(cred, &plain);
    let err = parse(&bad).unwrap_err();
    let line = line_of(&bad, &plain, 0);
    assert!(err.starts_with(&format!("boards/x.toml:{line}:")), "{err}");
    assert!(err.contains("must not be written in the profile"), "{err}");
    assert!(err.contains("{ env = \"VAR\" }"), "{err}");
    assert!(
        err.contains("{ file = \"path\", key = \"password\" }"),
        "{err}"
    );
    assert!(
        !err.contains("hunter2"),
        "the error repeats the secret: {err}"
    );
}

#[test]
fn secret_source_mistakes_are_explained() {
    let text = vboard_text();
    let cred = text
        .lines()
        .find(|l| l.starts_with("credentials.console"))
        .unwrap();
    let start = cred.find("password = ").unwrap();
    for (source, want) in [
        (
            "{ env = \"A\", file = \"b\" }",
            "give exactly one of `env` or `file`",
        ),
        (
            "{ env = \"A\", key = \"password\" }",
            "`key` goes with `file`",
        ),
        ("{ envv = \"A\" }", "envv"),
        ("42", "a secret source"),
    ] {
        let bad = text.replace(cred, &format!("{}password = {source} }}", &cred[..start]));
        let err = parse(&bad).unwrap_err();
        assert!(err.starts_with("boards/x.toml:"), "{source}: {err}");
        assert!(err.contains(want), "{source}: {err}");
    }
}

#[test]
fn the_readme_login_binding_loads() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = &readme[readme.find("## Writing a board profile").unwrap()..];
    let start = section.find("[bindings.login]").unwrap();
    let binding = &section[start..start + section[start..].find("```").unwrap()];
    let text = vboard_text();
    let (from, to) = (
        text.find("[bindings.login]").unwrap(),
        text.find("[bindings.logout]").unwrap(),
    );
    let text = format!("{}{binding}\n{}", &text[..from], &text[to..]);
    let p = parse(&text).unwrap();
    assert_eq!(
        kinds(&p.bindings["login"].script),
        [
            "send",
            "expect",
            "shell:block[send,expect]",
            "send",
            "expect",
            "send",
            "expect"
        ]
    );
}

/// A small profile with a console and a ble link, and `extra` (links or bindings) appended.
fn with_extra(extra: &str) -> Result<BoardProfile, String> {
    let base = r#"schema = 1
[board]
name = "small"
[identity]
manufacturer = "Test"
model = "S-1"
hardware_version = "1"
firmware_version = "1"
[[unit]]
serial = "S-0001"
[links.console]
kind = "serial"
path = "/dev/null"
[links.ble]
kind = "ble"
name = "S-1"
[ics.features]
a = true
"#;
    parse(&format!("{base}\n{extra}\n"))
}

#[test]
fn ble_steps_become_gatt_command_lines_and_run_only_on_a_ble_link() {
    let p = with_extra(
        r#"
[bindings.read-privacy-info]
link = "ble"
[[bindings.read-privacy-info.steps]]
ble = { subscribe = "0x2a19" }
[[bindings.read-privacy-info.steps]]
ble = { write = "7b5e0002-1d3c-4a6e-9b39-2f6c8e0f0a11", value = "hello", with_response = false }
[[bindings.read-privacy-info.steps]]
ble = { read = "0x2A19" }
[[bindings.read-privacy-info.steps]]
expect = { shown = 'read 0x2a19: ', unavailable = 'refused' }
outcome = true
"#,
    )
    .unwrap();
    let sends: Vec<String> = p.bindings["read-privacy-info"]
        .script
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Send(t) => Some(t.source().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sends,
        [
            "subscribe 0x2a19\n",
            "write-cmd 7b5e0002-1d3c-4a6e-9b39-2f6c8e0f0a11 hello\n",
            "read 0x2A19\n"
        ]
    );
    let on_serial = with_extra(
        r#"
[bindings.read-privacy-info]
link = "console"
[[bindings.read-privacy-info.steps]]
ble = { read = "0x2a19" }
"#,
    )
    .unwrap_err();
    assert!(
        on_serial.contains("a `ble` step runs only on a ble link"),
        "{on_serial}"
    );
    for (step, says) in [
        (r#"ble = { write = "0x2a19" }"#, "`value` goes with `write`"),
        (
            r#"ble = { read = "0x2a19", subscribe = "0x2a19" }"#,
            "exactly one of read, write, subscribe",
        ),
        (r#"ble = { read = "0x2a1" }"#, "is not a BLE UUID"),
        (
            r#"ble = { read = "0x2a19", value = "x" }"#,
            "`value` goes with `write`",
        ),
    ] {
        let err = with_extra(&format!(
            "[bindings.read-privacy-info]\nlink = \"ble\"\n[[bindings.read-privacy-info.steps]]\n{step}\n"
        ))
        .unwrap_err();
        assert!(err.contains(says), "{step}: {err}");
    }
}

#[test]
fn link_carried_actions_need_their_link_kind_and_no_steps() {
    let vboard = vboard_text();
    let swap = |from: &str, to: &str| parse(&vboard.replacen(from, to, 1)).unwrap_err();
    let err = swap(
        "[bindings.list-usb]\nlink = \"usb\"",
        "[bindings.list-usb]\nlink = \"console\"",
    );
    assert!(
        err.contains("carried out by a link of kind \"usb\""),
        "{err}"
    );
    let err = swap(
        "[bindings.survey-ble]\nlink = \"ble\"",
        "[bindings.survey-ble]\nlink = \"ble\"\n[[bindings.survey-ble.steps]]\nsend = \"x\"",
    );
    assert!(err.contains("takes no steps"), "{err}");
    let err = swap(
        "[bindings.identify]\nlink = \"console\"",
        "[bindings.identify]\nlink = \"usb\"",
    );
    assert!(
        err.contains("usb link \"usb\" cannot run a script"),
        "{err}"
    );
}

#[test]
fn usb_and_ble_links_are_checked_at_load() {
    for (link, says) in [
        (
            "kind = \"ble\"\nradio = \"/tmp/x\"",
            "at least one of `name`, `address` or `service`",
        ),
        ("kind = \"ble\"\nservice = \"0x18\"", "is not a BLE UUID"),
        (
            "kind = \"ble\"\nname = \"x\"\nregions = []",
            "takes no memory fields",
        ),
        (
            "kind = \"usb\"",
            "a usb link needs `usb = { vid, pid, serial }`",
        ),
        (
            "kind = \"usb\"\nusb = { vid = \"0x1\", pid = \"0x2\" }\nreattach_ms = 5",
            "takes no path or reattach_ms",
        ),
        (
            "kind = \"serial\"\npath = \"/dev/null\"\nbus = \"/tmp/bus.json\"",
            "bus and reattach_ms go with `usb`",
        ),
        (
            "kind = \"memory\"\nsource = \"file\"\npath = \"/x\"\nbus = \"/tmp/b\"",
            "takes no bus or reattach_ms",
        ),
        (
            "kind = \"serial\"\npath = \"/dev/null\"\nname = \"x\"",
            "takes no ble fields",
        ),
        (
            "kind = \"serial\"\nnet = \"telnet://h:1\"",
            "give rfc2217://HOST:PORT",
        ),
        (
            "kind = \"serial\"\nnet = \"rfc2217://h:1\"\nline = \"9N1\"",
            "e.g. \"8N1\"",
        ),
        (
            "kind = \"serial\"\nnet = \"tcp://h:1\"\nflow = \"hw\"",
            "none, xonxoff or rtscts",
        ),
        (
            "kind = \"serial\"\nnet = \"tcp://h:1\"\npath = \"/dev/null\"",
            "exactly one of `path`, `usb` or `net`",
        ),
        (
            "kind = \"usb\"\nusb = { vid = \"0x1\", pid = \"0x2\" }\nline = \"8N1\"",
            "takes no net, line or flow",
        ),
    ] {
        let err = with_extra(&format!("[links.extra]\n{link}\n")).unwrap_err();
        assert!(err.contains(says), "{link}: {err}");
    }
}

#[test]
fn expect_alternatives_keep_the_order_they_are_written_in() {
    let p = with_extra(
        r#"
[bindings.logout]
link = "console"
[[bindings.logout.steps]]
send = "\r"
[[bindings.logout.steps]]
expect = { zeta = 'z', alpha = 'a', mid = 'm' }
"#,
    )
    .unwrap();
    let StepKind::Expect(e) = &p.bindings["logout"].script[1].kind else {
        panic!("an expect")
    };
    let names: Vec<&str> = e.alternatives.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
    let twice = with_extra(
        "[bindings.logout]\nlink = \"console\"\n[[bindings.logout.steps]]\nexpect = { a = 'x', a = 'y' }\n",
    )
    .unwrap_err();
    assert!(
        twice.contains("duplicate key") || twice.contains("given twice"),
        "{twice}"
    );
}
