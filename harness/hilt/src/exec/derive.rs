//! Candidate passwords derived from a printed identifier, the way careless factories make "unique"
//! passwords: the identifier itself, pieces of it, and unkeyed hashes of it (PSTI Sch.1 para 1(3)(b)-(c),
//! EN 303 645 5.1-2). A device whose password is among them has a guessable password.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

fn hashes(id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("md5", hex::encode(Md5::digest(id.as_bytes()))),
        ("sha1", hex::encode(Sha1::digest(id.as_bytes()))),
        ("sha256", hex::encode(Sha256::digest(id.as_bytes()))),
    ]
}

/// Rows of `derivation` and `password`, without duplicates, in a stable order.
pub fn from_serial(serial: &str) -> Vec<BTreeMap<String, String>> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |name: String, value: String| {
        if !value.is_empty() && !out.iter().any(|(_, v)| *v == value) {
            out.push((name, value));
        }
    };
    let digits: String = serial.chars().filter(char::is_ascii_digit).collect();
    let alnum: String = serial.chars().filter(char::is_ascii_alphanumeric).collect();
    for (name, v) in [
        ("serial", serial.to_string()),
        ("serial-lower", serial.to_lowercase()),
        ("serial-alnum", alnum.clone()),
        ("serial-reversed", serial.chars().rev().collect()),
        ("serial-digits", digits),
    ] {
        push(name.into(), v);
    }
    for n in [4, 6, 8] {
        let tail: String = alnum
            .chars()
            .rev()
            .take(n)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        push(format!("serial-last-{n}"), tail);
    }
    for (algo, hex) in hashes(serial)
        .into_iter()
        .chain(hashes(&serial.to_lowercase()))
    {
        for n in [8, 10, 12, 16] {
            push(format!("{algo}-hex{n}"), hex[..n].to_string());
            push(format!("{algo}-HEX{n}"), hex[..n].to_uppercase());
        }
        push(format!("{algo}-hex"), hex);
    }
    out.into_iter()
        .map(|(d, p)| BTreeMap::from([("derivation".to_string(), d), ("password".to_string(), p)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_the_serial_its_tail_and_unkeyed_hash_prefixes() {
        let rows = from_serial("VRB-00000001");
        let pw: Vec<&str> = rows.iter().map(|r| r["password"].as_str()).collect();
        assert!(pw.contains(&"VRB-00000001"));
        assert!(pw.contains(&"000001"));
        let sha = hex::encode(Sha256::digest(b"VRB-00000001"));
        assert!(pw.contains(&&sha[..12]));
        let md5 = hex::encode(Md5::digest(b"VRB-00000001"));
        assert!(pw.contains(&&md5[..8]));
        let mut unique = pw.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), pw.len(), "no duplicates");
    }
}
