//! Byte-entropy map of a dump: where a clean canary scan means something and where it does not.
//!
//! A scan that finds nothing in plaintext regions is evidence; one that finds nothing in regions
//! that look encrypted or compressed is only evidence if the device really encrypts them.

use serde::Serialize;

/// At or above this many bits per byte a block looks encrypted or compressed. Random data reaches
/// it for blocks of about 1 KiB and more; smaller blocks under-estimate entropy.
pub const HIGH_BITS: f32 = 7.2;

/// Share of printable ASCII (plus tab, CR, LF) that makes a block text.
pub const TEXT_PRINTABLE: f32 = 0.9;

/// Below this a printable block is filler (`"0000..."`, a repeated short pattern), not text.
pub const TEXT_MIN_BITS: f32 = 2.5;

/// What a block looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// All 0xFF (erased NOR/NAND) or all 0x00.
    Erased,
    /// Structured or repetitive binary: tables, padding, code.
    Low,
    /// Mostly printable ASCII.
    Text,
    /// At least [`HIGH_BITS`] bits per byte: encrypted, compressed, or random.
    High,
}

/// One block of the map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Block {
    pub offset: u64,
    pub len: usize,
    /// Shannon entropy of the block's byte histogram, 0.0..=8.0.
    pub bits_per_byte: f32,
    pub class: Class,
}

/// Classifies `bytes` in consecutive blocks of `block` bytes (the last one may be shorter).
///
/// # Panics
/// If `block` is 0.
pub fn map(bytes: &[u8], block: usize) -> Vec<Block> {
    assert!(block > 0, "entropy block size must be positive");
    bytes
        .chunks(block)
        .enumerate()
        .map(|(i, chunk)| {
            let (bits_per_byte, class) = classify(chunk);
            Block {
                offset: (i * block) as u64,
                len: chunk.len(),
                bits_per_byte,
                class,
            }
        })
        .collect()
}

/// Fraction of the non-erased bytes that sit in [`Class::High`] blocks; 0.0 when all is erased.
pub fn high_fraction(blocks: &[Block]) -> f64 {
    let (mut high, mut live) = (0u64, 0u64);
    for b in blocks {
        match b.class {
            Class::Erased => {}
            Class::High => {
                high += b.len as u64;
                live += b.len as u64;
            }
            Class::Low | Class::Text => live += b.len as u64,
        }
    }
    if live == 0 {
        0.0
    } else {
        high as f64 / live as f64
    }
}

fn classify(chunk: &[u8]) -> (f32, Class) {
    let mut counts = [0u32; 256];
    for &b in chunk {
        counts[usize::from(b)] += 1;
    }
    let len = chunk.len() as f64;
    if counts[0] as f64 == len || counts[0xFF] as f64 == len {
        return (0.0, Class::Erased);
    }
    let bits = -counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = f64::from(n) / len;
            p * p.log2()
        })
        .sum::<f64>();
    let bits = bits as f32;
    let printable: u32 = counts[0x20..0x7F].iter().sum::<u32>()
        + counts[usize::from(b'\t')]
        + counts[usize::from(b'\n')]
        + counts[usize::from(b'\r')];
    let class = if bits >= HIGH_BITS {
        Class::High
    } else if f64::from(printable) >= f64::from(TEXT_PRINTABLE) * len && bits >= TEXT_MIN_BITS {
        Class::Text
    } else {
        Class::Low
    };
    (bits, class)
}
