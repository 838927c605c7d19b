//! Printable, unambiguous text for device bytes: control bytes, invalid UTF-8 and the
//! secret-marker brackets are escaped, so a device cannot forge a marker or garble a log.

use std::fmt::Write;

/// Append `bytes` to `out`, escaped.
pub(crate) fn escape_into(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '‹' | '›' => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c if (c as u32) < 0x80 && c.is_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

#[cfg(test)]
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_into(&mut out, bytes);
    out
}

/// The last `max_chars` characters of `text`, with a leading ellipsis when shortened.
pub(crate) fn tail_chars(text: &str, max_chars: usize) -> String {
    let count = text.chars().count();
    if count <= max_chars {
        return text.to_string();
    }
    let skip = text
        .char_indices()
        .nth(count - max_chars)
        .map_or(text.len(), |(i, _)| i);
    format!("…{}", &text[skip..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_invalid_bytes() {
        assert_eq!(
            escape(b"a\\b\r\n\t\x1b[0m\xff\xc3"),
            "a\\\\b\\r\\n\\t\\x1b[0m\\xff\\xc3"
        );
        assert_eq!(escape("é‹x›".as_bytes()), "é\\u{2039}x\\u{203a}");
        assert_eq!(escape("\u{85}".as_bytes()), "\\u{85}");
    }

    #[test]
    fn tails() {
        assert_eq!(tail_chars("abcdef", 3), "…def");
        assert_eq!(tail_chars("abc", 3), "abc");
        assert_eq!(tail_chars("ééé", 2), "…éé");
    }
}
