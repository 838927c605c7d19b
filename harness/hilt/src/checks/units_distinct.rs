//! `units-distinct`: no critical security parameter is the same on two units. Over the snapshots
//! step `step` read from every unit (`for_each = "units"`), no random-looking 32-byte sequence (a
//! private key, a token, a symmetric key: at least 24 distinct byte values) appears in the dumps of
//! two units (EN 303 645 5.4-3, 5.4-4). Public material that may be shared (an update-verification
//! key, a CA certificate) is named in `allow` as text files, whose bytes and PEM bodies are exempt.
//! Base64 counts as random only when what it encodes is not text. Hex-encoded secrets (at most 16
//! distinct byte values a window) are not recognised. Fewer than
//! `min_units` dumps, or dumps with nothing but erased flash, prove nothing: INCONCLUSIVE.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use hilt_model::Verdict;
use hilt_model::scenario::VarTemplate as Template;
use serde::Deserialize;

use super::{Check, Evidence, Judgement, Kind, Params};
use crate::memory::MemoryRead;

pub const KIND: Kind = Kind {
    name: "units-distinct",
    parse,
};

/// Bytes compared at a time: a raw 256-bit key.
const WINDOW: usize = 32;
/// Distinct byte values that make a window look random (random bytes give about 30 of 32; text
/// and structure far fewer).
const MIN_DISTINCT: usize = 24;
/// Most windows indexed per dump: beyond it every n-th offset is indexed, and only shared runs of
/// WINDOW + n - 1 bytes are sure to be seen.
const MAX_INDEXED: usize = 1 << 20;
/// Shared sequences listed in a detail.
const LISTED: usize = 4;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitsDistinct {
    step: String,
    #[serde(default = "two")]
    min_units: usize,
    /// Files of public material that may be the same on every unit.
    #[serde(default)]
    allow: Vec<Template>,
}

fn two() -> usize {
    2
}

fn parse(p: &Params) -> Result<Box<dyn Check>, String> {
    let c: UnitsDistinct = p.get()?;
    p.memory_step(&c.step)?;
    if c.min_units < 2 {
        return Err("min_units must be at least 2: one unit has nothing to differ from".into());
    }
    for t in &c.allow {
        p.scenario.check_vars(t)?;
    }
    Ok(Box::new(c))
}

impl Check for UnitsDistinct {
    fn templates(&self) -> Vec<&Template> {
        self.allow.iter().collect()
    }

    fn evaluate(&self, ev: &Evidence) -> Judgement {
        if let Err(j) = ev.step(&self.step) {
            return j;
        }
        let reads = ev.memory.get(&self.step).map(Vec::as_slice).unwrap_or(&[]);
        let mut allowed = Vec::new();
        for t in &self.allow {
            let path = match ev.scope.render(t) {
                Ok(v) => v.text,
                Err(e) => return (Verdict::NotTested, e),
            };
            match hilt_model::fsread::read_text(std::path::Path::new(&path)) {
                Ok(text) => allowed.extend(public_blobs(text.as_bytes())),
                Err(e) => return (Verdict::NotTested, format!("allowed public file: {e}")),
            }
        }
        judge(reads, self.min_units, &allowed)
    }
}

/// A public file as it may be stored: itself, each of its lines (a PEM body's lines are stored as
/// they are), and the DER inside it when it is PEM.
fn public_blobs(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut blobs = vec![bytes.to_vec()];
    let text = String::from_utf8_lossy(bytes);
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body.trim()) {
        blobs.push(der);
    }
    blobs.extend(
        text.lines()
            .filter(|l| l.len() >= WINDOW / 2)
            .map(|l| l.as_bytes().to_vec()),
    );
    blobs.retain(|b| !b.is_empty());
    blobs
}

/// Which bytes of `bytes` lie in an occurrence of an allowed blob.
fn exempt_mask(bytes: &[u8], allowed: &[Vec<u8>]) -> Vec<bool> {
    let mut mask = vec![false; bytes.len()];
    for blob in allowed {
        for at in memchr::memmem::find_iter(bytes, blob) {
            mask[at..at + blob.len()].iter_mut().for_each(|m| *m = true);
        }
    }
    mask
}

/// One region of a unit's dump, with which of its bytes are allowed public material.
struct Area<'a> {
    name: &'a str,
    bytes: &'a [u8],
    exempt: Vec<bool>,
}

impl Area<'_> {
    /// Whether the window at `off` looks random, counting only bytes that are not public material.
    fn random_looking(&self, off: usize) -> bool {
        let mut seen = [false; 256];
        let mut distinct = 0;
        let own = self.bytes[off..off + WINDOW]
            .iter()
            .zip(&self.exempt[off..off + WINDOW])
            .filter(|(_, exempt)| !**exempt);
        for (&b, _) in own {
            if !seen[b as usize] {
                seen[b as usize] = true;
                distinct += 1;
            }
        }
        distinct >= MIN_DISTINCT && !encoded_text(&self.bytes[off..off + WINDOW])
    }
}

/// The value of a base64 or base64url character.
fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Whether a window is text rather than key material: printable throughout and either not all
/// base64 (JSON, PEM armour, words around an encoded value) or base64 of text (e.g. the same JSON
/// structure under an encoding: at one of the four alignments it decodes to printable ASCII).
/// Base64 looks random by its alphabet alone; what it encodes decides. Binary windows are judged by
/// their bytes alone.
fn encoded_text(w: &[u8]) -> bool {
    if !w.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        return false;
    }
    let Some(values) = w.iter().map(|&b| sextet(b)).collect::<Option<Vec<u8>>>() else {
        return true;
    };
    (0..4).any(|k| {
        let decoded: Vec<u8> = values[k..]
            .chunks_exact(4)
            .flat_map(|c| {
                let n = (u32::from(c[0]) << 18)
                    | (u32::from(c[1]) << 12)
                    | (u32::from(c[2]) << 6)
                    | u32::from(c[3]);
                [(n >> 16) as u8, (n >> 8) as u8, n as u8]
            })
            .collect();
        let printable = decoded
            .iter()
            .filter(|&&b| (0x20..0x7f).contains(&b) || b == b'\n')
            .count();
        printable * 10 >= decoded.len() * 9
    })
}

/// A unit's dump.
struct Dump<'a> {
    unit: usize,
    areas: Vec<Area<'a>>,
}

impl<'a> Dump<'a> {
    fn of(read: &'a MemoryRead, allowed: &[Vec<u8>]) -> Dump<'a> {
        let areas = read
            .snapshot
            .regions
            .iter()
            .map(|r| Area {
                name: r.region.name.as_str(),
                bytes: &r.bytes,
                exempt: exempt_mask(&r.bytes, allowed),
            })
            .collect();
        Dump {
            unit: read.unit,
            areas,
        }
    }

    fn is_blank(&self) -> bool {
        self.areas
            .iter()
            .all(|a| a.bytes.iter().all(|&x| x == 0xff || x == 0x00))
    }

    /// (region, offset, window) of every random-looking window, every `stride`-th offset.
    fn windows(&self, stride: usize) -> impl Iterator<Item = (&'a str, usize, &'a [u8])> + '_ {
        self.areas.iter().flat_map(move |a| {
            let last = a.bytes.len().saturating_sub(WINDOW - 1);
            (0..last)
                .step_by(stride)
                .filter(|&off| a.random_looking(off))
                .map(move |off| (a.name, off, &a.bytes[off..off + WINDOW]))
        })
    }

    fn len(&self) -> usize {
        self.areas.iter().map(|a| a.bytes.len()).sum()
    }
}

/// A sequence found on two units: (unit, region, offset) each.
type Shared<'a> = ((usize, &'a str, usize), (usize, &'a str, usize));

fn shared_between<'a>(a: &Dump<'a>, b: &Dump<'a>) -> Vec<Shared<'a>> {
    let stride = a.len().div_ceil(MAX_INDEXED).max(1);
    let mut index: HashMap<&[u8], (&str, usize)> = HashMap::new();
    for (name, off, w) in a.windows(stride) {
        index.entry(w).or_insert((name, off));
    }
    let mut found = Vec::new();
    for area in &b.areas {
        let mut off = 0;
        while off + WINDOW <= area.bytes.len() {
            let w = &area.bytes[off..off + WINDOW];
            match index.get(w) {
                Some(&(a_name, a_off)) if area.random_looking(off) => {
                    found.push(((a.unit, a_name, a_off), (b.unit, area.name, off)));
                    // One report per shared run.
                    off += WINDOW;
                }
                _ => off += 1,
            }
        }
    }
    found
}

fn judge(reads: &[MemoryRead], min_units: usize, allowed: &[Vec<u8>]) -> Judgement {
    let dumps: Vec<Dump> = reads.iter().map(|r| Dump::of(r, allowed)).collect();
    let units: HashSet<usize> = dumps.iter().map(|d| d.unit).collect();
    if units.len() < min_units {
        return (
            Verdict::Inconclusive,
            format!(
                "missing evidence: dumps of {} unit(s), at least {min_units} needed to compare",
                units.len()
            ),
        );
    }
    if dumps.iter().any(Dump::is_blank) {
        return (
            Verdict::Inconclusive,
            "missing evidence: a dump holds nothing but erased flash".into(),
        );
    }
    let mut shared = Vec::new();
    for (i, a) in dumps.iter().enumerate() {
        for b in dumps.iter().skip(i + 1).filter(|b| b.unit != a.unit) {
            shared.extend(shared_between(a, b));
        }
    }
    if shared.is_empty() {
        return (
            Verdict::Pass,
            format!(
                "no random-looking {WINDOW}-byte sequence is the same on any two of {} units ({} bytes compared)",
                units.len(),
                dumps.iter().map(Dump::len).sum::<usize>()
            ),
        );
    }
    let listed: Vec<String> = shared
        .iter()
        .take(LISTED)
        .map(|((ua, ra, oa), (ub, rb, ob))| {
            format!(
                "unit {} {ra}+{oa:#x} = unit {} {rb}+{ob:#x}",
                ua + 1,
                ub + 1
            )
        })
        .collect();
    let more = match shared.len() {
        n if n > LISTED => format!(" and {} more", n - LISTED),
        _ => String::new(),
    };
    (
        Verdict::Fail,
        format!(
            "{} random-looking sequence(s) (a key or token?) are the same on two units: {}{more}",
            shared.len(),
            listed.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryPlan, Source};
    use hilt_link::memory::{Region, RegionImage, Snapshot};
    use std::time::Duration;

    /// Deterministic random-looking bytes.
    fn noise(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn read(unit: usize, bytes: Vec<u8>) -> MemoryRead {
        MemoryRead {
            unit,
            plan: MemoryPlan {
                link: "flash".into(),
                source: Source::File("flash.img".into()),
                regions: vec![],
                max_bytes: 1 << 20,
                timeout: Duration::from_secs(1),
                keep_bytes: false,
            },
            snapshot: Snapshot {
                source: "file".into(),
                regions: vec![RegionImage {
                    region: Region {
                        name: "flash".into(),
                        start: 0,
                        len: bytes.len() as u64,
                    },
                    bytes,
                }],
            },
        }
    }

    /// A unit's flash: shared text structure, its own sealed data, and maybe `key` at 0x100.
    fn flash(unit: u64, key: Option<&[u8]>) -> Vec<u8> {
        let mut f =
            b"VRBFLASH {\"serial\":\"VRB-0000000\",\"update\":{\"version\":\"1.0.0\"}} ".to_vec();
        f.resize(0x100, b' ');
        if let Some(k) = key {
            f.extend_from_slice(k);
        }
        f.extend(noise(unit, 2048));
        f.resize(8192, 0xff);
        f
    }

    #[test]
    fn per_unit_secrets_pass_and_a_shared_key_fails() {
        let none: Vec<Vec<u8>> = Vec::new();
        let own: Vec<MemoryRead> = (0..3).map(|u| read(u, flash(u as u64 + 1, None))).collect();
        let (v, why) = judge(&own, 3, &none);
        assert_eq!(v, Verdict::Pass, "{why}");
        let key = noise(99, 32);
        let shared: Vec<MemoryRead> = (0..3)
            .map(|u| read(u, flash(u as u64 + 1, Some(&key))))
            .collect();
        let (v, why) = judge(&shared, 3, &none);
        assert_eq!(v, Verdict::Fail);
        // The shared run starts in the spaces before the key that complete its first window.
        assert!(
            why.contains("unit 1 flash+0xf7 = unit 2 flash+0xf7"),
            "{why}"
        );
    }

    #[test]
    fn base64_of_the_same_text_is_no_shared_key_but_base64_of_a_key_is() {
        use base64::Engine;
        let b64 = |b: &[u8]| {
            base64::engine::general_purpose::STANDARD
                .encode(b)
                .into_bytes()
        };
        let text = br#"{"users":["user-1"],"profile":{"name":null,"email":null},"consents":{}}"#;
        let structure: Vec<MemoryRead> = (0..3)
            .map(|u| read(u, flash(u as u64 + 1, Some(&b64(text)))))
            .collect();
        let (v, why) = judge(&structure, 3, &[]);
        assert_eq!(v, Verdict::Pass, "{why}");
        let key = b64(&noise(5, 64));
        let shared: Vec<MemoryRead> = (0..3)
            .map(|u| read(u, flash(u as u64 + 1, Some(&key))))
            .collect();
        assert_eq!(judge(&shared, 3, &[]).0, Verdict::Fail);
    }

    #[test]
    fn allowed_public_material_and_too_few_dumps() {
        let key = noise(7, 64);
        let shared: Vec<MemoryRead> = (0..2)
            .map(|u| read(u, flash(u as u64 + 1, Some(&key))))
            .collect();
        assert_eq!(judge(&shared, 2, &[]).0, Verdict::Fail);
        assert_eq!(judge(&shared, 2, &public_blobs(&key)).0, Verdict::Pass);
        assert_eq!(judge(&shared[..1], 2, &[]).0, Verdict::Inconclusive);
        let blank = vec![read(0, vec![0xff; 4096]), read(1, vec![0xff; 4096])];
        assert_eq!(judge(&blank, 2, &[]).0, Verdict::Inconclusive);
    }
}
