//! Registered secrets and where they occur in a byte stream, so renderings can mask them.

use std::ops::Range;

/// A secret's occurrence (merged with any overlapping ones) and the label shown instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub range: Range<usize>,
    pub label: usize,
}

/// The secrets of a session: bytes that must never be rendered, with their labels.
#[derive(Debug, Default, Clone)]
pub(crate) struct Secrets {
    items: Vec<(Vec<u8>, String)>,
}

impl Secrets {
    /// Register a secret; empty or already known secrets are ignored.
    pub fn add(&mut self, secret: &[u8], label: &str) {
        if secret.is_empty() || self.items.iter().any(|(s, _)| s == secret) {
            return;
        }
        self.items.push((secret.to_vec(), label.to_string()));
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The text shown in place of the secret with label index `label`.
    pub fn marker(&self, label: usize) -> String {
        let name = self.items.get(label).map_or("?", |(_, l)| l.as_str());
        marker(name)
    }

    /// Every occurrence of any secret in `hay`, sorted; overlapping ones are merged so that no
    /// byte of any secret is left outside a hit.
    pub fn hits(&self, hay: &[u8]) -> Vec<Hit> {
        let mut found: Vec<Hit> = Vec::new();
        for (label, (secret, _)) in self.items.iter().enumerate() {
            let mut from = 0;
            while let Some(at) = find(&hay[from..], secret) {
                let start = from + at;
                found.push(Hit {
                    range: start..start + secret.len(),
                    label,
                });
                from = start + 1;
            }
        }
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

    /// `text` with every secret replaced by its marker.
    pub fn mask_str(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for hit in self.hits(bytes) {
            out.extend_from_slice(&bytes[at..hit.range.start]);
            out.extend_from_slice(self.marker(hit.label).as_bytes());
            at = hit.range.end;
        }
        out.extend_from_slice(&bytes[at..]);
        String::from_utf8_lossy(&out).into_owned()
    }
}

pub(crate) fn marker(label: &str) -> String {
    format!("‹secret:{label}›")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while hay.len() - from >= needle.len() {
        let at = from
            + hay[from..=hay.len() - needle.len()]
                .iter()
                .position(|&b| b == first)?;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
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
    fn find_edges() {
        assert_eq!(find(b"aab", b"ab"), Some(1));
        assert_eq!(find(b"a", b"ab"), None);
        assert_eq!(find(b"", b"a"), None);
        assert_eq!(find(b"ab", b"ab"), Some(0));
    }
}
