//! `storage-excludes`: the snapshot step `step` read (a flash dump) holds none of `values` — canaries
//! planted through the device's UI, e.g. a Wi-Fi passphrase, the owner's name and email — in the
//! clear in any common encoding: UTF-8, UTF-16 either way, hex in either case, base64 and base64url at
//! every alignment, URL-encoded, JSON-escaped (EN 303 645 5.4-1; ICO-SEC-ENC-02). A snapshot that is
//! all erased flash holds nothing to judge: INCONCLUSIVE. Values are never shown, only their labels,
//! encodings and offsets.

use std::collections::BTreeMap;

use hilt_canary::{Canary, Hit, Scanner};
use hilt_link::memory::Snapshot;
use hilt_model::Verdict;
use hilt_model::scenario::VarTemplate as Template;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Params};

pub const KIND: Kind = Kind {
    name: "storage-excludes",
    parse,
};

/// Hits listed in a detail; the rest are counted.
const LISTED: usize = 6;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageExcludes {
    step: String,
    /// Label → value, e.g. `{ psk = "{var.psk}" }`.
    values: BTreeMap<String, Template>,
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: StorageExcludes = p.get()?;
    p.memory_step(&c.step)?;
    if c.values.is_empty() {
        return Err("give at least one value to look for".into());
    }
    for t in c.values.values() {
        p.scenario.check_vars(t)?;
    }
    Ok(Box::new(c))
}

impl Check for StorageExcludes {
    fn templates(&self) -> Vec<&Template> {
        self.values.values().collect()
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        if let Err(j) = ev.step(&self.step) {
            return j;
        }
        let reads = ev.memory.get(&self.step).map(Vec::as_slice).unwrap_or(&[]);
        if reads.is_empty() {
            return (
                Verdict::Inconclusive,
                format!("missing evidence: step {:?} read no snapshot", self.step),
            );
        }
        let mut canaries = Vec::new();
        for (label, t) in &self.values {
            let value = match ev.scope.render(t) {
                Ok(v) => v.text,
                Err(e) => return (Verdict::NotTested, e),
            };
            match Canary::new(label.clone(), value) {
                Ok(c) => canaries.push(c),
                // Too short to search without false hits: the scenario's fault, not the device's.
                Err(e) => return (Verdict::NotTested, format!("value {label}: {e}")),
            }
        }
        let scanner = match Scanner::new(&canaries) {
            Ok(s) => s,
            Err(e) => return (Verdict::Error, format!("cannot build the scan: {e}")),
        };
        let judged: Vec<(usize, Judgement)> = reads
            .iter()
            .map(|r| (r.unit, judge(&r.snapshot, &scanner)))
            .collect();
        combine(judged)
    }
}

/// One unit's FAIL decides; else any undecided unit leaves the whole undecided.
fn combine(judged: Vec<(usize, Judgement)>) -> Judgement {
    let several = judged.len() > 1;
    let label = |unit: usize, why: &str| {
        if several {
            format!("unit {}: {why}", unit + 1)
        } else {
            why.to_string()
        }
    };
    for wanted in [Verdict::Fail, Verdict::Inconclusive] {
        if let Some((unit, (v, why))) = judged.iter().find(|(_, (v, _))| *v == wanted) {
            return (*v, label(*unit, why));
        }
    }
    let whys: Vec<String> = judged.iter().map(|(u, (_, why))| label(*u, why)).collect();
    (Verdict::Pass, whys.join("; "))
}

fn judge(snapshot: &Snapshot, scanner: &Scanner) -> Judgement {
    let mut found: Vec<(String, Hit)> = Vec::new();
    let mut used = 0usize;
    for region in &snapshot.regions {
        used += region
            .bytes
            .iter()
            .filter(|&&b| b != 0xff && b != 0x00)
            .count();
        found.extend(
            scanner
                .scan(&region.bytes)
                .into_iter()
                .map(|h| (region.region.name.clone(), h)),
        );
    }
    if !found.is_empty() {
        let listed: Vec<String> = found
            .iter()
            .take(LISTED)
            .map(|(region, h)| format!("{} as {} at {region}+{:#x}", h.label, h.encoding, h.offset))
            .collect();
        let more = match found.len() {
            n if n > LISTED => format!(" and {} more", n - LISTED),
            _ => String::new(),
        };
        return (
            Verdict::Fail,
            format!(
                "{} planted value(s) stored readably: {}{more}",
                found.len(),
                listed.join("; ")
            ),
        );
    }
    if used == 0 {
        return (
            Verdict::Inconclusive,
            format!(
                "missing evidence: {} holds nothing but erased flash",
                snapshot.source
            ),
        );
    }
    let total: usize = snapshot.regions.iter().map(|r| r.bytes.len()).sum();
    (
        Verdict::Pass,
        format!(
            "none of {} planted value(s) in {} byte(s) from {}, in {} encoded form(s)",
            scanner.canary_count(),
            total,
            snapshot.source,
            scanner.needle_count()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_link::memory::{Region, RegionImage};

    fn snapshot(bytes: &[u8]) -> Snapshot {
        Snapshot {
            source: "file flash.img".into(),
            regions: vec![RegionImage {
                region: Region {
                    name: "flash".into(),
                    start: 0,
                    len: bytes.len() as u64,
                },
                bytes: bytes.to_vec(),
            }],
        }
    }

    fn scanner() -> Scanner {
        Scanner::new(&[Canary::new("psk", "Q7xPassphrase9").unwrap()]).unwrap()
    }

    #[test]
    fn a_value_in_any_encoding_fails_and_is_never_shown() {
        let plain = snapshot(b"\xff\xff{\"psk\":\"Q7xPassphrase9\"}\xff");
        let (v, why) = judge(&plain, &scanner());
        assert_eq!(v, Verdict::Fail);
        assert!(why.contains("psk as utf-8 at flash+0x"), "{why}");
        assert!(!why.contains("Q7xPassphrase9"), "{why}");
        let hidden = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            b"{\"wifi\":{\"psk\":\"Q7xPassphrase9\"}}",
        );
        let (v, why) = judge(&snapshot(hidden.as_bytes()), &scanner());
        assert!(v == Verdict::Fail && why.contains("base64"), "{why}");
    }

    #[test]
    fn ciphertext_passes_and_erased_flash_proves_nothing() {
        let sealed: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(judge(&snapshot(&sealed), &scanner()).0, Verdict::Pass);
        assert_eq!(
            judge(&snapshot(&[0xff; 4096]), &scanner()).0,
            Verdict::Inconclusive
        );
    }
}
