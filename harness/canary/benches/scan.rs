//! Canary scan throughput on a 256 MiB synthetic flash image, against a single-pattern
//! `memchr::memmem` pass over the same bytes, measured in one run and printed as a ratio. Plants
//! eight canaries at known offsets and fails if the scanner misses any. `cargo bench -p hilt-canary`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use hilt_canary::{Canary, Encoding, Hit, Scanner};

const SIZE: usize = 256 << 20;
const RUNS: usize = 3;

/// xorshift64*: deterministic, and fast enough to fill 256 MiB in well under a second.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Words of the text regions, space-separated ("\n" is a word too).
const WORDS: &str = "ssid password token user email name wifi config http:// https:// mqtt broker device owner \
    the and of a to in is key= value true false null {\" \": 0 1 42 2024-01-01T00:00:00Z error ok boot ota \
    update signature \\n = ;";

/// Pseudo-random bytes (the encrypted and compressed bulk of a dump) with a 16 KiB region of
/// config-like text at the start of every 256 KiB.
fn image() -> Vec<u8> {
    let words: Vec<&str> = WORDS
        .split_whitespace()
        .map(|w| if w == "\\n" { "\n" } else { w })
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut img = vec![0u8; SIZE];
    for chunk in img.chunks_exact_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes());
    }
    for region in img.chunks_mut(256 << 10) {
        let text = &mut region[..16 << 10];
        let mut at = 0;
        while at < text.len() {
            let word = words[(rng.next() % words.len() as u64) as usize].as_bytes();
            for &b in word.iter().chain(b" ") {
                if at == text.len() {
                    break;
                }
                text[at] = b;
                at += 1;
            }
        }
    }
    img
}

fn canaries() -> Vec<Canary> {
    [
        ("wifi-psk", "correct horse battery staple"),
        ("account-token", "tok_9f8e7d6c5b4a39281706"),
        ("owner-name", "Ada Lovelace-Byron"),
        ("owner-email", "ada@example.invalid"),
        ("user-pin", "482916"),
        ("api-key", "AKIA5EXAMPLE7QX3Z?"),
        ("device-secret", "s3cr3t/with+slashes=~>"),
        ("recovery-phrase", "über \"straße\" café"),
    ]
    .into_iter()
    .map(|(label, value)| Canary::new(label, value).expect("valid canary"))
    .collect()
}

/// The encoding the scanner reports for `encoding`'s needle: the first in `Encoding::ALL` order
/// giving the same bytes.
fn reported(value: &str, encoding: Encoding) -> Encoding {
    let needle = encoding.encode(value);
    Encoding::ALL
        .into_iter()
        .find(|e| e.encode(value) == needle)
        .expect("encoding is in ALL")
}

/// How each canary is planted: base64 forms inside a real encoded blob, the rest as their needle.
const PLAN: [Encoding; 8] = [
    Encoding::Utf8,
    Encoding::Utf16Le,
    Encoding::Utf16Be,
    Encoding::UrlEncoded,
    Encoding::HexLower,
    Encoding::Base64 { align: 2 },
    Encoding::Base64Url { align: 1 },
    Encoding::JsonEscaped,
];

/// Writes each canary into the image per [`PLAN`]; returns the hits that must be found.
fn plant(img: &mut [u8], canaries: &[Canary]) -> Vec<(usize, Encoding, u64)> {
    let mut expected = Vec::new();
    for (i, (canary, encoding)) in canaries.iter().zip(PLAN).enumerate() {
        let value = canary.value().expose();
        // Spread over the image, and off any 4-byte alignment.
        let at = (i + 1) * (SIZE / 10) + 3 * i + 1;
        let offset = match encoding {
            Encoding::Base64 { align } | Encoding::Base64Url { align } => {
                // Filler bytes putting the value at `align` mod 3, the value, more filler; encoded whole.
                let lead = 36 + usize::from(align);
                let mut blob: Vec<u8> = (0..lead as u8).collect();
                blob.extend_from_slice(value.as_bytes());
                blob.extend_from_slice(b"\x01\x02\x03\x04\x05");
                let text = match encoding {
                    Encoding::Base64 { .. } => STANDARD.encode(&blob),
                    _ => URL_SAFE.encode(&blob),
                };
                img[at..at + text.len()].copy_from_slice(text.as_bytes());
                at + (8 * lead).div_ceil(6)
            }
            _ => {
                let needle = encoding
                    .encode(value)
                    .expect("encoding applies to this value");
                img[at..at + needle.len()].copy_from_slice(&needle);
                at
            }
        };
        expected.push((i, reported(value, encoding), offset as u64));
    }
    expected
}

fn best_of<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let r = black_box(f());
        best = best.min(start.elapsed());
        out = Some(r);
    }
    (best, out.expect("at least one run"))
}

fn gbps(d: Duration) -> f64 {
    SIZE as f64 / d.as_secs_f64() / 1e9
}

fn main() {
    let canaries = canaries();
    let mut img = image();
    let expected = plant(&mut img, &canaries);
    let scanner = Scanner::new(&canaries).expect("scanner");

    let (scan_time, hits) = best_of(|| scanner.scan(black_box(&img)));
    let needle = canaries[0].value().expose().as_bytes();
    let finder = memchr::memmem::Finder::new(needle);
    let (memmem_time, count) = best_of(|| finder.find_iter(black_box(&img)).count());

    println!("image                {} MiB", SIZE >> 20);
    println!("canaries             {}", scanner.canary_count());
    println!("needles              {}", scanner.needle_count());
    println!("hits                 {}", hits.len());
    println!(
        "scan                 {:>7.2} GB/s ({:?})",
        gbps(scan_time),
        scan_time
    );
    println!(
        "memmem (1 needle)    {:>7.2} GB/s ({:?})",
        gbps(memmem_time),
        memmem_time
    );
    println!(
        "ratio scan/memmem    {:>7.2}",
        memmem_time.as_secs_f64() / scan_time.as_secs_f64()
    );

    assert_eq!(count, 1, "memmem finds the one planted utf-8 canary");
    let mut missing = Vec::new();
    for &(canary, encoding, offset) in &expected {
        let found = hits
            .iter()
            .any(|h: &Hit| h.canary == canary && h.encoding == encoding && h.offset == offset);
        if !found {
            missing.push(format!(
                "{} as {encoding} at {offset}",
                canaries[canary].label()
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "scanner missed planted canaries: {missing:?}; hits: {hits:?}"
    );
    // Nothing but the plants: a chance hit in 256 MiB would mean needles that are too short.
    assert_eq!(hits.len(), expected.len(), "unexpected hits: {hits:?}");
}
