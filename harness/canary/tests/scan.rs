//! The scanner against dumps built here: every encoding at several offsets, base64 in real blobs at
//! every alignment, near misses, random values, and what a hit may show.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hilt_canary::{Canary, Encoding, Error, Hit, Scanner};
use proptest::prelude::*;

/// xorshift64*: seeded filler, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }
}

/// Every encoding gives a distinct needle for it: space, quote, tab and non-ASCII for URL and
/// JSON, hex letters, and a "???" group ("Pz8/" vs "Pz8_") at every base64 alignment.
const VALUE: &str = "p@ss \"wörd\"\t??????";

fn canary() -> Canary {
    Canary::new("wifi-psk", VALUE).unwrap()
}

/// The encoding the scanner names for `encoding`'s needle: the first one giving the same bytes.
fn reported(value: &str, encoding: Encoding) -> Encoding {
    let needle = encoding.encode(value);
    Encoding::ALL
        .into_iter()
        .find(|e| e.encode(value) == needle)
        .unwrap()
}

#[test]
fn every_encoding_is_a_distinct_needle_for_the_test_value() {
    assert_eq!(
        Scanner::new(&[canary()]).unwrap().needle_count(),
        Encoding::ALL.len()
    );
}

#[test]
fn each_encoding_is_found_at_several_offsets() {
    let scanner = Scanner::new(&[canary()]).unwrap();
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for encoding in Encoding::ALL {
        let needle = encoding.encode(VALUE).unwrap();
        for offset in [0usize, 1, 2, 3, 7, 100, 1001] {
            let mut hay = rng.bytes(offset);
            hay.extend_from_slice(&needle);
            hay.extend(rng.bytes(offset % 5 * 10));
            let hits = scanner.scan(&hay);
            let expected = Hit {
                canary: 0,
                label: "wifi-psk".into(),
                encoding,
                offset: offset as u64,
            };
            assert_eq!(hits, [expected], "{encoding} at {offset}");
        }
    }
}

#[test]
fn base64_blobs_are_found_at_every_alignment() {
    let scanner = Scanner::new(&[canary()]).unwrap();
    let mut rng = Rng(0xDEAD_BEEF_F00D_0001);
    for lead in 28..40usize {
        for trail in 0..3usize {
            let mut blob = rng.bytes(lead);
            blob.extend_from_slice(VALUE.as_bytes());
            blob.extend(rng.bytes(trail));
            let align = (lead % 3) as u8;
            let engines = [
                (&STANDARD, Encoding::Base64 { align }),
                (&STANDARD_NO_PAD, Encoding::Base64 { align }),
                (&URL_SAFE, Encoding::Base64Url { align }),
                (&URL_SAFE_NO_PAD, Encoding::Base64Url { align }),
            ];
            for (engine, encoding) in engines {
                // Inside a larger dump, after a few bytes of junk.
                let mut hay = b"cfg=".to_vec();
                hay.extend_from_slice(engine.encode(&blob).as_bytes());
                hay.push(b'\n');
                let hits = scanner.scan(&hay);
                let offset = (4 + (8 * lead).div_ceil(6)) as u64;
                assert_eq!(
                    hits.len(),
                    1,
                    "{encoding} lead {lead} trail {trail}: {hits:?}"
                );
                assert_eq!(
                    (hits[0].encoding, hits[0].offset),
                    (encoding, offset),
                    "lead {lead} trail {trail}"
                );
            }
        }
    }
}

/// Every form of `value`, raw and inside base64 blobs at each alignment, between random bytes.
fn every_form(value: &str, rng: &mut Rng) -> Vec<u8> {
    let mut hay = Vec::new();
    for encoding in Encoding::ALL {
        if let Some(needle) = encoding.encode(value) {
            hay.extend(rng.bytes(9));
            hay.extend(needle);
        }
    }
    for lead in 0..3 {
        let mut blob = rng.bytes(lead);
        blob.extend_from_slice(value.as_bytes());
        hay.extend(STANDARD.encode(&blob).into_bytes());
        hay.extend(URL_SAFE.encode(&blob).into_bytes());
    }
    hay
}

#[test]
fn near_misses_give_no_hit() {
    let value = "Tr0ub4dor&3 horse?";
    let scanner = Scanner::new(&[Canary::new("psk", value).unwrap()]).unwrap();
    let mut rng = Rng(7);
    // The sanity check: the exact value is found in every form.
    assert!(scanner.scan(&every_form(value, &mut rng)).len() >= Encoding::ALL.len());
    // Base64 forms only pin the bits they carry: flip a bit they always include (the first byte's
    // lowest, the last byte's 0x40), so a near miss is a miss in every encoding.
    let last = value.len() - 1;
    for (at, bit) in [(0, 0x01), (5, 0x01), (9, 0x20), (last, 0x40)] {
        let mut bytes = value.as_bytes().to_vec();
        bytes[at] ^= bit;
        let near = String::from_utf8(bytes).unwrap();
        let hits = scanner.scan(&every_form(&near, &mut rng));
        assert!(hits.is_empty(), "byte {at} ^ {bit:#x}: {hits:?}");
    }
}

#[test]
fn short_empty_and_missing_canaries_are_rejected() {
    assert!(matches!(
        Canary::new("pin", "982"),
        Err(Error::TooShort { len: 3, min: 4, .. })
    ));
    assert!(matches!(
        Canary::new("pin", ""),
        Err(Error::EmptyValue { .. })
    ));
    assert!(matches!(Scanner::new(&[]), Err(Error::NoCanaries)));
}

#[test]
fn nothing_shown_contains_the_value() {
    let c = canary();
    let scanner = Scanner::new(std::slice::from_ref(&c)).unwrap();
    let mut hay = b"psk: ".to_vec();
    hay.extend_from_slice(VALUE.as_bytes());
    let hits = scanner.scan(&hay);
    assert_eq!(hits.len(), 1);
    let shown = [
        format!("{c:?}"),
        format!("{c:#?}"),
        format!("{:?}", hits[0]),
        format!("{hits:#?}"),
        format!("{scanner:?}"),
        serde_json::to_string(&hits).unwrap(),
    ];
    for s in &shown {
        assert!(!s.contains("wörd") && !s.contains("p@ss"), "{s}");
    }
    assert_eq!(shown[0], r#"Canary { label: "wifi-psk", value: "***" }"#);
    assert_eq!(
        shown[5],
        r#"[{"canary":0,"label":"wifi-psk","encoding":"utf-8","offset":5}]"#
    );
}

fn filler() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..200)
}

proptest! {
    #[test]
    fn a_random_value_in_a_random_encoding_is_found(
        value in "[ -~]{6,40}",
        before in filler(),
        after in filler(),
        which in 0..Encoding::ALL.len(),
    ) {
        let encoding = Encoding::ALL[which];
        let needle = encoding.encode(&value);
        prop_assume!(needle.is_some(), "{} adds nothing for this value", encoding);
        let scanner = Scanner::new(&[Canary::new("c", value.clone()).unwrap()]).unwrap();
        let (hay, offset) = match encoding {
            Encoding::Base64 { align } | Encoding::Base64Url { align } => {
                // A real blob: `before` trimmed to the alignment, then the value, then `after`.
                let lead = before.len() / 3 * 3 + usize::from(align);
                let mut blob = before.clone();
                blob.resize(lead, 0xA5);
                blob.extend_from_slice(value.as_bytes());
                blob.extend_from_slice(&after);
                let text = if matches!(encoding, Encoding::Base64 { .. }) {
                    STANDARD.encode(&blob)
                } else {
                    URL_SAFE.encode(&blob)
                };
                (text.into_bytes(), (8 * lead).div_ceil(6))
            }
            _ => {
                let mut hay = before.clone();
                hay.extend(needle.unwrap());
                hay.extend_from_slice(&after);
                (hay, before.len())
            }
        };
        let want = reported(&value, encoding);
        let hits = scanner.scan(&hay);
        prop_assert!(
            hits.iter().any(|h| h.canary == 0 && h.encoding == want && h.offset == offset as u64),
            "{} at {}: {:?}", want, offset, hits
        );
    }
}

#[test]
fn a_scanner_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Scanner>();
    let scanner = Scanner::new(&[canary()]).unwrap();
    let hay = [b"..".as_slice(), VALUE.as_bytes()].concat();
    std::thread::scope(|s| {
        let h = s.spawn(|| scanner.scan(&hay).len());
        assert_eq!(h.join().unwrap(), 1);
    });
}
