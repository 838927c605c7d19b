//! Registered secrets and where they occur in a byte stream, so renderings can mask them.
//!
//! Matching is ASCII case-insensitive: a device that echoes a password in upper case, or a candidate
//! that is the password's upper-case form, gives the secret away just as well as the exact bytes.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::fmt;
use std::ops::Range;

/// Shortest beginning of a secret that counts as giving it away (see [`reveals`]).
pub(crate) const MIN_REVEALING_PREFIX: usize = 4;

/// A secret's occurrence (merged with any overlapping ones) and the label shown instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub range: Range<usize>,
    pub label: usize,
}

/// A set of secrets: bytes that must never be rendered, with their labels. Transcripts hold one; so
/// does whatever else keeps evidence or logs beside them (the mock cloud's flows, a board's output).
#[derive(Default, Clone)]
pub struct Secrets {
    items: Vec<(Vec<u8>, String)>,
    /// Every secret, ASCII case-insensitively; pattern `i` is `items[i]`. Rebuilt on `add`.
    matcher: Option<AhoCorasick>,
}

/// Labels only: the bytes of a secret never reach a log through `{:?}`.
impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self.items.iter().map(|(_, l)| l.as_str()).collect();
        f.debug_struct("Secrets").field("labels", &labels).finish()
    }
}

impl Secrets {
    /// Register a secret; empty secrets, and ones already known in any ASCII case, are ignored.
    pub fn add(&mut self, secret: &[u8], label: &str) {
        if secret.is_empty()
            || self
                .items
                .iter()
                .any(|(s, _)| s.eq_ignore_ascii_case(secret))
        {
            return;
        }
        self.items.push((secret.to_vec(), label.to_string()));
        self.matcher = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(self.items.iter().map(|(s, _)| s))
            .map_err(|e| tracing::error!("cannot build the secret matcher: {e}"))
            .ok();
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether showing `candidate` would give any of these secrets away (see [`reveals`]).
    pub fn revealed_by(&self, candidate: &[u8]) -> bool {
        self.items.iter().any(|(s, _)| reveals(candidate, s))
    }

    /// The text shown in place of the secret with label index `label`.
    pub(crate) fn marker(&self, label: usize) -> String {
        let name = self.items.get(label).map_or("?", |(_, l)| l.as_str());
        marker(name)
    }

    /// Every occurrence of any secret in `hay`, in any ASCII case, sorted; overlapping ones are
    /// merged so that no byte of any secret is left outside a hit.
    pub(crate) fn hits(&self, hay: &[u8]) -> Vec<Hit> {
        let mut found: Vec<Hit> = match &self.matcher {
            Some(m) => m
                .find_overlapping_iter(hay)
                .map(|f| Hit {
                    range: f.range(),
                    label: f.pattern().as_usize(),
                })
                .collect(),
            // Only when the automaton could not be built (it is far below any size limit): fall back
            // to a plain search rather than show a secret.
            None => self.slow_hits(hay),
        };
        found.sort_by_key(|h| (h.range.start, std::cmp::Reverse(h.range.end)));
        let mut merged: Vec<Hit> = Vec::with_capacity(found.len());
        for hit in found {
            match merged.last_mut() {
                Some(last) if hit.range.start < last.range.end => {
                    last.range.end = last.range.end.max(hit.range.end);
                }
                _ => merged.push(hit),
            }
        }
        merged
    }

    fn slow_hits(&self, hay: &[u8]) -> Vec<Hit> {
        let mut found = Vec::new();
        for (label, (secret, _)) in self.items.iter().enumerate() {
            let mut from = 0;
            while let Some(at) = find_ci(&hay[from..], secret) {
                let start = from + at;
                found.push(Hit {
                    range: start..start + secret.len(),
                    label,
                });
                from = start + 1;
            }
        }
        found
    }

    /// `bytes` with every secret replaced by its marker.
    pub fn mask_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        if self.is_empty() {
            return bytes.to_vec();
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for hit in self.hits(bytes) {
            out.extend_from_slice(&bytes[at..hit.range.start]);
            out.extend_from_slice(self.marker(hit.label).as_bytes());
            at = hit.range.end;
        }
        out.extend_from_slice(&bytes[at..]);
        out
    }

    /// `text` with every secret replaced by its marker.
    pub fn mask_str(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        String::from_utf8_lossy(&self.mask_bytes(text.as_bytes())).into_owned()
    }
}

/// Whether showing `candidate` would give `secret` away, ASCII case-insensitively: it contains the
/// secret (so also when it is a case variant of it), or it is the secret's beginning of at least
/// [`MIN_REVEALING_PREFIX`] bytes (a truncated password narrows a guess to the rest).
pub fn reveals(candidate: &[u8], secret: &[u8]) -> bool {
    if secret.is_empty() || candidate.is_empty() {
        return false;
    }
    let prefix = candidate.len() >= MIN_REVEALING_PREFIX
        && candidate.len() <= secret.len()
        && secret[..candidate.len()].eq_ignore_ascii_case(candidate);
    prefix || find_ci(candidate, secret).is_some()
}

pub(crate) fn marker(label: &str) -> String {
    format!("‹secret:{label}›")
}

/// First occurrence of `needle` in `hay`, ASCII case-insensitively.
fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_all_occurrences_and_merges_overlaps() {
        let mut s = Secrets::default();
        s.add(b"abcd", "one");
        s.add(b"cdef", "two");
        s.add(b"", "empty");
        let hits = s.hits(b"xxabcdefyyabcd");
        assert_eq!(
            hits,
            vec![
                Hit {
                    range: 2..8,
                    label: 0
                },
                Hit {
                    range: 10..14,
                    label: 0
                },
            ]
        );
    }

    #[test]
    fn masks_text() {
        let mut s = Secrets::default();
        s.add(b"hunter2", "pw");
        assert_eq!(s.mask_str("pw=hunter2!"), "pw=‹secret:pw›!");
        assert_eq!(s.mask_str("hunter"), "hunter");
    }

    #[test]
    fn masks_every_ascii_case_form() {
        let mut s = Secrets::default();
        s.add(b"2a7438eda0cd", "pw");
        assert_eq!(
            s.mask_str("2A7438EDA0CD 2a7438eda0cd 2A7438eDa0Cd 2a7438eda0c"),
            "‹secret:pw› ‹secret:pw› ‹secret:pw› 2a7438eda0c"
        );
        // A case variant of a known secret is the same secret: the first label stays.
        s.add(b"2A7438EDA0CD", "upper");
        assert_eq!(s.items.len(), 1);
        assert_eq!(s.mask_str("x2A7438EDA0CDx"), "x‹secret:pw›x");
        // Overlapping secrets of different case still leave no byte of either outside the mask.
        s.add(b"CDEF", "tail");
        assert_eq!(s.mask_str("2a7438eda0cdef!"), "‹secret:pw›!");
        assert_eq!(
            s.mask_bytes(b"..cDeF.."),
            b"..\xe2\x80\xb9secret:tail\xe2\x80\xba.."
        );
    }

    #[test]
    fn non_ascii_secrets_match_exactly_apart_from_ascii_letters() {
        let mut s = Secrets::default();
        s.add("pässwörd".as_bytes(), "pw");
        assert_eq!(s.mask_str("PäSSWöRD"), "‹secret:pw›");
        assert_eq!(s.mask_str("PÄSSWÖRD"), "PÄSSWÖRD");
    }

    #[test]
    fn debug_shows_labels_only() {
        let mut s = Secrets::default();
        s.add(b"hunter2", "pw");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("pw"),
            "{shown}"
        );
    }

    #[test]
    fn what_reveals_a_secret() {
        let pw = b"2a7438eda0cd";
        // The secret itself, in any case, alone or inside something longer.
        assert!(reveals(b"2a7438eda0cd", pw));
        assert!(reveals(b"2A7438EDA0CD", pw));
        assert!(reveals(b"xx2A7438eda0cdb42a", pw));
        // Its beginning, from MIN_REVEALING_PREFIX bytes on, in any case.
        assert!(reveals(b"2a74", pw));
        assert!(reveals(b"2A7438ED", pw));
        assert!(reveals(b"2a7438eda0", pw));
        // Not: a shorter beginning, another piece of it, something else.
        assert!(!reveals(b"2a7", pw));
        assert!(!reveals(b"7438eda0", pw));
        assert!(!reveals(b"2a7438edXX", pw));
        assert!(!reveals(b"", pw));
        assert!(!reveals(b"anything", b""));
    }

    #[test]
    fn find_edges() {
        assert_eq!(find_ci(b"aab", b"ab"), Some(1));
        assert_eq!(find_ci(b"aAB", b"ab"), Some(1));
        assert_eq!(find_ci(b"a", b"ab"), None);
        assert_eq!(find_ci(b"", b"a"), None);
        assert_eq!(find_ci(b"ab", b"ab"), Some(0));
        assert_eq!(find_ci(b"ab", b""), None);
    }
}
