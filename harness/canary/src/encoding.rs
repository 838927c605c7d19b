//! The encodings a value may be stored in, and the needle each one gives.

use std::fmt;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde::{Serialize, Serializer};

/// How a value may appear in a dump. Ordered: when two encodings give the same needle the earlier
/// one is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    HexLower,
    HexUpper,
    /// Standard alphabet. `align` (0..=2) is the value's offset mod 3 inside the encoded blob;
    /// the needle is the part of the encoding that depends on the value's bits only.
    Base64 {
        align: u8,
    },
    /// URL-safe alphabet, otherwise as [`Encoding::Base64`].
    Base64Url {
        align: u8,
    },
    /// Every byte outside RFC 3986 "unreserved" as `%XX` (upper-case hex).
    UrlEncoded,
    /// The body of a JSON string as serde_json writes it (`\"`, `\\`, `\n`, `\u001f`, ...).
    JsonEscaped,
}

impl Encoding {
    /// Every encoding the scanner tries, in reporting order.
    pub const ALL: [Encoding; 13] = [
        Encoding::Utf8,
        Encoding::Utf16Le,
        Encoding::Utf16Be,
        Encoding::HexLower,
        Encoding::HexUpper,
        Encoding::Base64 { align: 0 },
        Encoding::Base64 { align: 1 },
        Encoding::Base64 { align: 2 },
        Encoding::Base64Url { align: 0 },
        Encoding::Base64Url { align: 1 },
        Encoding::Base64Url { align: 2 },
        Encoding::UrlEncoded,
        Encoding::JsonEscaped,
    ];

    /// The bytes to search for, or `None` when this encoding adds nothing: URL and JSON escaping
    /// that leave the value unchanged, an `align` outside 0..=2, or a value too short to leave a
    /// stable base64 part.
    pub fn encode(self, value: &str) -> Option<Vec<u8>> {
        let bytes = value.as_bytes();
        let out = match self {
            Encoding::Utf8 => bytes.to_vec(),
            Encoding::Utf16Le => value.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            Encoding::Utf16Be => value.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            Encoding::HexLower => hex::encode(bytes).into_bytes(),
            Encoding::HexUpper => hex::encode_upper(bytes).into_bytes(),
            Encoding::Base64 { align } => base64_inner(&STANDARD_NO_PAD, bytes, align)?,
            Encoding::Base64Url { align } => base64_inner(&URL_SAFE_NO_PAD, bytes, align)?,
            Encoding::UrlEncoded => {
                let out = percent_encode(bytes);
                if out == bytes {
                    return None;
                }
                out
            }
            Encoding::JsonEscaped => {
                let quoted = serde_json::to_string(value).ok()?;
                let inner = &quoted[1..quoted.len() - 1];
                if inner == value {
                    return None;
                }
                inner.as_bytes().to_vec()
            }
        };
        (!out.is_empty()).then_some(out)
    }

    /// For base64 forms, how many encoded characters just before and just after the needle also
    /// carry some of the value's bits (0 or 1 each). [`crate::mask`] hides those too.
    pub(crate) fn partial_chars(self, value_len: usize) -> (usize, usize) {
        match self {
            Encoding::Base64 { align } | Encoding::Base64Url { align } => {
                let (start, end) = (8 * usize::from(align), 8 * (usize::from(align) + value_len));
                (usize::from(start % 6 != 0), usize::from(end % 6 != 0))
            }
            _ => (0, 0),
        }
    }
}

/// The characters of `base64(align dummy bytes ++ value)` whose six bits all come from `value`:
/// these appear unchanged wherever the value sits at that offset mod 3 in a larger blob.
fn base64_inner<E: base64::Engine>(engine: &E, value: &[u8], align: u8) -> Option<Vec<u8>> {
    let align = usize::from(align);
    if align > 2 {
        return None;
    }
    let mut buf = vec![0u8; align];
    buf.extend_from_slice(value);
    let encoded = engine.encode(&buf).into_bytes();
    // Char i covers bits [6i, 6i + 6) of the blob; keep those inside [8 * align, 8 * len).
    let start = (8 * align).div_ceil(6);
    let end = 8 * buf.len() / 6;
    (start < end).then(|| encoded[start..end].to_vec())
}

fn percent_encode(bytes: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    out
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::Utf8 => f.write_str("utf-8"),
            Encoding::Utf16Le => f.write_str("utf-16le"),
            Encoding::Utf16Be => f.write_str("utf-16be"),
            Encoding::HexLower => f.write_str("hex"),
            Encoding::HexUpper => f.write_str("HEX"),
            Encoding::Base64 { align } => write!(f, "base64@{align}"),
            Encoding::Base64Url { align } => write!(f, "base64url@{align}"),
            Encoding::UrlEncoded => f.write_str("url-encoded"),
            Encoding::JsonEscaped => f.write_str("json-escaped"),
        }
    }
}

/// Serialised as its display name, so evidence JSON reads `"encoding": "base64@1"`.
impl Serialize for Encoding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn enc(e: Encoding, v: &str) -> Option<String> {
        e.encode(v)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    #[test]
    fn known_vectors() {
        assert_eq!(enc(Encoding::Utf8, "abcd").unwrap(), "abcd");
        assert_eq!(
            Encoding::Utf16Le.encode("ab€").unwrap(),
            [b'a', 0, b'b', 0, 0xAC, 0x20]
        );
        assert_eq!(
            Encoding::Utf16Be.encode("ab€").unwrap(),
            [0, b'a', 0, b'b', 0x20, 0xAC]
        );
        assert_eq!(enc(Encoding::HexLower, "a\u{fe}").unwrap(), "61c3be");
        assert_eq!(enc(Encoding::HexUpper, "a\u{fe}").unwrap(), "61C3BE");
        assert_eq!(enc(Encoding::UrlEncoded, "a b/c~").unwrap(), "a%20b%2Fc~");
        assert_eq!(
            enc(Encoding::JsonEscaped, "a\"b\\c\n\u{1}").unwrap(),
            r#"a\"b\\c\n\u0001"#
        );
    }

    #[test]
    fn url_and_json_only_when_they_differ() {
        assert_eq!(Encoding::UrlEncoded.encode("plain-Value_1.0~"), None);
        assert_eq!(Encoding::JsonEscaped.encode("has spaces / and é"), None);
        assert!(Encoding::UrlEncoded.encode("has space").is_some());
    }

    #[test]
    fn base64_inner_part_is_stable_under_any_neighbours() {
        let value = b"Secret-Value!?>";
        for align in 0..3u8 {
            let needle = base64_inner(&STANDARD_NO_PAD, value, align).unwrap();
            for lead in [0usize, 3, 6] {
                for fill in [0x00u8, 0xFF, 0x5A] {
                    let mut blob = vec![fill; lead + usize::from(align)];
                    blob.extend_from_slice(value);
                    blob.extend_from_slice(&[fill ^ 0x33; 5]);
                    let text = STANDARD_NO_PAD.encode(&blob);
                    assert!(
                        text.as_bytes().windows(needle.len()).any(|w| w == needle),
                        "align {align} lead {lead} fill {fill:#x}"
                    );
                }
            }
        }
        assert_eq!(base64_inner(&STANDARD_NO_PAD, b"abc", 3), None);
    }

    #[test]
    fn base64_needle_lengths() {
        // 4 bytes = 32 bits: 5 whole chars at align 0, 4 at align 1 (bits 8..40), 5 at align 2.
        let lens: Vec<_> = (0..3)
            .map(|a| Encoding::Base64 { align: a }.encode("abcd").unwrap().len())
            .collect();
        assert_eq!(lens, [5, 4, 5]);
        assert_eq!(Encoding::Base64 { align: 0 }.partial_chars(4), (0, 1));
        assert_eq!(Encoding::Base64 { align: 1 }.partial_chars(4), (1, 1));
        assert_eq!(Encoding::Base64 { align: 2 }.partial_chars(4), (1, 0));
    }

    #[test]
    fn display_and_serialize_names() {
        let names: Vec<String> = Encoding::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "utf-8",
                "utf-16le",
                "utf-16be",
                "hex",
                "HEX",
                "base64@0",
                "base64@1",
                "base64@2",
                "base64url@0",
                "base64url@1",
                "base64url@2",
                "url-encoded",
                "json-escaped"
            ]
        );
        assert_eq!(
            serde_json::to_string(&Encoding::Base64Url { align: 2 }).unwrap(),
            r#""base64url@2""#
        );
    }
}
