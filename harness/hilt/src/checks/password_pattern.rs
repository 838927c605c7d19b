//! Whether the default passwords printed on the labels of several units of one model are unique and
//! show no pattern across the fleet (EN 303 645 5.1-1/5.1-2; UK PSTI Sch.1 para 1(2)): not from an
//! incremental counter ((a): [`Finding::Counter`], [`Finding::SmallDifference`], shared prefixes and
//! suffixes), not derived from public information or a product identifier such as the serial, the
//! MAC or the model, nor an unkeyed hash of one ((b)–(c): [`Finding::FromIdentifier`]), and not
//! otherwise guessable ((d): [`Finding::Weak`] by zxcvbn, [`Finding::Short`]). Pure analysis over
//! the values read; the caller needs ≥3 units for a verdict. A finding names units by 1-based index
//! and never carries or displays any part of a password.

// Until the password-uniqueness check kind calls `analyze`.

use std::fmt;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// One unit's identifiers and the default password read from its label.
pub(crate) struct UnitPassword<'a> {
    pub serial: &'a str,
    pub mac: Option<&'a str>,
    pub password: &'a str,
}

pub(crate) struct Policy {
    pub min_length: usize,
    /// zxcvbn score, 0..=4.
    pub min_score: u8,
    pub model: String,
}

/// A pattern found. Units are 1-based indices into the slice given to [`analyze`]; no variant holds
/// any part of a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// Units with the same password.
    Duplicate { units: Vec<usize> },
    /// Numeric (decimal, or single-case hex of ≥4) parts that count across all units: `step` is the
    /// common difference of the values sorted, or their smallest gap when they merely lie within
    /// 1000 of each other.
    Counter { units: Vec<usize>, step: i64 },
    /// All units share this many leading characters (≥ max(3, 25% of the shortest)).
    SharedPrefix { len: usize },
    /// All units share this many trailing characters (≥ max(3, 25% of the shortest)).
    SharedSuffix { len: usize },
    /// The password contains, or is an unkeyed hash of, an identifier.
    FromIdentifier { unit: usize, what: &'static str },
    /// zxcvbn score (serial, MAC and model as user inputs) below the policy's.
    Weak { unit: usize, score: u8, min: u8 },
    /// Fewer characters than the policy's minimum.
    Short { unit: usize, len: usize, min: usize },
    /// Two passwords of ≥8 characters within 2 edits (Levenshtein) of each other.
    SmallDifference {
        units: (usize, usize),
        distance: usize,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Finding::*;
        let list = |u: &[usize]| format!("{u:?}").trim_matches(['[', ']']).to_string();
        match self {
            Duplicate { units } => write!(f, "units {}: identical", list(units)),
            Counter { units, step } => {
                write!(
                    f,
                    "units {}: numeric parts step by {step} (a counter)",
                    list(units)
                )
            }
            SharedPrefix { len } => write!(f, "all units share the first {len} characters"),
            SharedSuffix { len } => write!(f, "all units share the last {len} characters"),
            FromIdentifier { unit, what } => write!(f, "unit {unit}: derived from its {what}"),
            Weak { unit, score, min } => {
                write!(f, "unit {unit}: guessable, zxcvbn score {score} < {min}")
            }
            Short { unit, len, min } => write!(f, "unit {unit}: only {len} characters (< {min})"),
            SmallDifference {
                units: (a, b),
                distance: d,
            } => {
                write!(
                    f,
                    "units {a} and {b}: {d} edit(s) apart (a counter in disguise)"
                )
            }
        }
    }
}

/// Every pattern found across `units`: duplicates, counters, shared prefixes/suffixes, then per unit
/// derivations from identifiers, shortness and weakness, then near-identical pairs.
pub(crate) fn analyze(units: &[UnitPassword], policy: &Policy) -> Vec<Finding> {
    let pws: Vec<&str> = units.iter().map(|u| u.password).collect();
    let mut out = Vec::new();
    for (i, p) in pws.iter().enumerate() {
        let units: Vec<usize> = (i..pws.len())
            .filter(|&j| pws[j] == *p)
            .map(|j| j + 1)
            .collect();
        if units.len() > 1 && !pws[..i].contains(p) {
            out.push(Finding::Duplicate { units });
        }
    }
    out.extend(counter(&pws));
    out.extend(shared(&pws));
    for (i, u) in units.iter().enumerate() {
        let unit = i + 1;
        let derived = from_identifiers(u, &policy.model).into_iter();
        out.extend(derived.map(|what| Finding::FromIdentifier { unit, what }));
        let (len, min) = (u.password.chars().count(), policy.min_length);
        if len < min {
            out.push(Finding::Short { unit, len, min });
        }
        let mac = u.mac.unwrap_or_default();
        let (serial, mac_hex) = (alnum_lower(u.serial), alnum_lower(mac));
        let mut inputs = vec![u.serial, &serial, mac, &mac_hex, &policy.model];
        inputs.extend(policy.model.split_whitespace());
        inputs.retain(|s| !s.is_empty());
        let score = u8::from(zxcvbn::zxcvbn(u.password, &inputs).score());
        let min = policy.min_score;
        if score < min {
            out.push(Finding::Weak { unit, score, min });
        }
    }
    for i in 0..pws.len() {
        for j in i + 1..pws.len() {
            let (a, b, units) = (pws[i], pws[j], (i + 1, j + 1));
            if a != b && a.chars().count() >= 8 && b.chars().count() >= 8 {
                let distance = levenshtein(a, b);
                if distance <= 2 {
                    out.push(Finding::SmallDifference { units, distance });
                }
            }
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Radix {
    Dec,
    Hex,
}

/// The numeric runs of `pw` as (digit count, value if it fits an i64) and its skeleton: `pw` with
/// each run replaced by NUL. Decimal runs are maximal digit runs; hex runs are maximal runs of hex
/// digits, at least 4 long, holding a letter, all in one case (mixed case is random text).
fn runs(pw: &str, radix: Radix) -> (Vec<(usize, Option<i64>)>, String) {
    let chars: Vec<char> = pw.chars().collect();
    let (mut runs, mut skeleton, mut i) = (Vec::new(), String::new(), 0);
    while i < chars.len() {
        let in_run =
            |c: &&char| c.is_ascii_digit() || (radix == Radix::Hex && c.is_ascii_hexdigit());
        let j = i + chars[i..].iter().take_while(in_run).count();
        if j == i {
            skeleton.push(chars[i]);
            i += 1;
            continue;
        }
        let run: String = chars[i..j].iter().collect();
        let one_case = run == run.to_lowercase() || run == run.to_uppercase();
        let (counts, base) = match radix {
            Radix::Dec => (true, 10),
            Radix::Hex => (
                run.len() >= 4 && one_case && run.contains(char::is_alphabetic),
                16,
            ),
        };
        if counts {
            runs.push((run.len(), i64::from_str_radix(&run, base).ok()));
            skeleton.push('\0');
        } else {
            skeleton.push_str(&run);
        }
        i = j;
    }
    (runs, skeleton)
}

/// A counter in some numeric column: runs aligned from the start, and from the end when the units
/// have different numbers of runs (a random part before a counter).
fn counter(pws: &[&str]) -> Option<Finding> {
    for radix in [Radix::Dec, Radix::Hex] {
        let parsed: Vec<_> = pws.iter().map(|p| runs(p, radix)).collect();
        let first = parsed.first()?;
        let same_skeleton = parsed.iter().all(|(_, s)| *s == first.1);
        let equal_counts = parsed.iter().all(|(r, _)| r.len() == first.0.len());
        let shortest = parsed.iter().map(|(r, _)| r.len()).min()?;
        for k in 0..shortest {
            for from_end in [false, true].into_iter().filter(|&e| !(e && equal_counts)) {
                let at =
                    |r: &Vec<(usize, Option<i64>)>| r[if from_end { r.len() - 1 - k } else { k }];
                let col: Option<Vec<(usize, i64)>> = parsed
                    .iter()
                    .map(|(r, _)| at(r).1.map(|v| (at(r).0, v)))
                    .collect();
                if let Some(step) = col.and_then(|c| progression(&c, same_skeleton)) {
                    let units = (1..=pws.len()).collect();
                    return Some(Finding::Counter { units, step });
                }
            }
        }
    }
    None
}

/// The step when distinct values, sorted, form an arithmetic progression or lie within 1000 of each
/// other. Unless the rest of the passwords is identical, chance must be ruled out: a progression
/// needs ≥3 values of ≥3 digits, closeness ≥5 digits.
fn progression(col: &[(usize, i64)], same_skeleton: bool) -> Option<i64> {
    let width = col.iter().map(|c| c.0).min()?;
    let mut vals: Vec<i64> = col.iter().map(|c| c.1).collect();
    vals.sort_unstable();
    let gaps: Vec<i64> = vals.windows(2).map(|w| w[1] - w[0]).collect();
    let step = *gaps.iter().min().filter(|&&g| g > 0)?;
    let arithmetic = gaps.iter().all(|&g| g == step);
    let close = vals[vals.len() - 1] - vals[0] <= 1000;
    let found = if same_skeleton {
        arithmetic || close
    } else {
        (arithmetic && vals.len() >= 3 && width >= 3) || (close && width >= 5)
    };
    found.then_some(step)
}

fn shared(pws: &[&str]) -> Vec<Finding> {
    if pws.len() < 2 || pws.iter().all(|p| *p == pws[0]) {
        return Vec::new();
    }
    let chars: Vec<Vec<char>> = pws.iter().map(|p| p.chars().collect()).collect();
    let shortest = chars.iter().map(Vec::len).min().unwrap_or(0);
    let need = 3.max(shortest.div_ceil(4));
    let common = |at: &dyn Fn(&[char], usize) -> char| {
        (0..shortest)
            .take_while(|&i| chars.iter().all(|c| at(c, i) == at(&chars[0], i)))
            .count()
    };
    let (prefix, suffix) = (common(&|c, i| c[i]), common(&|c, i| c[c.len() - 1 - i]));
    let mut out = Vec::new();
    if prefix >= need {
        out.push(Finding::SharedPrefix { len: prefix });
    }
    if suffix >= need {
        out.push(Finding::SharedSuffix { len: suffix });
    }
    out
}

fn alnum_lower(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether `pw` (≥8 characters) is a piece of the hex MD5, SHA-1 or SHA-256 of one of `ids`.
fn unkeyed_hash_of(pw: &str, ids: &[&str]) -> bool {
    let pw = pw.to_lowercase();
    let piece = |h: &[u8]| hex::encode(h).contains(&pw);
    let of =
        |b: &[u8]| piece(&Md5::digest(b)) || piece(&Sha1::digest(b)) || piece(&Sha256::digest(b));
    pw.len() >= 8 && ids.iter().any(|id| !id.is_empty() && of(id.as_bytes()))
}

/// What of the unit's identifiers, or the model, its password contains (case and separators
/// ignored), or whose unkeyed hash (hex) it is a piece of.
fn from_identifiers(u: &UnitPassword, model: &str) -> Vec<&'static str> {
    let pw = alnum_lower(u.password);
    let mut found = Vec::new();
    let serial = alnum_lower(u.serial);
    let digit_runs = u
        .serial
        .split(|c: char| !c.is_ascii_digit())
        .filter(|r| r.len() >= 4);
    let mut windows = digit_runs.flat_map(|r| (0..=r.len() - 4).map(move |i| &r[i..i + 4]));
    if serial.len() >= 4 && pw.contains(&serial) {
        found.push("serial number");
    } else if windows.any(|w| pw.contains(w)) {
        found.push("serial number digits");
    }
    if unkeyed_hash_of(u.password, &[u.serial, &serial, &serial.to_uppercase()]) {
        found.push("serial number (unkeyed hash)");
    }
    if let Some(mac) = u.mac {
        let hex = alnum_lower(mac);
        if hex.len() >= 6 && pw.contains(&hex) {
            found.push("MAC address");
        } else if hex.len() >= 6 && pw.contains(&hex[hex.len() - 6..]) {
            found.push("MAC address (last 6 hex digits)");
        }
        let forms = [mac, &mac.to_lowercase(), &hex, &hex.to_uppercase()];
        if unkeyed_hash_of(u.password, &forms) {
            found.push("MAC address (unkeyed hash)");
        }
    }
    let model = alnum_lower(model);
    if model.len() >= 3 && pw.contains(&model) {
        found.push("model name");
    }
    found
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != *cb)).min(row[j] + 1).min(up + 1);
            diag = up;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANDOM: [&str; 3] = ["q7LmX2vR9tKe", "Zp4wN8sJc3Ha", "bT6yUf1DkR5m"];
    const SERIAL: &str = "VRB-2024-883104";

    fn unit<'a>(serial: &'a str, mac: Option<&'a str>, password: &'a str) -> UnitPassword<'a> {
        UnitPassword {
            serial,
            mac,
            password,
        }
    }

    /// Analyses passwords (serials VRB-2024-0N, no MAC).
    fn check(pws: &[&str]) -> Vec<Finding> {
        let serials: Vec<String> = (0..pws.len()).map(|i| format!("VRB-2024-0{i}")).collect();
        let units: Vec<_> = pws
            .iter()
            .zip(&serials)
            .map(|(p, s)| unit(s, None, p))
            .collect();
        check_units(&units)
    }

    /// Analyses, asserting that no finding displays any 4 characters of any password (any case).
    fn check_units(units: &[UnitPassword]) -> Vec<Finding> {
        let policy = Policy {
            min_length: 10,
            min_score: 3,
            model: "Verbena Cam".into(),
        };
        let found = analyze(units, &policy);
        for shown in found.iter().map(|f| f.to_string().to_lowercase()) {
            for u in units {
                let pw: Vec<char> = u.password.to_lowercase().chars().collect();
                for w in pw.windows(4).map(|w| w.iter().collect::<String>()) {
                    assert!(!shown.contains(&w), "{shown:?} reveals {w:?}");
                }
            }
        }
        found
    }

    /// That a finding's Debug form is `debug`.
    fn assert_has(found: &[Finding], debug: &str) {
        let any = found.iter().any(|f| format!("{f:?}") == debug);
        assert!(any, "no {debug} in {found:?}");
    }

    fn counter_step(found: &[Finding]) -> Option<i64> {
        found.iter().find_map(|f| match f {
            Finding::Counter { step, .. } => Some(*step),
            _ => None,
        })
    }

    #[test]
    fn random_passwords_show_nothing() {
        assert_eq!(check(&RANDOM), vec![]);
        // Single random digits that happen to step (3 5 7, 9 8 7, 2 4 6) in differing text.
        assert_eq!(
            check(&["Rt3wLp9KxQ2m", "bN5yHs8DkZ4v", "Wc7jMf7TqP6g"]),
            vec![]
        );
    }

    #[test]
    fn a_labelled_counter_is_found_with_its_shared_prefix() {
        let found = check(&["Vrb-Pw-1001", "Vrb-Pw-1002", "Vrb-Pw-1003"]);
        assert_has(&found, "Counter { units: [1, 2, 3], step: 1 }");
        assert_has(&found, "SharedPrefix { len: 10 }");
        assert_has(&found, "SmallDifference { units: (1, 3), distance: 1 }");
        let suffix = found
            .iter()
            .any(|f| matches!(f, Finding::SharedSuffix { .. }));
        assert!(!suffix, "{found:?}");
    }

    #[test]
    fn factory_counter_shapes_are_found() {
        for (pws, step) in [
            (["VRB-0001", "VRB-0002", "VRB-0003"], 1),
            (["a8F3k2-000117", "a8F3k2-000118", "a8F3k2-000119"], 1),
            (["Pw10001x", "Pw10002x", "Pw10003x"], 1),
            (["Garden7Gate", "Garden9Gate", "Garden8Gate"], 1),
            // A random per-unit part, with varying numbers of digit runs, before the counter.
            (["Xk7q-000117", "Rmzz-000127", "T4a9-000137"], 10),
            (["Hk-0x1a9f", "Hk-0x1aa0", "Hk-0x1aa1"], 1),
        ] {
            assert_eq!(counter_step(&check(&pws)), Some(step), "{pws:?}");
        }
    }

    #[test]
    fn shuffling_units_does_not_change_whether_a_counter_is_found() {
        let counting = ["Lp-7250-Qx", "Lp-7500-Qx", "Lp-7750-Qx", "Lp-8000-Qx"];
        let disguised = ["Xk7q-004117", "Rmzz-004217", "T4a9-004317", "Wbne-004417"];
        let random = [RANDOM[0], RANDOM[1], RANDOM[2], "Hu3nYs8cQw2P"];
        let orders: Vec<[usize; 4]> = (0..256usize)
            .map(|n| [n % 4, n / 4 % 4, n / 16 % 4, n / 64])
            .filter(|o| (0..4).all(|i| o.contains(&i)))
            .collect();
        assert_eq!(orders.len(), 24);
        for order in orders {
            let pick = |set: [&'static str; 4]| order.map(|i| set[i]);
            let step = |set| counter_step(&check(&pick(set)));
            assert_eq!(step(counting), Some(250), "{order:?}");
            assert_eq!(step(disguised), Some(100), "{order:?}");
            assert_eq!(step(random), None, "{order:?}");
        }
    }

    #[test]
    fn duplicates_are_reported_once_per_group() {
        let found = check(&[RANDOM[1], RANDOM[0], RANDOM[1]]);
        assert_eq!(found, vec![Finding::Duplicate { units: vec![1, 3] }]);
    }

    #[test]
    fn passwords_from_identifiers_are_found() {
        let sha = hex::encode(Sha256::digest(SERIAL.as_bytes()));
        let md5 = hex::encode(Md5::digest(b"a4cf12aabbcc")).to_uppercase();
        let mac = Some("A4:CF:12:AA:BB:CC");
        for (password, mac, what) in [
            ("Hq883104wz!K", None, "serial number digits"),
            ("x-vrb2024883104", None, "serial number"),
            ("Kitchen-aabbcc", mac, "MAC address (last 6 hex digits)"),
            ("a4:cf:12:aa:bb:cc!x", mac, "MAC address"),
            ("A4CF12AABBCC", Some("a4-cf-12-aa-bb-cc"), "MAC address"),
            ("VerbenaCam-Zq8#", None, "model name"),
            (&sha[20..32], None, "serial number (unkeyed hash)"),
            (&md5[..10], mac, "MAC address (unkeyed hash)"),
        ] {
            let found = check_units(&[unit(SERIAL, mac, password)]);
            assert_has(
                &found,
                &format!("FromIdentifier {{ unit: 1, what: {what:?} }}"),
            );
        }
        assert_eq!(check_units(&[unit(SERIAL, mac, RANDOM[0])]), vec![]);
    }

    #[test]
    fn a_dictionary_password_is_weak_and_short() {
        let found = check(&["password1", RANDOM[0], RANDOM[1]]);
        assert_has(&found, "Weak { unit: 1, score: 0, min: 3 }");
        assert_has(&found, "Short { unit: 1, len: 9, min: 10 }");
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn near_identical_passwords_are_neighbours() {
        let found = check(&["Kq8#vTz2Lm", "Kq8#vTz5Lm", RANDOM[2]]);
        assert_has(&found, "SmallDifference { units: (1, 2), distance: 1 }");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
    }
}
