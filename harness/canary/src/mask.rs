//! Hiding planted values in text the harness puts in evidence (console output, strings from a dump).

use crate::{Canary, Scanner};

/// Replaces every encoded form of every canary in `text` with `[canary:<label>]`.
///
/// Overlapping occurrences are merged into one span that lists each canary once, so no part of a
/// value survives between two markers. A base64 form's span also takes in the neighbouring
/// characters that carry a few of the value's bits.
pub fn mask(text: &str, canaries: &[Canary]) -> String {
    if canaries.is_empty() {
        return text.to_owned();
    }
    let Ok(scanner) = Scanner::new(canaries) else {
        // Building only fails on absurd pattern sets; show nothing rather than risk a value.
        return "[canary:mask-failed]".to_owned();
    };
    let bytes = text.as_bytes();
    // Merged spans, in order, with the canaries each covers.
    let mut spans: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    for occurrence in scanner.occurrences(bytes) {
        let (len, owners) = scanner.needle(occurrence.needle);
        let (mut start, mut end) = (occurrence.start, occurrence.start + len);
        let (mut lead, mut trail) = (0, 0);
        for &(canary, encoding) in owners {
            let (l, t) = encoding.partial_chars(scanner.value_len(canary));
            (lead, trail) = (lead.max(l), trail.max(t));
        }
        if lead > 0 && start > 0 && is_base64_char(bytes[start - 1]) {
            start -= 1;
        }
        if trail > 0 && end < bytes.len() && is_base64_char(bytes[end]) {
            end += 1;
        }
        // UTF-16 forms of non-ASCII values need not fall on char boundaries: widen.
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        while !text.is_char_boundary(end) {
            end += 1;
        }
        let canaries = owners.iter().map(|&(c, _)| c);
        match spans.last_mut() {
            Some(last) if start <= last.1 => {
                last.0 = last.0.min(start);
                last.1 = last.1.max(end);
                for c in canaries {
                    if !last.2.contains(&c) {
                        last.2.push(c);
                    }
                }
            }
            _ => {
                let mut list = Vec::new();
                for c in canaries {
                    if !list.contains(&c) {
                        list.push(c);
                    }
                }
                spans.push((start, end, list));
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, list) in spans {
        // Widening may reach back into the previous span; never emit its text twice.
        if start > at {
            out.push_str(&text[at..start]);
        }
        for c in list {
            out.push_str("[canary:");
            out.push_str(scanner.label(c));
            out.push(']');
        }
        at = at.max(end);
    }
    out.push_str(&text[at..]);
    out
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn canaries() -> Vec<Canary> {
        vec![
            Canary::new("wifi", "correct horse battery").unwrap(),
            Canary::new("pin", "4829").unwrap(),
            Canary::new("token", "tok_4829_zz").unwrap(),
        ]
    }

    #[test]
    fn every_form_is_masked() {
        let c = canaries();
        let text = format!(
            "psk=correct horse battery; hex={}; url=correct%20horse%20battery; b64={}; end",
            hex::encode("correct horse battery"),
            STANDARD.encode(b"xcorrect horse battery!!"),
        );
        let masked = mask(&text, &c);
        // "e" is the 6 high bits of 'x' and "Eh" the last 12 of "!!"; the two characters mixing
        // value bits with neighbours' are inside the marker.
        assert_eq!(
            masked,
            "psk=[canary:wifi]; hex=[canary:wifi]; url=[canary:wifi]; b64=e[canary:wifi]Eh; end"
        );
    }

    #[test]
    fn overlapping_values_leave_no_fragment() {
        let masked = mask("id tok_4829_zz done", &canaries());
        assert_eq!(masked, "id [canary:token][canary:pin] done");
        assert!(!masked.contains("4829") && !masked.contains("zz"));
    }

    #[test]
    fn utf16_of_non_ascii_stays_valid_and_hidden() {
        let c = vec![Canary::new("name", "Zoë Ærø").unwrap()];
        let text: String = "x Zoë Ærø y".to_owned();
        assert_eq!(mask(&text, &c), "x [canary:name] y");
        assert_eq!(mask("nothing here", &c), "nothing here");
        assert_eq!(mask("anything", &[]), "anything");
    }
}
