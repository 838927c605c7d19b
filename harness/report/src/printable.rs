//! Device-controlled text made safe to show: every control character except `\n` and `\t` becomes a
//! visible escape, so a string a device sent (a case reason, an attempt's outcome, a capture, a check's
//! detail) cannot retitle a terminal, clear a screen, reorder a line or break an XML file when it is
//! rendered. report.json needs none of this (JSON escapes it); the HTML page, the JUnit XML and the
//! terminal do.
//!
//! Escaped: C0 controls (U+0000–001F but `\n` and `\t`), DEL (U+007F) and C1 controls (U+0080–009F),
//! the line and paragraph separators U+2028/2029, and the bidirectional embeddings, overrides and
//! isolates U+202A–202E and U+2066–2069. A carriage return becomes `\r`, any other character below
//! U+0080 `\xNN` (e.g. `\x1b`), the rest `\u{NNNN}` (e.g. `\u{202e}`), lowercase hex. A backslash is
//! left as it is: the escapes are for a human reader, not a reversible encoding.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::Value;

/// `s` with every character that [`needs_escape`] replaced by a visible escape; borrowed when `s`
/// has none.
pub fn printable(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(needs_escape) else {
        return Cow::Borrowed(s);
    };
    let (clean, rest) = s.split_at(first);
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(clean);
    for c in rest.chars() {
        push_printable(&mut out, c);
    }
    Cow::Owned(out)
}

/// Whether `c` is shown as an escape: a control character other than `\n` and `\t`, a line or
/// paragraph separator, or a bidirectional override or isolate.
pub fn needs_escape(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        // The Cc category: exactly C0, DEL and C1.
        c => c.is_control(),
    }
}

/// Applies [`printable`] to every string and every object key in `value`, in place.
///
/// Two keys that differ only in escaped characters could become equal; the later one is kept. That
/// is acceptable for a rendering, never for the signed report.
pub fn printable_json(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(escaped) = printable(s) {
                *s = escaped;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(printable_json),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            *map = entries
                .into_iter()
                .map(|(key, mut v)| {
                    printable_json(&mut v);
                    (printable(&key).into_owned(), v)
                })
                .collect();
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn push_printable(out: &mut String, c: char) {
    if !needs_escape(c) {
        out.push(c);
    } else if c == '\r' {
        out.push_str("\\r");
    } else if c.is_ascii() {
        // Writing to a String cannot fail.
        let _ = write!(out, "\\x{:02x}", u32::from(c));
    } else {
        let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_text_is_borrowed() {
        for s in [
            "",
            "login: admin",
            "tab\there\nnew line",
            "ünïcödé ✓ 日本",
            "a\\x1b",
        ] {
            assert!(matches!(printable(s), Cow::Borrowed(_)), "{s:?}");
        }
    }

    #[test]
    fn terminal_escapes_become_visible() {
        assert_eq!(
            printable("\x1b]0;pwned\x07\x1b[2J"),
            "\\x1b]0;pwned\\x07\\x1b[2J"
        );
        assert_eq!(printable("a\0b\x7f"), "a\\x00b\\x7f");
        assert_eq!(printable("line\r\n"), "line\\r\n");
    }

    #[test]
    fn c1_separators_and_bidi_overrides_become_visible() {
        assert_eq!(printable("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(printable("\u{80}\u{9f}"), "\\u{80}\\u{9f}");
        assert_eq!(printable("a\u{2028}b\u{2029}"), "a\\u{2028}b\\u{2029}");
        assert_eq!(
            printable("exe.\u{202e}txt\u{202c}"),
            "exe.\\u{202e}txt\\u{202c}"
        );
        for c in ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
            assert!(needs_escape(c), "{c:?}");
        }
    }

    #[test]
    fn neighbours_of_the_escaped_ranges_are_kept() {
        for c in [
            ' ', '~', '\u{a0}', '\u{2027}', '\u{202f}', '\u{2065}', '\u{206a}', 'é',
        ] {
            assert!(!needs_escape(c), "{c:?}");
        }
    }

    #[test]
    fn every_output_character_is_printable() {
        let all: String = (0u32..0x300)
            .chain(0x2000..0x2100)
            .filter_map(char::from_u32)
            .collect();
        let out = printable(&all);
        assert!(!out.chars().any(needs_escape));
        assert_eq!(out.chars().filter(|c| *c == '\n').count(), 1);
        assert_eq!(out.chars().filter(|c| *c == '\t').count(), 1);
    }

    #[test]
    fn json_strings_and_keys_are_escaped() {
        let mut v = json!({
            "reason": "\x1b[2J",
            "n": 3,
            "list": ["ok", "\u{202e}"],
            "cap\x07": {"deep": "\r"}
        });
        printable_json(&mut v);
        assert_eq!(
            v,
            json!({
                "reason": "\\x1b[2J",
                "n": 3,
                "list": ["ok", "\\u{202e}"],
                "cap\\x07": {"deep": "\\r"}
            })
        );
    }
}
