//! No secret of a run reaches anything the run leaves behind, in any form.
//!
//! The virtual reference board runs once as it is and once under each defect of `boards/vboard.toml`,
//! every case, in parallel. Each run uses a copy of the profile that keeps the board's state directory
//! (and so its printed label, with the unit password) and a copy of the mock cloud's device password
//! where this test can read them afterwards; the board itself is unchanged. Then every file of the run
//! is searched, recursively: `report.json`, `report.html`, `report.dsse.json` and its decoded payload,
//! the JUnit file, every evidence file (transcripts, flow log, payloads), and hilt's own stdout and
//! stderr with `HILT_LOG=hilt=debug` (which includes the board's output). Each secret is looked for
//! as it is, in upper and in lower case (case-insensitively), as hex (either case), base64 (standard
//! and URL-safe, at each alignment, of each case form) and percent-encoding, and every beginning of
//! it from 8 characters on, as is and as hex.
//!
//! Planted canaries too: the profile's flash link becomes a dump command that also keeps a copy of
//! every dump where this test reads it. Under `plaintext-wifi-psk` and `obfuscated-secrets` the
//! board stores the storage case's canaries (a Wi-Fi passphrase, a name and an email made of random
//! characters, secret case variables) readably, so the test learns them from the dumps and searches
//! every output for them in every form.
//!
//! A secret shorter than 8 characters (the universal default `admin`) is a common word: as is it is
//! looked for as a whole word only (`administrator` is no leak), outside the published texts the
//! report quotes (the provision catalogue's "alerts the user or admin", the scenarios' own texts),
//! and its encodings only where they are 8 characters or longer.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{root, verdict};

const MIN_PREFIX: usize = 8;

/// The defects `boards/vboard.toml` declares.
fn defects(profile: &str) -> Vec<String> {
    let v: toml::Value = toml::from_str(profile).unwrap();
    let d = v["launch"]["defects"].as_table().unwrap();
    assert!(d.len() >= 8, "the reference board declares its defects");
    d.keys().cloned().collect()
}

/// `profile` with each unit's state directory at `dir/board-N` (kept: its label holds the unit
/// password), a launch that first copies the mock cloud's device password to `dir/cloud.password`,
/// and a flash link that keeps a copy of every dump in `dir/dumps`.
fn knowing_profile(profile: &str, dir: &Path) -> String {
    let d = dir.display();
    let swaps = [
        // One instance for the whole run: its state directory and secrets, kept above, are the run's.
        (
            "fresh_per_case = true".to_string(),
            "fresh_per_case = false".to_string(),
        ),
        (
            r#""{hilt}", "vboard", "run","#.to_string(),
            format!(
                r#""sh", "-c", 'cp "$0" {d}/cloud.password && exec "$@"', "{{cloud.password_file}}", "{{hilt}}", "vboard", "run","#
            ),
        ),
        (
            r#""--state", "{state}""#.to_string(),
            format!(r#""--state", "{d}/board-{{unit.index}}""#),
        ),
        (
            r#"file = "{state}/label.txt""#.to_string(),
            format!(r#"file = "{d}/board-{{unit.index}}/label.txt""#),
        ),
        (
            "source = \"file\"\npath = \"{state}/flash.img\"".to_string(),
            format!(
                "source = \"command\"\ncommand = [\"sh\", \"-c\", \"mkdir -p {d}/dumps && cp {d}/board-{{unit.index}}/flash.img {d}/dumps/unit{{unit.index}}-$$.img && cp {d}/board-{{unit.index}}/flash.img {{state}}/dump.img\"]\noutput = \"{{state}}/dump.img\""
            ),
        ),
    ];
    let mut out = profile.to_string();
    for (from, to) in swaps {
        assert!(
            out.contains(&from),
            "boards/vboard.toml no longer has {from}"
        );
        out = out.replace(&from, &to);
    }
    out
}

struct Run {
    name: String,
    code: Option<i32>,
    /// (what, bytes) of everything the run left behind.
    outputs: Vec<(String, Vec<u8>)>,
    /// (what, value).
    secrets: Vec<(String, String)>,
    report: serde_json::Value,
}

fn run(profile: &str, defect: Option<&str>, tmp: &Path) -> Run {
    let name = defect.unwrap_or("reference").to_string();
    let dir = tmp.join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let board = dir.join("vboard.toml");
    std::fs::write(&board, knowing_profile(profile, &dir)).unwrap();
    let out = dir.join("run");
    let junit = out.join("junit.xml");
    let mut args: Vec<&str> = vec![
        "run",
        "--board",
        board.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ];
    if let Some(d) = defect {
        args.extend(["--defect", d]);
    }
    let o = Command::new(env!("CARGO_BIN_EXE_hilt"))
        .args(&args)
        .env("HILT_DEV_KEY_DIR", dir.join("keys"))
        .env("HILT_LOG", "hilt=debug")
        .current_dir(root())
        .output()
        .expect("run hilt");
    let mut outputs = vec![
        (format!("{name}: stdout"), o.stdout.clone()),
        (
            format!("{name}: stderr (HILT_LOG=hilt=debug)"),
            o.stderr.clone(),
        ),
    ];
    let context = || {
        format!(
            "{name}: exit {:?}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    assert!(out.join("report.json").is_file(), "{}", context());
    assert!(junit.is_file(), "{}", context());
    collect(&out, &out, &name, &mut outputs);
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.dsse.json")).unwrap()).unwrap();
    let payload = base64_decode(envelope["payload"].as_str().unwrap());
    outputs.push((
        format!("{name}: report.dsse.json payload, decoded"),
        payload,
    ));
    let label = std::fs::read_to_string(dir.join("board-1/label.txt")).expect("the unit's label");
    let password = |label: &str| {
        label
            .lines()
            .find_map(|l| l.strip_prefix("password="))
            .expect("a password= line")
            .trim()
            .to_string()
    };
    let unit = password(&label);
    let mut secrets = vec![("the unit password".to_string(), unit.clone())];
    // The fleet's other units, when a case launched them.
    for n in 2..=3 {
        if let Ok(label) = std::fs::read_to_string(dir.join(format!("board-{n}/label.txt"))) {
            secrets.push((format!("unit {n}'s password"), password(&label)));
        }
    }
    secrets.extend(planted(&dir.join("dumps")));
    let cloud = std::fs::read_to_string(dir.join("cloud.password"))
        .expect("the mock cloud's device password")
        .trim()
        .to_string();
    assert!(!unit.is_empty() && !cloud.is_empty());
    let report = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    Run {
        name,
        code: o.status.code(),
        outputs,
        secrets: {
            secrets.push(("the mock cloud's device password".into(), cloud));
            secrets
        },
        report,
    }
}

/// The canaries the board stored readably in any dump kept in `dumps`: a Wi-Fi passphrase in the
/// clear (`wifi_cache`), or the personal data in a base64-only section (`privacy_encoded`). The
/// board's image is `VRBFLASH`, version, body length (u32 LE at 12), CRC, then the JSON body at 20.
fn planted(dumps: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dumps) else {
        return found;
    };
    for e in entries {
        let image = std::fs::read(e.unwrap().path()).unwrap();
        let len = u32::from_le_bytes(image[12..16].try_into().unwrap()) as usize;
        let body: serde_json::Value = serde_json::from_slice(&image[20..20 + len]).unwrap();
        let mut keep = |what: &str, v: &serde_json::Value| {
            if let Some(t) = v.as_str().filter(|t| t.len() >= MIN_PREFIX) {
                let t = t.trim_end_matches("@example.org").to_string();
                if !found.iter().any(|(_, f)| *f == t) {
                    found.push((format!("a planted {what}"), t));
                }
            }
        };
        keep("Wi-Fi passphrase", &body["wifi_cache"]["psk"]);
        if let Some(encoded) = body["privacy_encoded"].as_str() {
            let privacy: serde_json::Value =
                serde_json::from_slice(&base64_decode(encoded)).unwrap();
            keep("owner name", &privacy["profile"]["name"]);
            keep("Wi-Fi passphrase", &privacy["profile"]["wifi"]["psk"]);
        }
    }
    found
}

/// Every file under `dir`, recursively.
fn collect(base: &Path, dir: &Path, run: &str, into: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(base, &p, run, into);
        } else {
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            into.push((format!("{run}: {rel}"), std::fs::read(&p).unwrap()));
        }
    }
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Standard or URL-safe, padded or not.
fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let t = text.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(t)
        .or_else(|_| URL_SAFE_NO_PAD.decode(t))
        .expect("base64")
}

/// The base64 characters that depend on `data` alone, wherever it sits in an encoded stream: at each
/// of the three alignments, without the groups shared with what comes before or after it.
fn base64_cores(data: &[u8]) -> Vec<String> {
    (0..3)
        .map(|lead| {
            let mut padded = vec![0u8; lead];
            padded.extend_from_slice(data);
            let enc = base64_encode(&padded);
            let from = if lead > 0 { 4 } else { 0 };
            let to = 4 * (padded.len() / 3);
            enc.get(from..to).unwrap_or("").to_string()
        })
        .filter(|c| c.len() >= MIN_PREFIX)
        .collect()
}

/// Published sentences a report quotes, in which a short secret may occur as a plain word: every
/// string of at least 24 characters in the provision catalogue and in the scenarios, as is and
/// HTML-escaped.
fn public_texts() -> Vec<String> {
    fn strings(v: &toml::Value, into: &mut Vec<String>) {
        match v {
            toml::Value::String(s) if s.len() >= 24 => into.push(s.clone()),
            toml::Value::Array(a) => a.iter().for_each(|v| strings(v, into)),
            toml::Value::Table(t) => t.values().for_each(|v| strings(v, into)),
            _ => {}
        }
    }
    fn tomls(dir: &Path, into: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                tomls(&p, into);
            } else if p.extension().is_some_and(|x| x == "toml") {
                into.push(p);
            }
        }
    }
    let mut files = Vec::new();
    tomls(&root().join("harness/model/catalogue"), &mut files);
    tomls(&root().join("test-cases"), &mut files);
    let mut out = Vec::new();
    for f in files {
        let v: toml::Value = toml::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        strings(&v, &mut out);
    }
    let escaped: Vec<String> = out
        .iter()
        .map(|s| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&#39;")
        })
        .collect();
    out.extend(escaped);
    out
}

/// `hay` with every occurrence of `texts` blanked out.
fn without(hay: &[u8], texts: &[String]) -> Vec<u8> {
    let mut out = hay.to_vec();
    for t in texts.iter().map(String::as_bytes) {
        let mut at = 0;
        while at + t.len() <= out.len() {
            if &out[at..at + t.len()] == t {
                out[at..at + t.len()].fill(b' ');
                at += t.len();
            } else {
                at += 1;
            }
        }
    }
    out
}

/// A form of a secret to look for.
struct Needle {
    what: String,
    text: String,
    /// Compare ASCII case-insensitively.
    any_case: bool,
    /// Only where no ASCII letter or digit is next to it.
    whole_word: bool,
}

fn needles(secret: &str) -> Vec<Needle> {
    let mut out = Vec::new();
    let mut push = |what: &str, text: String, any_case: bool, whole_word: bool| {
        if whole_word || text.len() >= MIN_PREFIX {
            out.push(Needle {
                what: what.to_string(),
                text,
                any_case,
                whole_word,
            });
        }
    };
    // Its first 8 characters in any case: also every longer beginning, and the whole secret as is,
    // upper or lower case. A shorter secret: whole, as a word.
    let short = secret.len() < MIN_PREFIX;
    let head = &secret[..secret.len().min(MIN_PREFIX)];
    let what = if short {
        "as is, upper or lower case"
    } else {
        "its first 8 or more characters (or all), in any case"
    };
    push(what, head.into(), true, short);
    push(
        "as hex (its first 8 or more characters, either case)",
        hex::encode(head),
        true,
        false,
    );
    let percent: String = head.bytes().map(|b| format!("%{b:02x}")).collect();
    push("percent-encoded", percent, true, false);
    let forms = [
        ("as is, base64", secret.to_string()),
        ("upper case, base64", secret.to_ascii_uppercase()),
        ("lower case, base64", secret.to_ascii_lowercase()),
    ];
    for (what, text) in forms {
        for core in base64_cores(text.as_bytes()) {
            let url = core.replace('+', "-").replace('/', "_");
            push(what, core, false, false);
            push(&format!("{what} (URL-safe)"), url, false, false);
        }
    }
    out
}

/// An output as text, and as lower-case text, to search.
struct Hay {
    text: String,
    lower: String,
}

impl Hay {
    fn new(bytes: &[u8]) -> Hay {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let lower = text.to_ascii_lowercase();
        Hay { text, lower }
    }
}

/// Where `n` occurs in `hay`, if anywhere.
fn find(hay: &Hay, n: &Needle) -> Option<usize> {
    let (text, needle) = if n.any_case {
        (&hay.lower, n.text.to_ascii_lowercase())
    } else {
        (&hay.text, n.text.clone())
    };
    let word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    let bytes = text.as_bytes();
    text.match_indices(&needle).map(|(at, _)| at).find(|&at| {
        !(n.whole_word
            && (word(at.checked_sub(1).and_then(|i| bytes.get(i)))
                || word(bytes.get(at + needle.len()))))
    })
}

/// One line per leak: where, which secret in which form, and the text around it (the secret
/// itself replaced).
fn leaks(run: &Run, public: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for (secret_name, secret) in &run.secrets {
        let quoted: Vec<String> = public
            .iter()
            .filter(|p| {
                p.to_ascii_lowercase()
                    .contains(&secret.to_ascii_lowercase())
            })
            .cloned()
            .collect();
        let needles = needles(secret);
        for (what, bytes) in &run.outputs {
            let hay = Hay::new(bytes);
            let unquoted = needles
                .iter()
                .any(|n| n.whole_word && !quoted.is_empty())
                .then(|| Hay::new(&without(bytes, &quoted)));
            for n in &needles {
                let hay = match &unquoted {
                    Some(u) if n.whole_word => u,
                    _ => &hay,
                };
                if let Some(at) = find(hay, n) {
                    let text = hay.text.as_bytes();
                    let before = &text[at.saturating_sub(60)..at];
                    let end = (at + n.text.len() + 60).min(text.len());
                    let after = &text[at + n.text.len()..end];
                    found.push(format!(
                        "{what}: {secret_name} ({} characters), {}: …{}«HERE»{}…",
                        secret.len(),
                        n.what,
                        String::from_utf8_lossy(before).escape_debug(),
                        String::from_utf8_lossy(after).escape_debug()
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn no_secret_reaches_any_output_in_any_form_under_any_defect() {
    let profile = std::fs::read_to_string(root().join("boards/vboard.toml")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let mut variants: Vec<Option<String>> = vec![None];
    variants.extend(defects(&profile).into_iter().map(Some));
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = variants
            .iter()
            .map(|d| {
                let (profile, tmp) = (&profile, tmp.path());
                s.spawn(move || run(profile, d.as_deref(), tmp))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("{} runs took {:?}", runs.len(), started.elapsed());
    let public = public_texts();
    let mut all = Vec::new();
    for r in &runs {
        // Conformant, a FAIL, or undecided: whatever the verdicts, a signed report was written. (Under
        // load a timing-judged case may not decide; the defects that matter here are checked below.)
        assert!(
            matches!(r.code, Some(0 | 1 | 3)),
            "{}: exit {:?}",
            r.name,
            r.code
        );
        all.extend(leaks(r, &public));
    }
    // The paths the leaks came through were taken: the derived password was found (its upper-case
    // form and its prefixes were sent), and the universal default was tried.
    let derived = runs
        .iter()
        .find(|r| r.name == "serial-derived-password")
        .unwrap();
    assert_eq!(
        verdict(&derived.report, "pw.console.not-derived-from-serial"),
        "FAIL"
    );
    let universal = runs
        .iter()
        .find(|r| r.name == "universal-default-password")
        .unwrap();
    assert_eq!(
        verdict(&universal.report, "pw.console.no-universal-default"),
        "FAIL"
    );
    // The storage defects made the board store the planted canaries readably, so this test knew them
    // and searched for them: a passphrase under one, a name and a passphrase under the other.
    for (defect, at_least) in [("plaintext-wifi-psk", 1), ("obfuscated-secrets", 2)] {
        let r = runs.iter().find(|r| r.name == defect).unwrap();
        let planted = r
            .secrets
            .iter()
            .filter(|(what, _)| what.starts_with("a planted"))
            .count();
        assert!(
            planted >= at_least,
            "{defect}: {planted} planted canaries learnt"
        );
    }
    // Masked, not absent: the attempts with the unit's own password show the marker, and so does
    // the transcript of the login with it.
    for r in &runs {
        let json = r.report.to_string();
        assert!(json.contains("\"password\":\"‹secret›\""), "{}", r.name);
        let (_, log) = r
            .outputs
            .iter()
            .find(|(what, _)| what.ends_with("evidence/bf.console.lockout/console.log"))
            .unwrap_or_else(|| panic!("{}: no console transcript of bf.console.lockout", r.name));
        assert!(
            String::from_utf8_lossy(log).contains("‹secret:"),
            "{}: the owner's password must appear masked",
            r.name
        );
    }
    eprintln!("searched in {:?} in all", started.elapsed());
    assert!(
        all.is_empty(),
        "{} leak(s) of a secret:\n{}",
        all.len(),
        all.join("\n")
    );
}

#[test]
fn the_search_finds_every_form_it_claims_to() {
    let secret = "2a7438eda0cd";
    let forms = [
        "2a7438eda0cd".to_string(),
        "2A7438EDA0CD".to_string(),
        "2a7438ed".to_string(),
        "2A7438EDA0".to_string(),
        hex::encode(secret),
        hex::encode(secret).to_uppercase(),
        hex::encode("2a7438ed"),
        secret.bytes().map(|b| format!("%{b:02X}")).collect(),
        base64_encode(secret.as_bytes()),
        format!("x{}", base64_encode(format!("u:{secret}").as_bytes())),
        base64_encode(b"2A7438EDA0CD")
            .replace('+', "-")
            .replace('/', "_"),
    ];
    for form in &forms {
        let hay = format!("{{\"data\":\"{form}\"}}");
        let run = Run {
            name: "t".into(),
            code: Some(0),
            outputs: vec![("f".into(), hay.into_bytes())],
            secrets: vec![("pw".into(), secret.into())],
            report: serde_json::Value::Null,
        };
        assert!(!leaks(&run, &[]).is_empty(), "{form} not found");
    }
    let clean = Run {
        name: "t".into(),
        code: Some(0),
        outputs: vec![(
            "f".into(),
            b"password=\xe2\x80\xb9secret\xe2\x80\xba 2a7438e".to_vec(),
        )],
        secrets: vec![("pw".into(), secret.into()), ("pw".into(), "admin".into())],
        report: serde_json::Value::Null,
    };
    assert_eq!(leaks(&clean, &[]), Vec::<String>::new());
    let word = |hay: &str| Run {
        name: "t".into(),
        code: Some(0),
        outputs: vec![("f".into(), hay.as_bytes().to_vec())],
        secrets: vec![("pw".into(), "admin".into())],
        report: serde_json::Value::Null,
    };
    let public = public_texts();
    assert!(public.iter().any(|p| p.contains("the user or admin and")));
    assert!(leaks(&word("an administrator"), &[]).is_empty());
    assert_eq!(
        leaks(&word("login succeeded for ADMIN\n"), &public).len(),
        1
    );
    let quoted = "<td>On detecting an unauthorised software change, the device alerts the user or \
                  admin and connects only as the alert needs</td> \"username\": \"admin\"";
    assert_eq!(
        leaks(&word(quoted), &public).len(),
        1,
        "the quote is no leak, the rest is"
    );
    assert_eq!(
        base64_decode(&base64_encode(b"any bytes\x00\xff")),
        b"any bytes\x00\xff"
    );
}
