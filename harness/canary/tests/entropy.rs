//! The entropy map on blocks whose nature is known: erased, text, random, repetitive.

use hilt_canary::entropy::{self, Block, Class};

const BLOCK: usize = 4096;

/// xorshift64*, seeded: random-looking bytes without a `rand` dependency.
fn random(n: usize, mut state: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn text(n: usize) -> Vec<u8> {
    let words = [
        "ssid",
        "password",
        "owner",
        "Device",
        "config",
        "broker.example",
        "443",
        "true",
        "{\"key\":",
        "\n",
    ];
    let mut rng = random(n, 99).into_iter();
    let mut out = Vec::new();
    while out.len() < n {
        out.extend_from_slice(words[usize::from(rng.next().unwrap_or(0)) % words.len()].as_bytes());
        out.push(b' ');
    }
    out.truncate(n);
    out
}

fn classes(bytes: &[u8]) -> Vec<Class> {
    entropy::map(bytes, BLOCK).iter().map(|b| b.class).collect()
}

#[test]
fn erased_blocks() {
    assert_eq!(classes(&[0u8; 3 * BLOCK]), [Class::Erased; 3]);
    assert_eq!(classes(&[0xFFu8; BLOCK]), [Class::Erased]);
    // One stray byte is not erased.
    let mut almost = vec![0xFFu8; BLOCK];
    almost[100] = 0;
    assert_ne!(classes(&almost), [Class::Erased]);
}

#[test]
fn text_blocks() {
    let blocks = entropy::map(&text(2 * BLOCK), BLOCK);
    assert!(blocks.iter().all(|b| b.class == Class::Text), "{blocks:?}");
}

#[test]
fn random_blocks_are_high() {
    let blocks = entropy::map(&random(4 * BLOCK, 0x9E37_79B9_7F4A_7C15), BLOCK);
    for b in &blocks {
        assert_eq!(b.class, Class::High);
        assert!(b.bits_per_byte > 7.9 && b.bits_per_byte <= 8.0, "{b:?}");
    }
}

#[test]
fn repetitive_blocks_are_low() {
    let table: Vec<u8> = (0..BLOCK)
        .map(|i| [0x01, 0x00, 0x80, 0x3F][i % 4])
        .collect();
    assert_eq!(classes(&table), [Class::Low]);
    // Printable, but filler rather than text.
    assert_eq!(classes(&b"0".repeat(BLOCK)), [Class::Low]);
    // A counter: every byte value equally often is 8 bits by histogram; the map does not claim to
    // see structure, so this is the limit of the method.
    let counter: Vec<u8> = (0..BLOCK).map(|i| i as u8).collect();
    assert_eq!(classes(&counter), [Class::High]);
}

#[test]
fn a_mixed_image_and_its_summary() {
    let mut image = vec![0xFFu8; BLOCK];
    image.extend(text(BLOCK));
    image.extend(random(2 * BLOCK, 5));
    image.extend(vec![0x55u8; BLOCK / 2].iter().chain(&[0xAAu8; BLOCK / 2]));
    image.extend(random(100, 6)); // a short last block
    let blocks = entropy::map(&image, BLOCK);
    let got: Vec<_> = blocks.iter().map(|b| (b.offset, b.len, b.class)).collect();
    let b = BLOCK as u64;
    assert_eq!(
        got,
        [
            (0, BLOCK, Class::Erased),
            (b, BLOCK, Class::Text),
            (2 * b, BLOCK, Class::High),
            (3 * b, BLOCK, Class::High),
            (4 * b, BLOCK, Class::Low),
            (5 * b, 100, Class::Low), // 100 bytes cannot reach 7.2 bits
        ]
    );
    let fraction = entropy::high_fraction(&blocks);
    let expected = (2 * BLOCK) as f64 / (4 * BLOCK + 100) as f64;
    assert!(
        (fraction - expected).abs() < 1e-9,
        "{fraction} vs {expected}"
    );
    assert_eq!(entropy::high_fraction(&entropy::map(&[0u8; 10], 4)), 0.0);
    assert!(entropy::map(&[], BLOCK).is_empty());
}

#[test]
fn blocks_serialize_for_evidence() {
    let block = Block {
        offset: 4096,
        len: 4096,
        bits_per_byte: 7.5,
        class: Class::High,
    };
    assert_eq!(
        serde_json::to_string(&block).unwrap(),
        r#"{"offset":4096,"len":4096,"bits_per_byte":7.5,"class":"high"}"#
    );
}
